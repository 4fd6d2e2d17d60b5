"""What the dsrir.trt and export.engine tests share: TensorRT versions, GPUs, a calibration cache, sidecars."""

from __future__ import annotations

from typing import Any

from dsrir.trt.gpu import GpuInfo
from dsrir.trt.sidecar import EngineSidecar

V86, V103, V111 = (8, 6, 1), (10, 3, 0, 30), (11, 1, 0)
ORIN = GpuInfo("Orin", (8, 7))
XAVIER = GpuInfo("Xavier", (7, 2))
CALIB = "TRT-8601-EntropyCalibration2\ninput: 3c010a14\nconv1: 3ca3d70a\n"


def sidecar(**changes: Any) -> EngineSidecar:
    base: dict[str, Any] = {
        "tensorrt_version": "10.3.0.30",
        "gpu_name": "Orin",
        "compute_capability": "8.7",
        "precision": "fp16",
        "precision_summary": "FP16",
        "strongly_typed": True,
        "flags": ["STRONGLY_TYPED"],
        "profile": {},
        "inputs": [{"name": "input", "dtype": "float32", "layout": "NCHW"}],
        "outputs": [{"name": "output", "dtype": "float32"}],
        "io": "float",
        "size_multiple": 8,
        "preset": "dsrir-xs",
        "onnx": "dsrir.onnx",
        "rebuild_command": "python -m export.build_engine --onnx dsrir.onnx --precision fp16 --output dsrir.engine",
    }
    return EngineSidecar(**{**base, **changes})
