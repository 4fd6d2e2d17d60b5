"""The INT8 calibration cache (TensorRT <= 10): written by the calibration stage, read by the engine builder, here.

Text: a first line ``TRT-<version>-EntropyCalibration2``, then ``tensor_name: <8 hex digits>`` per tensor
(the big-endian bits of the float32 scale, amax / 127). ``<version>`` is TensorRT's ``NV_TENSORRT_VERSION``:
major * 1000 + minor * 100 + patch up to 8.x (``8601``), major * 10000 + minor * 100 + patch from 10.0
(``100300``). TensorRT only accepts a cache whose header carries its own version (10.x reads a ``TRT-8600-...``
cache as "does not match calibrator algorithm type" and recalibrates with no data), so writing takes the version
explicitly; and a wrong or truncated file otherwise shows up as a silent accuracy collapse or an INT8 build that
quietly falls back to FP32, so the builder reads it before a build starts. TensorRT 11 has no calibrators, so no
cache.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsrir.atomic import write_text_atomic
from dsrir.errors import DSRIRError
from dsrir.trt.version import Version, short, strongly_typed_only

HEADER = re.compile(r"TRT-([0-9A-Za-z.]+)-EntropyCalibration2")
ENTRY = re.compile(r"(.+): ([0-9a-fA-F]{8})")


@dataclass(frozen=True)
class CalibrationCache:
    path: Path
    header_version: str  # as TensorRT wrote it, e.g. 8601 for 8.6.1, 100300 for 10.3.0
    scales: dict[str, float]  # tensor name -> float32 scale (amax / 127)

    @property
    def tensors(self) -> int:
        return len(self.scales)


def cache_header(version: Version) -> str:
    """``TRT-<NV_TENSORRT_VERSION>-EntropyCalibration2``: 8.6.1 -> ``TRT-8601-...``, 10.3 -> ``TRT-100300-...``."""
    major, minor, patch = (*version, 0, 0)[:3]
    if strongly_typed_only(version):
        raise DSRIRError(
            f"--target-trt {short(version)}: TensorRT {major} has no INT8 calibrators, so no calibration cache; "
            "build from the Q/DQ ONNX instead"
        )
    code = major * (10000 if major >= 10 else 1000) + minor * 100 + patch
    return f"TRT-{code}-EntropyCalibration2"


def encode_scale(scale: float) -> str:
    """The 8 hex digits TensorRT writes: the big-endian bits of the float32 scale."""
    return struct.pack(">f", np.float32(scale)).hex()


def decode_scale(hex_bits: str) -> float:
    """``3c010a14`` -> the float32 with those big-endian bits."""
    value: float = struct.unpack(">f", bytes.fromhex(hex_bits))[0]
    return value


def read_calibration_cache(path: Path) -> CalibrationCache:
    """Check ``path`` is an EntropyCalibration2 cache with at least one tensor scale, and read the scales."""
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DSRIRError(f"--calib {path}: unreadable calibration cache ({type(exc).__name__})") from None
    header = HEADER.fullmatch(lines[0].strip()) if lines else None
    if header is None:
        first = lines[0][:60] if lines else "an empty file"
        raise DSRIRError(f"--calib {path}: not an EntropyCalibration2 cache (starts with {first!r})")
    scales: dict[str, float] = {}
    for line in lines[1:]:
        if not line.strip():
            continue
        entry = ENTRY.fullmatch(line.strip())
        if entry is None:
            raise DSRIRError(f"--calib {path}: malformed line {line[:60]!r} (expected 'tensor: 8 hex digits')")
        if entry.group(1) in scales:
            raise DSRIRError(f"--calib {path}: tensor {entry.group(1)!r} is listed twice")
        scales[entry.group(1)] = decode_scale(entry.group(2))
    if not scales:
        raise DSRIRError(f"--calib {path}: the cache holds no tensor scales")
    return CalibrationCache(path, header.group(1), scales)


def write_calibration_cache(scales: Mapping[str, float], path: str | os.PathLike[str], version: Version) -> None:
    """``scales`` (tensor name -> float32 scale, amax / 127) as TensorRT ``version``'s cache, written atomically."""
    lines = [cache_header(version)] + [f"{name}: {encode_scale(scale)}" for name, scale in scales.items()]
    write_text_atomic(path, "\n".join(lines) + "\n")
