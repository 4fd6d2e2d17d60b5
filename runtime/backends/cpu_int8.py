"""Run ONNX Runtime's CPU INT8 graph correctly on the CPU at hand, whatever CPU it was calibrated on.

ORT's x86 u8 x s8 kernels without VNNI (AVX2, and AVX-512 without VNNI) multiply with ``vpmaddubsw``, which adds two
u8 x s8 products into a saturating int16: 2 x 255 x 127 = 64,770 overflows 32,767, and the output drifts far from
FP32 (29.8 dB on the shipped network). VNNI (``avx512_vnni``, ``avx_vnni``) and AMX accumulate in int32, and ARM's
dot-product kernels do not saturate either. Weights of 7 bits (|q| <= 64: 2 x 255 x 64 = 32,640) never saturate, at
a small cost in precision: ORT's ``reduce_range``.

The calibration stage writes 8-bit weights (the better graph wherever products do not saturate); the runtime
reads the running CPU's features and, where products would saturate, halves the weight codes and doubles their
scales in memory before ORT sees the graph. The file itself is never changed.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from dsrir.cpuinfo import CPUINFO, cpu_flags
from dsrir.graph.quant import REDUCED_RANGE, largest_weight_code, weight_dequantizers

# CPU flags (Linux /proc/cpuinfo spelling) whose integer dot products accumulate u8 x s8 in int32 without saturation.
NON_SATURATING_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@dataclass(frozen=True)
class CpuFeatures:
    """What decides whether ORT's u8 x s8 kernels saturate: the architecture and its integer dot-product flags."""

    machine: str
    flags: frozenset[str]

    @property
    def is_x86(self) -> bool:
        return self.machine.lower() in ("x86_64", "amd64", "i386", "i686", "x86")

    @property
    def saturates_u8s8(self) -> bool:
        """True on x86 without VNNI/AMX (unknown flags count as absent: the safe answer)."""
        return self.is_x86 and not self.flags.intersection(NON_SATURATING_FLAGS)

    def describe(self) -> str:
        found = sorted(self.flags.intersection(NON_SATURATING_FLAGS))
        if not self.is_x86:
            return f"{self.machine}: no x86 saturation"
        return f"{self.machine} with {', '.join(found)}" if found else f"{self.machine} without VNNI/AMX"


def read_cpu_features(cpuinfo: Path = CPUINFO) -> CpuFeatures:
    """The running CPU's features: ``/proc/cpuinfo`` flags where it exists (Linux), none otherwise."""
    return CpuFeatures(platform.machine(), cpu_flags(cpuinfo))


def to_reduced_range(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` with every INT8 weight code halved (rounded to even, |q| <= 64) and its scale doubled.

    Zero points stay 0 (ORT's weights are symmetric); the dequantised weights move by at most one 7-bit step.
    """
    result = onnx.ModelProto()
    result.CopyFrom(model)
    initializers = {init.name: init for init in result.graph.initializer}
    for node in weight_dequantizers(result):
        codes, scale = initializers[node.input[0]], initializers[node.input[1]]
        if len(node.input) > 2 and node.input[2] and numpy_helper.to_array(initializers[node.input[2]]).any():
            raise ValueError(f"{node.name}: asymmetric INT8 weights (non-zero zero point) cannot be halved")
        halved = np.clip(np.round(numpy_helper.to_array(codes).astype(np.float32) / 2), -REDUCED_RANGE, REDUCED_RANGE)
        codes.CopyFrom(numpy_helper.from_array(halved.astype(np.int8), codes.name))
        scale.CopyFrom(numpy_helper.from_array((numpy_helper.to_array(scale) * 2).astype(np.float32), scale.name))
    return result


def fit_to_cpu(model: onnx.ModelProto, cpu: CpuFeatures) -> tuple[onnx.ModelProto, str]:
    """The CPU INT8 graph this CPU computes correctly, and one line saying which weights it runs with and why."""
    largest = largest_weight_code(model)
    if largest <= REDUCED_RANGE:
        return model, f"7-bit weights as calibrated ({cpu.describe()})"
    if not cpu.saturates_u8s8:
        return model, f"8-bit weights ({cpu.describe()}: u8 x s8 products do not saturate)"
    return to_reduced_range(model), f"7-bit weights, halved at load ({cpu.describe()}: 8-bit products would saturate)"
