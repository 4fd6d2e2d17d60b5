"""export.engine.plan: what a plan refuses, static shapes, the timing cache per version and GPU, and the rebuild
command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dsrir.errors import DSRIRError
from dsrir.trt.gpu import GpuInfo, parse_capability, slug
from export.engine.plan import default_timing_cache, dsrir_command
from tests.dsrir.trt.helpers import ORIN, V86, V103, XAVIER
from tests.export.engine.helpers import make_onnx, plan_for


@pytest.mark.parametrize(
    ("version", "gpu", "options", "message"),
    [
        ((8, 5, 2), None, {"version_compatible": True}, "--version-compatible needs TensorRT 8.6 or later"),
        (V103, None, {"hardware_compatibility": "same-compute-capability"}, "needs TensorRT 10.9 or later"),
        (V86, XAVIER, {"hardware_compatibility": "ampere+"}, "needs an Ampere or newer GPU to build on; this is sm_72"),
        (V103, None, {"optimization_level": 6}, "--builder-optimization-level 6: expected 0 to 5"),
        ((8, 5, 2), None, {"optimization_level": 2}, "--builder-optimization-level needs TensorRT 8.6 or later"),
        (V103, None, {"precision": "fp32", "dla_core": 0}, "DLA runs FP16 or INT8 layers only"),
        (V103, None, {"dla_core": 0, "hardware_compatibility": "ampere+"}, "DLA engines are tied to their Jetson"),
        (V103, None, {"workspace_mib": 0}, "--workspace 0: expected a positive size in MiB"),
        (V103, None, {"plugin_lib": Path("nope.so")}, "--plugin-lib nope.so: file not found"),
        (
            V103,
            None,
            {"calib": Path("nope.cache"), "precision": "int8"},
            "--calib nope.cache: calibration cache not found",
        ),
        (V103, None, {"output": Path("m.onnx")}, "would overwrite the ONNX file"),
    ],
)
def test_plan_refuses_what_cannot_be_honoured(
    work: Path, version: tuple[int, ...], gpu: GpuInfo | None, options: dict[str, Any], message: str
) -> None:
    onnx_path = make_onnx(Path("m.onnx"))
    with pytest.raises(DSRIRError, match=None) as info:
        plan_for(version, onnx_path, gpu, **options)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_plugin_graph_needs_the_library_and_version_compatible_needs_dynamic_loading(work: Path) -> None:
    onnx_path = make_onnx(Path("p.onnx"), plugin=True)
    with pytest.raises(DSRIRError, match="1 DSRIR_PatchAttention node\\(s\\): pass --plugin-lib"):
        plan_for(V103, onnx_path)
    Path("lib.so").write_bytes(b"")
    with pytest.raises(DSRIRError, match="needs --plugin-mode dynamic"):
        plan_for(V103, onnx_path, plugin_lib=Path("lib.so"), version_compatible=True)
    with pytest.raises(DSRIRError, match="needs TensorRT 8.6\\+; use static"):
        plan_for((8, 5, 2), onnx_path, plugin_lib=Path("lib.so"), plugin_mode="dynamic")
    assert plan_for(V103, onnx_path, plugin_lib=Path("lib.so")).needs_plugin


def test_static_graph_gets_its_own_shapes(work: Path) -> None:
    profile = plan_for(V103, make_onnx(Path("s.onnx"), hw=512)).profile
    assert profile.min == profile.opt == profile.max == (1, 3, 512, 512)


def test_timing_cache_default_is_per_version_and_gpu(work: Path) -> None:
    assert default_timing_cache(V103, ORIN) == work / "xdg" / "dsrir" / "timing" / "trt10.3_orin_sm87.cache"
    assert slug("NVIDIA GeForce RTX 4090") == "nvidia-geforce-rtx-4090"
    assert parse_capability("8.7") == (8, 7) and ORIN.sm == "sm_87" and ORIN.cc == "8.7"
    assert plan_for(V103, make_onnx(Path("m.onnx")), ORIN).timing_cache == default_timing_cache(V103, ORIN)


def test_rebuild_command_round_trips_the_options(work: Path) -> None:
    Path("lib.so").write_bytes(b"")
    plan = plan_for(V103, make_onnx(Path("m.onnx"), plugin=True), plugin_lib=Path("lib.so"), dla_core=0)
    assert dsrir_command(plan) == (
        "python -m export.build_engine --onnx m.onnx --precision fp16 --plugin-lib lib.so --min-shape 1x3x256x256 "
        "--opt-shape 1x3x720x1280 --max-shape 1x3x1080x1920 --dla-core 0 --output m.engine"
    )
