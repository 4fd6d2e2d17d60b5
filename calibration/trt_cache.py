"""Ranges -> TensorRT calibration cache (EntropyCalibration2 text), and a check of its names against a graph.

A cache lets TensorRT 8.x/10.x build an INT8 engine from the FP32 ONNX without running a calibrator. TensorRT
only accepts a cache whose header carries its own version (10.x reads a ``TRT-8600-...`` cache as "does not match
calibrator algorithm type" and recalibrates with no data), so the version is explicit (``--target-trt``). The
format itself is read by :mod:`dsrir.trt.calib_cache`, which the engine builder uses.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from calibration.ranges import Ranges, conv_sites, is_quantized_module
from dsrir.atomic import write_text_atomic
from dsrir.errors import DSRIRError
from dsrir.trt.calib_cache import read_calibration_cache
from dsrir.trt.version import Version, short

LAST_WITH_CALIBRATORS = 10  # TensorRT 11 removed INT8 calibrators, and with them the cache


def cache_header(version: Version) -> str:
    """``TRT-<NV_TENSORRT_VERSION>-EntropyCalibration2``: 8.6.1 -> ``TRT-8601-...``, 10.3 -> ``TRT-100300-...``."""
    major, minor, patch = (*version, 0, 0)[:3]
    if major > LAST_WITH_CALIBRATORS:
        raise DSRIRError(
            f"--target-trt {short(version)}: TensorRT {major} has no INT8 calibrators, so no calibration cache; "
            "build from the Q/DQ ONNX instead"
        )
    code = major * (10000 if major >= 10 else 1000) + minor * 100 + patch
    return f"TRT-{code}-EntropyCalibration2"


def encode_scale(scale: float) -> str:
    """The 8 hex digits TensorRT writes: the big-endian bits of the float32 scale."""
    return struct.pack(">f", np.float32(scale)).hex()


def write_calibration_cache(ranges: Ranges, path: str | os.PathLike[str], version: Version) -> None:
    """Every activation of ``ranges`` with scale ``amax / 127``, written atomically."""
    lines = [cache_header(version)] + [f"{name}: {encode_scale(ranges.scale(name))}" for name in ranges.activations]
    write_text_atomic(path, "\n".join(lines) + "\n")


def read_scales(path: str | os.PathLike[str]) -> dict[str, float]:
    """Tensor name -> float32 scale of a cache (format errors as one-line :class:`DSRIRError`)."""
    return read_calibration_cache(Path(path)).scales


@dataclass(frozen=True)
class NameCheck:
    """How a cache's tensor names meet a graph: names TensorRT would not find, quantised convs left without a scale."""

    names: int
    unknown: list[str]
    missing_conv_inputs: list[str]

    @property
    def ok(self) -> bool:
        return not self.unknown and not self.missing_conv_inputs

    def line(self) -> str:
        if self.ok:
            return f"all {self.names} cache names are graph tensors; every quantised conv input has a scale"
        missing = self.missing_conv_inputs
        return (
            f"{len(self.unknown)} cache names not in the graph ({_first(self.unknown)}); "
            f"{len(missing)} quantised conv inputs without a scale ({_first(missing)})"
        )


def _first(names: list[str], shown: int = 3) -> str:
    if not names:
        return "none"
    return ", ".join(names[:shown]) + (f", ... {len(names) - shown} more" if len(names) > shown else "")


def check_cache_names(names: Iterable[str], model: onnx.ModelProto) -> NameCheck:
    """Compare cache names with the graph's tensors (inputs and node outputs) and its quantised conv inputs."""
    names = list(names)
    graph_tensors = {value.name for value in model.graph.input}
    graph_tensors.update(output for node in model.graph.node for output in node.output)
    conv_inputs = sorted({site.input for module, site in conv_sites(model).items() if is_quantized_module(module)})
    known = set(names)
    return NameCheck(
        names=len(names),
        unknown=[name for name in names if name not in graph_tensors],
        missing_conv_inputs=[name for name in conv_inputs if name not in known],
    )
