"""The CPU a number was measured on, read from Linux's ``/proc/cpuinfo`` (what ``lscpu`` reads).

INT8 accuracy and every speed or quality-per-second figure differ between CPUs: ONNX Runtime's u8 x s8 kernels
saturate without VNNI, and AVX-512 machines run the float kernels faster. Cloud machines may report only a
family name ("AMD EPYC"), so the family/model numbers and the vector extensions are part of the name. Read
once here for the runtime (which INT8 kernels saturate) and for every benchmark's record.
"""

from __future__ import annotations

import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")

# /proc/cpuinfo flag -> how a reader of a benchmark table knows it; in the order a name lists them.
VECTOR_EXTENSIONS = (
    ("avx2", "AVX2"),
    ("avx512f", "AVX-512"),
    ("avx512_vnni", "AVX512-VNNI"),
    ("avx_vnni", "AVX-VNNI"),
    ("amx_int8", "AMX-INT8"),
    ("asimddp", "ARM dot product"),
)


def _fields(cpuinfo: Path) -> list[tuple[str, str]]:
    """Every ``key: value`` line of the file (every processor's), or none where it is unreadable."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return []
    pairs = (line.partition(":") for line in text.splitlines())
    return [(key.strip(), value.strip()) for key, sep, value in pairs if sep]


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The CPU's feature flags, over every processor (x86 spells the line ``flags``, ARM ``Features``)."""
    return frozenset(word for key, value in _fields(cpuinfo) if key in ("flags", "Features") for word in value.split())


def cpu_name(cpuinfo: Path = CPUINFO) -> str:
    """``AMD EPYC (family 25 model 1; AVX2)``: the model name, its family/model and vector extensions."""
    fields = dict(reversed(_fields(cpuinfo)))  # the first processor's value of each key
    name = fields.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    details = []
    if "cpu family" in fields and "model" in fields:
        details.append(f"family {fields['cpu family']} model {fields['model']}")
    flags = cpu_flags(cpuinfo)
    if extensions := [label for flag, label in VECTOR_EXTENSIONS if flag in flags]:
        details.append(", ".join(extensions))
    return f"{name} ({'; '.join(details)})" if details else name
