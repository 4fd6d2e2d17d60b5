"""PyTorch backend: the checkpoint itself (``.pth``/``.safetensors``), on CUDA when present, for checking exports
against and for machines without an ONNX file. The only runtime module that imports torch, and only when used."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from dsrir.errors import DSRIRError
from dsrir.memory_budget import activation_bytes_per_pixel
from runtime.backends import Backend


class TorchBackend(Backend):
    """``load_model`` + ``inference_mode``; float I/O like a float ONNX graph."""

    name = "torch"
    io = "float"
    max_batch: int | None = None

    def __init__(self, path: Path, device: str | None = None, which: Literal["ema", "raw"] = "ema") -> None:
        """``which``: a checkpoint's EMA weights (what its weight files hold) or its raw ones (``.pth`` only)."""
        try:
            import torch

            from dsrir.checkpoint import load_model
            from dsrir.model.cost import widest_channels
        except ImportError:
            raise DSRIRError(
                f"{path}: the torch backend needs PyTorch (pip install torch); or export to ONNX"
            ) from None

        self._torch: Any = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model: Any
        self.model, weights = load_model(path, self.device, which)
        self.size_multiple = int(self.model.config.size_multiple)
        self.activation_bytes_per_pixel: int | None = activation_bytes_per_pixel(widest_channels(self.model))
        self.precision = "fp32"
        chosen = ", raw weights" if which == "raw" else ""
        self.description = f"torch {torch.__version__} ({self.device}), {weights.preset or 'custom'} fp32{chosen}"

    def infer(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            out = self.model.restore(torch.from_numpy(batch).to(self.device))
        return np.asarray(out.float().cpu().numpy())

    def close(self) -> None:
        self.model = None
