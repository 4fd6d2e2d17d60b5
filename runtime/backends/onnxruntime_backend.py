"""ONNX Runtime backend: the best available execution provider, float or uint8 I/O as the graph's metadata says.

The CPU INT8 graph (precision ``int8-cpu``) is first fitted to the running CPU (:mod:`runtime.backends.cpu_int8`):
its 8-bit weights are halved in memory where ORT's u8 x s8 kernels would saturate; ``description`` says which.

A plugin-flavoured graph (``DSRIR_PatchAttention`` nodes) runs on the CPU through onnxruntime-extensions; that
path is slow and imports torch (``dsrir.ops``), so it is only taken when such nodes are present.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from dsrir.errors import DSRIRError
from dsrir.memory_budget import activation_bytes_per_pixel
from export.metadata import read_metadata
from runtime.backends.cpu_int8 import CpuFeatures, fit_to_cpu, read_cpu_features
from runtime.fit import Profile

PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
PLUGIN_OP = "DSRIR_PatchAttention"


def pick_providers(available: list[str]) -> list[str]:
    """Providers best-first, limited to those this onnxruntime build has; CPU always last."""
    chosen = [name for name in PREFERRED if name in available]
    return chosen or ["CPUExecutionProvider"]


def has_plugin_nodes(model: onnx.ModelProto) -> bool:
    return any(node.op_type == PLUGIN_OP for node in model.graph.node)


def widest_channels(model: onnx.ModelProto) -> int:
    """Output channels of the widest convolution (the largest first dimension of a 4-D weight): what the graph's
    activation memory per pixel grows with (:mod:`dsrir.memory_budget`)."""
    return max((int(weight.dims[0]) for weight in model.graph.initializer if len(weight.dims) == 4), default=3)


class OrtBackend:
    """One InferenceSession; ``infer`` feeds a preprocessed frame and returns the first output."""

    name = "onnxruntime"

    def __init__(
        self, path: Path, threads: int | None = None, cpu: CpuFeatures | None = None, exact_qdq: bool = False
    ) -> None:
        """``exact_qdq``: run a TensorRT Q/DQ graph (``int8-qdq``) as float Q/DQ arithmetic, which is what TensorRT
        computes; ORT's own fused integer kernels round differently (about 49.5 dB from it on the shipped network,
        AMD EPYC, 2026-12-06). For measuring TensorRT's INT8 quality on a CPU, not for speed."""
        import onnxruntime as ort  # type: ignore[import-untyped]

        model = onnx.load(str(path))
        try:
            meta = read_metadata(model)
        except KeyError as exc:
            raise DSRIRError(f"{path}: {exc.args[0]}") from None
        self.precision, self.io, self.size_multiple = meta.precision, meta.io, meta.size_multiple
        self.profile: Profile | None = None
        self.activation_bytes_per_pixel: int | None = activation_bytes_per_pixel(widest_channels(model))
        options: Any = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        if exact_qdq and meta.precision == "int8-qdq":
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        providers = pick_providers(list(ort.get_available_providers()))
        payload: str | bytes = str(path)
        weights = ""
        if meta.precision == "int8-cpu":
            model, how = fit_to_cpu(model, cpu or read_cpu_features())
            payload, weights = model.SerializeToString(), f", {how}"
        if has_plugin_nodes(model):  # the exporter's parity check's own CPU path, FP16 graphs included
            from dsrir.ops.patch_attention_ort import session_options_with_patch_attention
            from export.plugin_nodes import for_cpu_check

            options = session_options_with_patch_attention(options)
            payload, providers = for_cpu_check(model).SerializeToString(), ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(payload, options, providers=providers)
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
