"""dsrir.trt.compat: whether an engine runs here, and a one-line message naming both sides and the rebuild."""

from __future__ import annotations

from dsrir.trt.compat import incompatibility, warnings_for
from dsrir.trt.gpu import GpuInfo
from tests.dsrir.trt.helpers import ORIN, V86, V103, V111, XAVIER, sidecar


def test_incompatibility_message_names_both_sides_and_the_rebuild() -> None:
    assert incompatibility(sidecar(), V103, ORIN) is None
    assert incompatibility(sidecar(), (8, 6, 2, 3), XAVIER) == (
        "engine built with TensorRT 10.3 for sm_87; this is 8.6 on sm_72: rebuild with "
        "python -m export.build_engine --onnx dsrir.onnx --precision fp16 --output dsrir.engine"
    )
    assert incompatibility(sidecar(), (10, 3, 0, 26), ORIN) == (
        "engine built with TensorRT 10.3.0.30 for sm_87; this is 10.3.0.26 on sm_87: rebuild with "
        "python -m export.build_engine --onnx dsrir.onnx --precision fp16 --output dsrir.engine"
    )
    assert "this is 10.3 on sm_86" in str(incompatibility(sidecar(), V103, GpuInfo("RTX 3090", (8, 6))))
    assert incompatibility(sidecar(rebuild_command=None), V86, ORIN) == (
        "engine built with TensorRT 10.3 for sm_87; this is 8.6 on sm_87: rebuild with "
        "python -m export.build_engine --onnx dsrir.onnx"
    )


def test_version_and_hardware_compatible_engines_relax_the_checks() -> None:
    portable = sidecar(version_compatible=True, tensorrt_version="8.6.1")
    assert incompatibility(portable, V103, ORIN) is None
    assert incompatibility(portable, V111, ORIN) is None
    assert "runs on its own or a later TensorRT only" in str(incompatibility(portable, (8, 5, 2), ORIN))
    ampere = sidecar(hardware_compatibility="ampere+", compute_capability="8.6")
    assert incompatibility(ampere, V103, ORIN) is None
    assert incompatibility(ampere, V103, GpuInfo("H100", (9, 0))) is None
    assert "an ampere+ engine needs sm_80 or newer" in str(incompatibility(ampere, V103, XAVIER))
    assert "same sm_87" in warnings_for(sidecar(gpu_name="Jetson AGX Orin"), V103, ORIN)[0]
    assert "lean runtime" in warnings_for(portable, V103, ORIN)[0]
