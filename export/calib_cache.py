"""The INT8 calibration cache format (TensorRT <= 10), checked before a build starts.

Text: a first line ``TRT-<version>-EntropyCalibration2``, then ``tensor_name: <8 hex digits>`` per tensor
(the big-endian bits of the float32 scale, amax / 127). A wrong or truncated file otherwise shows up as
a silent accuracy collapse or an INT8 build that quietly falls back to FP32.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dsrir.errors import DSRIRError

HEADER = re.compile(r"TRT-([0-9A-Za-z.]+)-EntropyCalibration2")  # 8.6 writes TRT-8601-...; 10.x unconfirmed
ENTRY = re.compile(r"(.+): ([0-9a-fA-F]{8})")


@dataclass(frozen=True)
class CalibrationCache:
    path: Path
    header_version: str  # as TensorRT wrote it, e.g. 8601 for 8.6.1
    tensors: int


def read_calibration_cache(path: Path) -> CalibrationCache:
    """Check ``path`` is an EntropyCalibration2 cache with at least one tensor scale."""
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DSRIRError(f"--calib {path}: unreadable calibration cache ({type(exc).__name__})") from None
    header = HEADER.fullmatch(lines[0].strip()) if lines else None
    if header is None:
        first = lines[0][:60] if lines else "an empty file"
        raise DSRIRError(f"--calib {path}: not an EntropyCalibration2 cache (starts with {first!r})")
    bad = [line for line in lines[1:] if line.strip() and not ENTRY.fullmatch(line.strip())]
    if bad:
        raise DSRIRError(f"--calib {path}: malformed line {bad[0][:60]!r} (expected 'tensor: 8 hex digits')")
    tensors = sum(1 for line in lines[1:] if line.strip())
    if tensors == 0:
        raise DSRIRError(f"--calib {path}: the cache holds no tensor scales")
    return CalibrationCache(path, header.group(1), tensors)
