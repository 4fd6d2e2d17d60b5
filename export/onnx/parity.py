"""Run an exported graph on ONNX Runtime (CPU) like :class:`dsrir.model.Restorer` runs PyTorch, and compare.

Any H x W goes through the same reflect padding to the size multiple and crop as the Restorer, so a size
that is not a multiple of 8 checks the graph together with the padding a runtime must do. Plugin graphs run
through onnxruntime-extensions' CPU ops (:mod:`dsrir.graph.session`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from dsrir.graph.session import cpu_session
from dsrir.model.restorer import pad_to_multiple


@dataclass(frozen=True)
class Parity:
    """Largest |ONNX - PyTorch| over the check, in [0, 1] image units (uint8 I/O: levels / 255)."""

    max_abs: float
    shape: tuple[int, ...]
    io: str

    def describe(self) -> str:
        size = "x".join(str(d) for d in self.shape)
        if self.io == "uint8":
            return f"max abs error {round(self.max_abs * 255)} level(s) at {size}"
        return f"max abs error {self.max_abs:.2e} at {size}"


def run_float(sess: Any, image: np.ndarray, multiple: int) -> np.ndarray:
    """(N, 3, H, W) float32 RGB in [0, 1], any H/W -> the graph's output, padded and cropped like Restorer."""
    padded, (h, w) = pad_to_multiple(torch.from_numpy(np.ascontiguousarray(image, np.float32)), multiple)
    out: np.ndarray = sess.run(None, {sess.get_inputs()[0].name: padded.numpy()})[0]
    return out[..., :h, :w]


def run_frames(sess: Any, frames: np.ndarray, multiple: int) -> np.ndarray:
    """(N, H, W, 3) uint8 BGR frames, any H/W -> restored uint8 BGR frames (reflect-padded and cropped)."""
    nchw = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
    padded, (h, w) = pad_to_multiple(nchw.float(), multiple)  # reflect padding needs a float tensor
    feed = padded.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    out: np.ndarray = sess.run(None, {sess.get_inputs()[0].name: feed})[0]
    return out[:, :h, :w, :]


@torch.inference_mode()
def torch_restore(model: nn.Module, image: np.ndarray, multiple: int) -> np.ndarray:
    """The PyTorch reference: the final image of (N, 3, H, W) float32, padded and cropped like Restorer."""
    padded, (h, w) = pad_to_multiple(torch.from_numpy(np.ascontiguousarray(image, np.float32)), multiple)
    restored: torch.Tensor = model.restore(padded)  # type: ignore[operator]
    return restored[..., :h, :w].numpy()


def frames_reference(model: nn.Module, frames: np.ndarray, multiple: int) -> np.ndarray:
    """What the uint8 graph should return: BGR -> RGB /255, the model, clip, *255, round half to even, BGR."""
    rgb = frames[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    restored = np.clip(torch_restore(model, rgb, multiple), 0.0, 1.0)
    return np.rint(restored * 255.0).astype(np.uint8).transpose(0, 2, 3, 1)[..., ::-1]


def check_against_torch(
    graph: onnx.ModelProto, model: nn.Module, io: str, shape: tuple[int, int, int, int], multiple: int, seed: int = 0
) -> Parity:
    """Random input of ``shape`` (N, 3, H, W) through both; the largest difference in [0, 1] units."""
    rng = np.random.default_rng(seed)
    n, _, h, w = shape
    sess = cpu_session(graph)
    if io == "uint8":
        frames = rng.integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)
        got = run_frames(sess, frames, multiple).astype(np.int32)
        want = frames_reference(model, frames, multiple).astype(np.int32)
        return Parity(float(np.abs(got - want).max()) / 255.0, shape, io)
    image = rng.random(shape, dtype=np.float32)
    difference = np.abs(run_float(sess, image, multiple) - torch_restore(model, image, multiple))
    return Parity(float(difference.max()), shape, io)
