"""Patch attention: per-cell channel attention over a g_h x g_w grid.

The official code pools with ``AdaptiveAvgPool2d(grid)``, which does not export to ONNX
with dynamic H/W. Here the cells are formed by a reshape to (N, C, g_h, H/g_h, g_w, W/g_w)
and averaged over the two inner axes: the same function for H % g_h == 0 and W % g_w == 0,
and it exports. The optional ``skip`` input folds the PAB residual into the op, which is the
signature the fused CUDA kernel and the TensorRT plugin implement.

``PatchAttention.forward`` runs the fused CUDA op (``dsrir.ops.patch_attention_cuda``) instead of
the reference when the input is a contiguous float32/float16 CUDA tensor with H, W divisible by
the grid, no gradient is needed, nothing is tracing or exporting, and the op is available (built
on first use; ``DSRIR_DISABLE_FUSED_PA=1`` turns it off). Everything else, CPU included, runs
:func:`patch_attention`.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def cell_view(x: Tensor, grid: tuple[int, int]) -> Tensor:
    """View (N, C, H, W) as (N, C, g_h, H/g_h, g_w, W/g_w)."""
    n, c, h, w = x.shape
    gh, gw = grid
    return x.reshape(n, c, gh, h // gh, gw, w // gw)


def patch_attention(
    x: Tensor,
    w1: Tensor,
    b1: Tensor | None,
    w2: Tensor,
    b2: Tensor | None,
    grid: tuple[int, int],
    skip: Tensor | None = None,
) -> Tensor:
    """Reference implementation: ``x * sigmoid(W2 relu(W1 mean_cell(x) + b1) + b2) (+ skip)``.

    ``w1`` is (C/r, C, 1, 1) and ``w2`` (C, C/r, 1, 1), as stored in the checkpoint.
    """
    n, c, h, w = x.shape
    cells = cell_view(x, grid)
    pooled = cells.mean(dim=(3, 5))  # (N, C, g_h, g_w)
    weights = torch.sigmoid(F.conv2d(F.relu(F.conv2d(pooled, w1, b1)), w2, b2))
    out = (cells * weights[:, :, :, None, :, None]).reshape(n, c, h, w)
    return out if skip is None else out + skip


class PatchAttention(nn.Module):
    """Module form with the official parameter names (``conv_du.0``, ``conv_du.2``)."""

    def __init__(self, channels: int, reduction: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.grid = (int(grid[0]), int(grid[1]))
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        squeeze, expand = cast(nn.Conv2d, self.conv_du[0]), cast(nn.Conv2d, self.conv_du[2])
        if x.is_cuda and self._use_fused(x, skip):
            from dsrir.ops.patch_attention_cuda import fused_patch_attention

            return fused_patch_attention(x, squeeze.weight, squeeze.bias, expand.weight, expand.bias, self.grid, skip)
        return patch_attention(x, squeeze.weight, squeeze.bias, expand.weight, expand.bias, self.grid, skip)

    def _use_fused(self, x: Tensor, skip: Tensor | None) -> bool:
        """The fused CUDA op serves plain inference on CUDA; training, tracing and export use the reference."""
        if torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return False
        if type(x) is not Tensor or (skip is not None and type(skip) is not Tensor):
            return False  # fake, functional or other tensor subclasses: a tracer is at work
        if torch.is_grad_enabled() and (
            x.requires_grad
            or (skip is not None and skip.requires_grad)
            or any(p.requires_grad for p in self.parameters())
        ):
            return False
        if x.dtype not in (torch.float32, torch.float16) or x.dim() != 4 or x.numel() == 0:
            return False
        if not x.is_contiguous() or (
            skip is not None
            and (skip.shape != x.shape or skip.dtype != x.dtype or skip.device != x.device or not skip.is_contiguous())
        ):
            return False
        if x.shape[2] % self.grid[0] or x.shape[3] % self.grid[1]:
            return False
        from dsrir.ops.patch_attention_cuda import fused_patch_attention_available

        return fused_patch_attention_available()

    def extra_repr(self) -> str:
        return f"grid={self.grid}"
