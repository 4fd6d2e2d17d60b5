"""Which GPU is this: name and compute capability from the CUDA driver.

Engines are tied to a GPU's compute capability, and a timing cache to the GPU it timed, so both the
builder and the loader need it. It is read from ``libcuda`` through ctypes (cuInit, cuDeviceGet,
cuDeviceGetName, cuDeviceGetAttribute): present on every Jetson and every machine with an NVIDIA driver,
with no pycuda or torch needed.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass

CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75  # cuda.h; stable since CUDA 2
CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76
AMPERE = (8, 0)


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: tuple[int, int]

    @property
    def sm(self) -> str:
        """``sm_87`` for Orin: how CUDA names an architecture."""
        return sm_name(self.compute_capability)

    @property
    def cc(self) -> str:
        """``"8.7"``: how the sidecar records it."""
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"


def sm_name(capability: tuple[int, int]) -> str:
    return f"sm_{capability[0]}{capability[1]}"


def parse_capability(text: str) -> tuple[int, int]:
    """``"8.7"`` -> ``(8, 7)``."""
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def slug(name: str) -> str:
    """A file-name-safe GPU name: ``"NVIDIA GeForce RTX 4090"`` -> ``"nvidia-geforce-rtx-4090"``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


def query_gpu(index: int = 0) -> GpuInfo | None:
    """GPU ``index`` as the driver reports it, or None without a driver or a GPU."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    device = ctypes.c_int()
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGet(ctypes.byref(device), index) != 0:
        return None
    name = ctypes.create_string_buffer(256)
    major, minor = ctypes.c_int(), ctypes.c_int()
    if cuda.cuDeviceGetName(name, len(name), device) != 0:
        return None
    for value, attribute in (
        (major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
        (minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
    ):
        if cuda.cuDeviceGetAttribute(ctypes.byref(value), attribute, device) != 0:
            return None
    return GpuInfo(name.value.decode(errors="replace"), (major.value, minor.value))
