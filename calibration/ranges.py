"""Activation and weight ranges keyed by ONNX tensor name, the one currency of the calibration stage.

Every artefact (TensorRT cache, Q/DQ ONNX, QAT initial scales) is derived from a :class:`Ranges`; ONNX tensor names
are used because both TensorRT and ONNX Runtime see the graph, not the PyTorch modules. :func:`conv_sites` maps a
PyTorch module path to its ONNX Conv (the exporter names weight initializers after the module path).
"""

from __future__ import annotations

import json
import os
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import onnx

from dsrir.atomic import write_text_atomic
from dsrir.errors import DSRIRError
from dsrir.graph.quant import INT8_MAX, MIN_AMAX

RANGES_FORMAT = 1
RANGES_FILE = "ranges.json"  # what python -m calibration writes them to
# The exporter wraps the network, so initializers read ``model.<module path>.weight``.
WEIGHT_PREFIXES = ("model.", "")


@dataclass
class Ranges:
    """Symmetric ranges: ``amax`` per activation tensor (scale = amax / 127) and per output channel of weights."""

    calibrator: str
    activations: dict[str, float]
    weights: dict[str, list[float]] = field(default_factory=dict)
    model_sha256: str = ""
    manifest_sha256: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

    def scale(self, tensor: str) -> float:
        """The INT8 scale of an activation tensor; zero-range tensors get the smallest positive scale."""
        return max(self.activations[tensor], MIN_AMAX) / INT8_MAX

    def scales(self) -> dict[str, float]:
        """Every activation's INT8 scale, as a calibration cache records them."""
        return {tensor: self.scale(tensor) for tensor in self.activations}

    def save(self, path: str | os.PathLike[str]) -> None:
        payload = {"format": RANGES_FORMAT, **asdict(self)}
        write_text_atomic(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str], flag: str = "") -> Ranges:
        """The ranges in ``path``; any other JSON (the calibration manifest beside it, say) is one line naming the
        file and what was expected. ``flag``: the option that named the file, for that line."""
        where = f"{flag} {path}" if flag else str(path)
        try:
            payload = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DSRIRError(f"{where}: unreadable ranges JSON ({type(exc).__name__}: {exc})") from None
        expected = f"expected the {RANGES_FILE} that python -m calibration writes (format {RANGES_FORMAT})"
        if isinstance(payload, dict) and "frames" in payload and "activations" not in payload:
            raise DSRIRError(f"{where}: a calibration manifest, not a ranges file; {expected}, beside it")
        if not isinstance(payload, dict) or payload.pop("format", None) != RANGES_FORMAT:
            raise DSRIRError(f"{where}: not a ranges file; {expected}")
        known = {item.name for item in fields(cls)}
        required = {item.name for item in fields(cls) if item.default is MISSING and item.default_factory is MISSING}
        if not required <= payload.keys() <= known:
            raise DSRIRError(f"{where}: not a ranges file (fields {', '.join(sorted(payload))}); {expected}")
        return cls(**payload)


FLOAT_MODULES = ("ebd",)  # convolutions kept in floating point by name (see is_quantized_module)


def is_quantized_module(module: str) -> bool:
    """Which convolutions run in INT8: all but the PatchAttention MLP (``*.PA.conv_du.*``) and the image embedding
    (``ebd``).

    The MLP works on per-cell means and feeds a sigmoid gate: tiny compute, and the gate is where INT8 error would be
    multiplied into every pixel of the cell, so it stays in floating point (TensorRT and ORT alike); inside the
    TensorRT plugin it is float anyway. ``ebd`` is the first convolution (3 -> 56 channels, 0.6 % of the network's
    FLOPs): it turns the image into the trunk's features, and in INT8 it caused more of the Q/DQ graph's error than
    any other convolution (28 % of the sum of single-layer errors against the FP32 output on calibration frames);
    keeping it float took the max-calibrated PTQ graph of the shipped default weights from -0.42 dB to -0.29 dB mean
    PSNR against FP32 on the evaluation set (haze +0.40 dB; README, "INT8").
    """
    return ".PA.conv_du." not in f".{module}" and module not in FLOAT_MODULES


@dataclass(frozen=True)
class ConvSite:
    """One Conv node of an exported graph and the PyTorch module it came from."""

    module: str  # e.g. "SN1.encoder1.0.conv1"
    node: str
    input: str  # activation tensor name
    weight: str  # initializer name


def conv_sites(model: onnx.ModelProto) -> dict[str, ConvSite]:
    """Module path -> Conv node, for every Conv whose weight is a named initializer."""
    initializers = {init.name for init in model.graph.initializer}
    sites = {}
    for node in model.graph.node:
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in initializers:
            continue
        weight = node.input[1]
        module = weight.removesuffix(".weight")
        for prefix in WEIGHT_PREFIXES:
            if prefix and module.startswith(prefix):
                module = module[len(prefix) :]
                break
        sites[module] = ConvSite(module=module, node=node.name, input=node.input[0], weight=weight)
    return sites
