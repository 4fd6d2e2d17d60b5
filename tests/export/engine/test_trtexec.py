"""export.engine.trtexec: the trtexec command equivalent to a plan, for TensorRT 8.6, 10.3 and 11.1."""

from __future__ import annotations

from pathlib import Path

from export.engine.trtexec import trtexec_command
from tests.dsrir.trt.helpers import CALIB, V86, V103, V111
from tests.export.engine.helpers import make_onnx, plan_for


def test_trtexec_commands_for_86_103_111(work: Path) -> None:
    onnx_path = make_onnx(Path("dsrir_int8.onnx"), "qdq", plugin=True)
    Path("libdsrir_trt_plugins.so").write_bytes(b"\x7fELF")
    options = {
        "precision": "int8",
        "plugin_lib": Path("libdsrir_trt_plugins.so"),
        "workspace_mib": 2048,
        "timing_cache": Path("orin.cache"),
        "optimization_level": 4,
        "output": Path("dsrir.engine"),
    }
    common = (
        "trtexec --onnx=dsrir_int8.onnx --saveEngine=dsrir.engine --skipInference --minShapes=input:1x3x256x256 "
        "--optShapes=input:1x3x720x1280 --maxShapes=input:1x3x1080x1920"
    )
    tail = "--timingCacheFile=orin.cache --builderOptimizationLevel=4"
    expected = {
        V86: f"{common} --int8 --staticPlugins=libdsrir_trt_plugins.so --memPoolSize=workspace:2048 {tail}",
        V103: f"{common} --stronglyTyped --staticPlugins=libdsrir_trt_plugins.so --memPoolSize=workspace:2048M {tail}",
        V111: f"{common} --staticPlugins=libdsrir_trt_plugins.so --memPoolSize=workspace:2048M {tail}",
    }
    for version, command in expected.items():
        assert trtexec_command(plan_for(version, onnx_path, **options)) == command


def test_trtexec_calibration_dla_and_compatibility_flags(work: Path) -> None:
    onnx_path = make_onnx(Path("dsrir.onnx"))
    Path("cal.cache").write_text(CALIB)
    Path("lib.so").write_bytes(b"")
    opt = "--optShapes=input:1x3x720x1280 --maxShapes=input:1x3x1080x1920"
    head = f"trtexec --onnx=dsrir.onnx --saveEngine=dsrir.engine --skipInference --minShapes=input:1x3x256x256 {opt}"
    best = {"precision": "best", "calib": Path("cal.cache"), "dla_core": 0}
    for version in (V86, V103):
        assert trtexec_command(plan_for(version, onnx_path, **best)) == (
            f"{head} --fp16 --int8 --calib=cal.cache --useDLACore=0 --allowGPUFallback"
        )
    portable = {"plugin_lib": Path("lib.so"), "plugin_mode": "dynamic", "version_compatible": True}
    assert trtexec_command(plan_for(V103, onnx_path, hardware_compatibility="ampere+", **portable)) == (
        f"{head} --fp16 --dynamicPlugins=lib.so --setPluginsToSerialize=lib.so --versionCompatible "
        "--hardwareCompatibilityLevel=ampere+"
    )
    assert "--plugins=lib.so" in trtexec_command(plan_for((8, 5, 2), onnx_path, plugin_lib=Path("lib.so")))
    same_cc = plan_for(V111, make_onnx(Path("h.onnx"), "fp16"), hardware_compatibility="same-compute-capability")
    assert trtexec_command(same_cc).endswith("--hardwareCompatibilityLevel=sameComputeCapability")
