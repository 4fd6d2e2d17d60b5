"""Patch attention in NumPy: the CPU reference shared by the ONNX Runtime op and the plugin tests.

    out = res * A[cell(h, w)] (+ skip),   A = sigmoid(W2 relu(W1 mean_cell(res) + b1) + b2)

over a grid_h x grid_w grid of cells. The cell means and the small MLP are computed in float64,
the per-pixel product in float32; the result has the dtype of ``res``.
"""

from __future__ import annotations

import numpy as np


def _as_matrix(weight: np.ndarray, name: str) -> np.ndarray:
    """(rows, cols) or (rows, cols, 1, 1) -> (rows, cols) float64."""
    weight = np.asarray(weight)
    if weight.ndim == 4 and weight.shape[2:] == (1, 1):
        weight = weight.reshape(weight.shape[0], weight.shape[1])
    if weight.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, cols) or a 1x1 conv weight (rows, cols, 1, 1), got {weight.shape}")
    return weight.astype(np.float64)


def _as_bias(bias: np.ndarray | None, size: int, name: str) -> np.ndarray:
    if bias is None:
        return np.zeros(size, np.float64)
    bias = np.asarray(bias, np.float64).reshape(-1)
    if bias.shape != (size,):
        raise ValueError(f"{name} must hold {size} values, got shape {bias.shape}")
    return bias


def patch_attention_numpy(
    res: np.ndarray,
    w1: np.ndarray,
    b1: np.ndarray | None,
    w2: np.ndarray,
    b2: np.ndarray | None,
    grid_h: int,
    grid_w: int,
    skip: np.ndarray | None = None,
) -> np.ndarray:
    """Patch attention of an NCHW array ``res``; W1 is (hidden, C) and W2 (C, hidden), or their 1x1 conv forms."""
    res = np.asarray(res)
    if res.ndim != 4:
        raise ValueError(f"res must be NCHW (4-D), got shape {res.shape}")
    n, c, h, w = res.shape
    grid_h, grid_w = int(grid_h), int(grid_w)
    if grid_h <= 0 or grid_w <= 0:
        raise ValueError(f"grid must be positive, got {grid_h}x{grid_w}")
    if h % grid_h or w % grid_w:
        raise ValueError(f"H x W = {h} x {w} is not divisible by the {grid_h} x {grid_w} patch-attention grid")
    m1, m2 = _as_matrix(w1, "W1"), _as_matrix(w2, "W2")
    hidden = m1.shape[0]
    if m1.shape != (hidden, c) or m2.shape != (c, hidden):
        raise ValueError(f"W1 must be (hidden, {c}) and W2 ({c}, hidden), got {m1.shape} and {m2.shape}")
    v1, v2 = _as_bias(b1, hidden, "b1"), _as_bias(b2, c, "b2")
    if skip is not None and np.shape(skip) != res.shape:
        raise ValueError(f"skip must have the shape of res {res.shape}, got {np.shape(skip)}")

    cells = res.astype(np.float32, copy=False).reshape(n, c, grid_h, h // grid_h, grid_w, w // grid_w)
    pooled = cells.mean(axis=(3, 5), dtype=np.float64)  # (N, C, gh, gw)
    hid = np.maximum(np.einsum("kc,nchw->nkhw", m1, pooled) + v1[None, :, None, None], 0.0)
    logits = np.einsum("ck,nkhw->nchw", m2, hid) + v2[None, :, None, None]
    attention = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    out = (cells * attention[:, :, :, None, :, None]).reshape(n, c, h, w)
    if skip is not None:
        out = out + np.asarray(skip).astype(np.float32, copy=False)
    return out.astype(res.dtype, copy=False)
