"""ONNX Runtime backend: the best available execution provider, float or uint8 I/O as the graph's metadata says.

The CPU INT8 graph (precision ``int8-cpu``) is first fitted to the running CPU (:mod:`runtime.backends.cpu_int8`):
its 8-bit weights are halved in memory where ORT's u8 x s8 kernels would saturate; ``description`` says which.

A plugin-flavoured graph (``DSRIR_PatchAttention`` nodes) runs on the CPU through onnxruntime-extensions, the
exporter's own parity-check path (:mod:`dsrir.graph.session`); it is slow, so it is only taken when such nodes are
present.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from dsrir.errors import DSRIRError
from dsrir.graph.metadata import INT8_CPU, INT8_QDQ, read_metadata
from dsrir.graph.session import ort_session
from dsrir.memory_budget import activation_bytes_per_pixel
from dsrir.onnx_file import load_onnx
from runtime.backends import Backend
from runtime.backends.cpu_int8 import CpuFeatures, fit_to_cpu, read_cpu_features
from runtime.fit import Profile

PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def pick_providers(available: list[str]) -> list[str]:
    """Providers best-first, limited to those this onnxruntime build has; CPU always last."""
    chosen = [name for name in PREFERRED if name in available]
    return chosen or ["CPUExecutionProvider"]


def widest_channels(model: onnx.ModelProto) -> int:
    """Output channels of the widest convolution (the largest first dimension of a 4-D weight): what the graph's
    activation memory per pixel grows with (:mod:`dsrir.memory_budget`)."""
    return max((int(weight.dims[0]) for weight in model.graph.initializer if len(weight.dims) == 4), default=3)


class OrtBackend(Backend):
    """One InferenceSession; ``infer`` feeds a preprocessed frame and returns the first output."""

    name = "onnxruntime"

    def __init__(
        self, path: Path, threads: int | None = None, cpu: CpuFeatures | None = None, exact_qdq: bool = False
    ) -> None:
        """``exact_qdq``: run a TensorRT Q/DQ graph (``int8-qdq``) as float Q/DQ arithmetic, which is what TensorRT
        computes; ORT's own fused integer kernels round differently (about 49.5 dB from it on the shipped network,
        AMD EPYC, 2026-12-06). For measuring TensorRT's INT8 quality on a CPU, not for speed."""
        import onnxruntime as ort  # type: ignore[import-untyped]

        model = load_onnx(path, "--model")
        try:
            meta = read_metadata(model)
        except KeyError as exc:
            raise DSRIRError(f"{path}: {exc.args[0]}") from None
        self.precision, self.io, self.size_multiple = meta.precision, meta.io, meta.size_multiple
        self.profile: Profile | None = None
        self.activation_bytes_per_pixel: int | None = activation_bytes_per_pixel(widest_channels(model))
        options: Any = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        if exact_qdq and meta.precision == INT8_QDQ:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        providers = pick_providers(list(ort.get_available_providers()))
        unchanged: Path | None = path
        weights = ""
        if meta.precision == INT8_CPU:
            model, how = fit_to_cpu(model, cpu or read_cpu_features())
            unchanged, weights = None, f", {how}"
        try:
            self.session = ort_session(model, options, providers, unchanged)
        except ImportError:
            raise  # a plugin graph without onnxruntime-extensions: the message says what to install
        except Exception as exc:  # ORT's own errors are multi-line; keep the first line
            raise DSRIRError(f"{path}: ONNX Runtime cannot load it: {str(exc).strip().splitlines()[0]}") from None
        self.input_name = self.session.get_inputs()[0].name
        batch = self.session.get_inputs()[0].shape[0]
        self.max_batch: int | None = batch if isinstance(batch, int) and batch > 0 else None  # symbolic: any
        self.providers = list(self.session.get_providers())
        self.description = (
            f"onnxruntime {ort.__version__} ({self.providers[0]}), {meta.preset} {meta.precision}{weights}"
        )

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: batch})[0])

    def close(self) -> None:
        self.session = None
