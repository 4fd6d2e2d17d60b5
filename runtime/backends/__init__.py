"""Inference backends behind one small interface, picked from the model file unless ``--backend`` says otherwise.

Only the chosen backend's dependencies are imported: ONNX Runtime and TensorRT never pull in torch, so a Jetson
image without PyTorch runs ``.onnx`` and ``.engine`` models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dsrir.errors import DSRIRError
from runtime.fit import Profile

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch", "triton")
SUFFIXES = {
    ".engine": "tensorrt",
    ".plan": "tensorrt",
    ".onnx": "onnxruntime",
    ".pth": "torch",
    ".safetensors": "torch",
}


class Backend:
    """A loaded network. ``io`` float: ``infer`` takes and returns (N, 3, H, W) RGB float32 in [0, 1]; ``io`` uint8:
    (N, H, W, 3) BGR uint8. H and W are multiples of ``size_multiple`` and inside ``profile`` (None: any); N is at
    most ``max_batch`` (None: any).

    What a backend can do is declared here, with the value every backend has unless it says otherwise, so the
    pipelines read attributes instead of guessing with ``getattr``: one frame per inference (``max_batch``), one
    frame in flight (``slots_in_flight``; a backend with more slots has ``submit``/``collect``), any H and W.

    ``activation_bytes_per_pixel``: what one input pixel costs this process while the network runs
    (:mod:`dsrir.memory_budget`), which ``--max-memory`` plans tiles with; None where it is not this process's to
    plan (a TensorRT engine's memory is fixed when it is built, a Triton server's is its own).
    """

    name: str
    precision: str
    io: str
    size_multiple: int
    description: str
    profile: Profile | None = None
    max_batch: int | None = 1
    activation_bytes_per_pixel: int | None = None
    slots_in_flight = 1

    def infer(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def input_buffer(self, shape: tuple[int, ...]) -> np.ndarray | None:
        """An array of ``shape`` that the next ``infer``/``submit`` reads its input from where it is passed back as
        that input, so pre-processing writes the frame straight into it; None (every backend unless it says
        otherwise): the backend reads the caller's array as it is (ONNX Runtime and PyTorch on the CPU) or copies it
        to the device itself."""
        return None

    def submit(self, batch: np.ndarray) -> int:
        """Start ``batch`` on a free slot and return the slot (backends with ``slots_in_flight`` > 1)."""
        raise NotImplementedError(f"{self.name} runs one frame at a time: use infer()")

    def collect(self, slot: int) -> np.ndarray:
        """The output of the batch started on ``slot``, once it is done."""
        raise NotImplementedError(f"{self.name} runs one frame at a time: use infer()")

    def close(self) -> None:
        """Release the model; safe to call twice."""


def resolve_kind(model: Path, requested: str) -> str:
    """``auto`` -> the backend for the file's suffix; any other choice is kept."""
    if requested not in BACKENDS:
        raise DSRIRError(f"--backend {requested!r}: expected one of {', '.join(BACKENDS)}")
    if requested != "auto":
        return requested
    kind = SUFFIXES.get(model.suffix.lower())
    if kind is None:
        raise DSRIRError(f"{model}: cannot pick a backend from the suffix; expected one of {', '.join(SUFFIXES)}")
    return kind


def open_backend(model: str | Path, requested: str = "auto", plugin_lib: str | Path | None = None) -> Backend:
    """Load ``model`` with the requested (or suffix-chosen) backend; ``triton://HOST:PORT/MODEL`` is a server."""
    if str(model).startswith("triton://") or requested == "triton":
        from runtime.backends.triton_backend import TritonBackend

        return TritonBackend(str(model))
    path = Path(model)
    if not path.is_file():
        raise DSRIRError(f"{path}: model file not found")
    kind = resolve_kind(path, requested)
    if kind == "onnxruntime":
        from runtime.backends.onnxruntime_backend import OrtBackend

        return OrtBackend(path)
    if kind == "torch":
        from runtime.backends.torch_backend import TorchBackend

        return TorchBackend(path)
    from runtime.backends.tensorrt_backend import TrtBackend

    return TrtBackend(path, plugin_lib)
