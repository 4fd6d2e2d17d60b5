"""export.build_engine and dsrir.trt.engine without TensorRT: the version switch, shapes, trtexec commands,
sidecars and compatibility checks are pure and tested for real; the thin TensorRT layer runs against a
recording fake module (call order and arguments; mypy checks the real API in test_mypy_tensorrt.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dsrir.errors import DSRIRError
from dsrir.graph.metadata import ExportMetadata, write_metadata
from dsrir.trt import engine as engine_io
from dsrir.trt.calib_cache import read_calibration_cache
from dsrir.trt.compat import incompatibility, warnings_for
from dsrir.trt.gpu import GpuInfo, parse_capability, slug
from dsrir.trt.import_rules import TARGETS
from dsrir.trt.plugin import creator_lookup, missing_creator_message
from dsrir.trt.sidecar import EngineSidecar, read_sidecar, write_sidecar
from dsrir.trt.version import parse_version, resolve_target
from export import build_engine
from export.engine.graph import inspect_onnx
from export.engine.plan import BuildOptions, default_timing_cache, dsrir_command, make_plan
from export.engine.precision import decide_precision
from export.engine.shapes import make_profile, parse_shape
from export.engine.torch_trt import check_options, torch_profile
from export.engine.trtexec import trtexec_command
from tests.paths import REPO

V86, V103, V111 = (8, 6, 1), (10, 3, 0, 30), (11, 1, 0)
ORIN = GpuInfo("Orin", (8, 7))
XAVIER = GpuInfo("Xavier", (7, 2))
CALIB = "TRT-8601-EntropyCalibration2\ninput: 3c010a14\nconv1: 3ca3d70a\n"


def make_onnx(
    path: Path, kind: str = "fp32", io: str = "float", plugin: bool = False, hw: int | None = None, opset: int = 17
) -> Path:
    """A tiny DSRIR-shaped graph: image in, 1x1 conv (+ optional Q/DQ and plugin node), image out; opset 17 by
    default, which every targeted TensorRT (8.5 to 11.x) imports. ``kind`` ``cpu_int8`` is ONNX Runtime's CPU INT8
    form: a UINT8 Q/DQ pair with zero point 128 and ``dsrir.precision`` int8-cpu."""
    ftype = TensorProto.FLOAT16 if kind == "fp16" else TensorProto.FLOAT
    height, width = (hw, hw) if hw else ("height", "width")
    weight = np.ones((3, 3, 1, 1), np.float16 if kind == "fp16" else np.float32)
    nodes, inits = [], [numpy_helper.from_array(weight, "w")]
    if io == "uint8":
        image = helper.make_tensor_value_info("frames", TensorProto.UINT8, ["batch", height, width, 3])
        nodes += [
            helper.make_node("Cast", ["frames"], ["c"], to=ftype),
            helper.make_node("Transpose", ["c"], ["x"], perm=[0, 3, 1, 2]),
        ]
    else:
        image = helper.make_tensor_value_info("input", ftype, ["batch", 3, height, width])
        nodes.append(helper.make_node("Identity", ["input"], ["x"]))
    source = "x"
    if kind in ("qdq", "cpu_int8"):
        zero_point = np.array(128, np.uint8) if kind == "cpu_int8" else np.array(0, np.int8)
        inits += [
            numpy_helper.from_array(np.array(0.01, np.float32), "s"),
            numpy_helper.from_array(zero_point, "z"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"]),
        ]
        source = "dq"
    nodes.append(helper.make_node("Conv", [source, "w"], ["y"]))
    opsets = [helper.make_opsetid("", opset)]
    if plugin:
        for name, shape in (("w1", (1, 3)), ("b1", (1,)), ("w2", (3, 1)), ("b2", (3,))):
            inits.append(numpy_helper.from_array(np.ones(shape, np.float32), name))
        attrs = {"plugin_version": "1", "plugin_namespace": "", "grid_h": 4, "grid_w": 4}
        nodes.append(
            helper.make_node(
                "DSRIR_PatchAttention", ["y", "w1", "b1", "w2", "b2"], ["y2"], domain="trt.plugins", **attrs
            )
        )
        opsets.append(helper.make_opsetid("trt.plugins", 1))
    last = "y2" if plugin else "y"
    if io == "uint8":
        nodes += [
            helper.make_node("Transpose", [last], ["t"], perm=[0, 2, 3, 1]),
            helper.make_node("Cast", ["t"], ["output"], to=TensorProto.UINT8),
        ]
        out = helper.make_tensor_value_info("output", TensorProto.UINT8, ["batch", height, width, 3])
    else:
        nodes.append(helper.make_node("Identity", [last], ["output"]))
        out = helper.make_tensor_value_info("output", ftype, ["batch", 3, height, width])
    model = helper.make_model(helper.make_graph(nodes, "dsrir", [image], [out], inits), opset_imports=opsets)
    precision = {"qdq": "int8-qdq", "cpu_int8": "int8-cpu"}.get(kind, kind)
    flavour = "plugin" if plugin else "decomposed"
    write_metadata(model, ExportMetadata("dsrir-xs", "all_in_one", flavour, precision, io, 8, "0-1", "0.1.0"))
    onnx.save(model, str(path))
    return path


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder with relative paths (exact command strings), caches under it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path


def plan_for(version: tuple[int, ...], onnx_path: Path, gpu: GpuInfo | None = None, **options: Any) -> Any:
    return make_plan(BuildOptions(onnx=onnx_path, **options), inspect_onnx(onnx_path), version, gpu)


# ---- the version switch -------------------------------------------------------------------------------

SWITCH = [
    # version, requested, graph, calib, expected (strongly typed, builder flags, network flags) or error text
    (V86, "fp32", "fp32", None, (False, (), ("EXPLICIT_BATCH",))),
    (V86, "fp16", "fp32", None, (False, ("FP16",), ("EXPLICIT_BATCH",))),
    (V86, "fp16", "fp16", None, (False, ("FP16",), ("EXPLICIT_BATCH",))),
    (V86, "int8", "qdq", None, (False, ("INT8",), ("EXPLICIT_BATCH",))),
    (V86, "int8", "fp32", "c.cache", (False, ("INT8",), ("EXPLICIT_BATCH",))),
    (V86, "int8", "fp32", None, "needs a calibration cache: pass --calib"),
    (V86, "best", "fp32", None, (False, ("FP16",), ("EXPLICIT_BATCH",))),
    (V86, "best", "fp32", "c.cache", (False, ("FP16", "INT8"), ("EXPLICIT_BATCH",))),
    (V86, "best", "qdq", None, (False, ("FP16", "INT8"), ("EXPLICIT_BATCH",))),
    (V103, "fp32", "fp32", None, (False, (), ())),
    (V103, "fp16", "fp32", None, (False, ("FP16",), ())),
    (V103, "fp16", "fp16", None, (True, (), ("STRONGLY_TYPED",))),
    (V103, "int8", "qdq", None, (True, (), ("STRONGLY_TYPED",))),
    (V103, "int8", "fp32", "c.cache", (False, ("INT8",), ())),
    (V103, "int8", "fp32", None, "needs a calibration cache: pass --calib CACHE from the calibration stage"),
    (V103, "best", "qdq", None, (False, ("FP16", "INT8"), ())),
    (V103, "best", "fp16", None, (True, (), ("STRONGLY_TYPED",))),
    (V103, "fp32", "qdq", None, "the graph is INT8 (Q/DQ): use --precision int8 or best"),
    (V103, "fp16", "qdq", None, "use --precision int8 or best"),
    (V103, "int8", "fp16", None, "INT8 needs the calibration stage's Q/DQ ONNX"),
    (V111, "fp32", "fp32", None, (True, (), ())),
    (V111, "fp16", "fp16", None, (True, (), ())),
    (V111, "int8", "qdq", None, (True, (), ())),
    (V111, "best", "fp32", None, (True, (), ())),
    (V111, "best", "qdq", None, (True, (), ())),
    (
        V111,
        "fp16",
        "fp32",
        None,
        "TensorRT 11 has no FP16 flag: export an FP16 graph with python -m export.onnx --precision fp16",
    ),
    (
        V111,
        "int8",
        "fp32",
        None,
        "TensorRT 11.1 removed INT8 calibrators: build from the calibration stage's Q/DQ ONNX",
    ),
    (V111, "int8", "fp32", "c.cache", "TensorRT 11.1 removed INT8 calibrators, so --calib cannot be used"),
    (V103, "fp16", "fp32", "c.cache", "use it with --precision int8 or best"),
    (V103, "int8", "qdq", "c.cache", "its scales are already in the graph; drop --calib"),
]


@pytest.mark.parametrize(("version", "requested", "graph", "calib", "expected"), SWITCH)
def test_version_switch(version: tuple[int, ...], requested: str, graph: str, calib: str | None, expected: Any) -> None:
    if isinstance(expected, str):
        with pytest.raises(DSRIRError, match=None) as info:
            decide_precision(version, requested, graph, calib)
        assert expected in str(info.value) and "\n" not in str(info.value)
        return
    plan = decide_precision(version, requested, graph, calib)
    assert (plan.strongly_typed, plan.builder_flags, plan.network_flags) == expected
    assert plan.calibration_cache == calib


def test_switch_notes_deprecations_and_skipped_int8() -> None:
    assert "deprecated from 10.12" in decide_precision(V103, "fp16", "fp32").notes[0]
    assert "deprecated from 10.1" in decide_precision(V103, "int8", "fp32", "c").notes[0]
    assert "INT8 left off" in decide_precision(V86, "best", "fp32").notes[0]
    assert decide_precision(V86, "fp16", "fp32").notes == ()


# ---- shapes -----------------------------------------------------------------------------------------


def test_shape_specs_parse_with_or_without_the_input_name() -> None:
    assert parse_shape("input:1x3x256x256", "--min-shape", "input") == (1, 3, 256, 256)
    assert parse_shape("1x3x256x256", "--min-shape", "input") == (1, 3, 256, 256)
    assert parse_shape("'input':1x3x8x8", "--min-shape", "input") == (1, 3, 8, 8)
    for text, message in (
        ("image:1x3x8x8", "--opt-shape image:1x3x8x8: the model's input is named 'input', not 'image'"),
        ("1x3xHx8", "expected [input:]NxCxHxW"),
        ("1x3x0x8", "every dimension must be positive"),
        ("input:1x3x8x8,mask:1x1x8x8", "the model has one input"),
    ):
        with pytest.raises(DSRIRError, match=None) as info:
            parse_shape(text, "--opt-shape", "input")
        assert message in str(info.value)


def test_default_profile_is_720p_video_in_either_layout() -> None:
    nchw = make_profile("input", "NCHW", ("n", 3, "h", "w"), 8)
    assert (nchw.min, nchw.opt, nchw.max) == ((1, 3, 256, 256), (1, 3, 720, 1280), (1, 3, 1080, 1920))
    nhwc = make_profile("frames", "NHWC", ("n", "h", "w", 3), 8)
    assert (nhwc.min, nhwc.opt, nhwc.max) == ((1, 256, 256, 3), (1, 720, 1280, 3), (1, 1080, 1920, 3))
    assert nhwc.spec("opt") == "frames:1x720x1280x3"
    assert make_profile("input", "NCHW", ("n", 3, "h", "w"), 16).max == (1, 3, 1088, 1920)  # rounded up
    static = make_profile("input", "NCHW", (1, 3, 512, 512), 8)
    assert static.min == static.opt == static.max == (1, 3, 512, 512)


def test_defaults_bend_to_the_shapes_given() -> None:
    small = make_profile("input", "NCHW", ("n", 3, "h", "w"), 8, max_text="1x3x480x640")
    assert (small.min, small.opt, small.max) == ((1, 3, 256, 256), (1, 3, 480, 640), (1, 3, 480, 640))
    big = make_profile("input", "NCHW", ("n", 3, "h", "w"), 8, min_text="1x3x800x1280")
    assert (big.opt, big.max) == ((1, 3, 800, 1280), (1, 3, 1080, 1920))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"opt_text": "1x3x721x1280"}, "--opt-shape 1x3x721x1280: H=721 and W=1280 must be multiples of 8"),
        ({"min_text": "1x3x800x800", "opt_text": "1x3x720x1280"}, "--min-shape 1x3x800x800 is larger than --opt-shape"),
        (
            {"opt_text": "1x3x720x1280", "max_text": "1x3x512x512"},
            "--opt-shape 1x3x720x1280 is larger than --max-shape",
        ),
        ({"max_text": "1x4x512x512"}, "--max-shape 1x4x512x512: NCHW input needs 3 channels at axis 1"),
        ({"max_text": "1x3x512"}, "the input is 4-D (NCHW); got 3 dimensions"),
        ({"min_text": "2x3x256x256", "static": (1, 3, "h", "w")}, "dimension 0 of NCHW is fixed to 1 in the model"),
    ],
)
def test_bad_profiles_name_the_flag(kwargs: dict[str, Any], message: str) -> None:
    static = kwargs.pop("static", ("n", 3, "h", "w"))
    with pytest.raises(DSRIRError, match=None) as info:
        make_profile("input", "NCHW", static, 8, **kwargs)
    assert message in str(info.value)


# ---- the ONNX side of the plan ------------------------------------------------------------------------


def test_graph_inspection(work: Path) -> None:
    qdq = inspect_onnx(make_onnx(work / "q.onnx", "qdq"))
    assert (qdq.kind, qdq.input.name, qdq.layout, qdq.plugin_nodes) == ("qdq", "input", "NCHW", 0)
    frames = inspect_onnx(make_onnx(work / "u.onnx", "fp16", io="uint8", plugin=True))
    assert (frames.kind, frames.input.name, frames.input.dtype, frames.layout, frames.plugin_nodes) == (
        "fp16",
        "frames",
        "uint8",
        "NHWC",
        1,
    )
    assert inspect_onnx(make_onnx(work / "f.onnx")).kind == "fp32"


def test_graph_problems_are_one_line(work: Path) -> None:
    (work / "junk.onnx").write_bytes(b"not a model")
    bare = make_onnx(work / "bare.onnx")
    model = onnx.load(str(bare))
    del model.metadata_props[:]
    onnx.save(model, str(bare))
    for path, message in (
        (work / "missing.onnx", "ONNX file not found"),
        (work / "junk.onnx", "not a valid ONNX model"),
        (bare, "ONNX metadata lacks dsrir.preset: not exported by export.onnx (export it with python -m export.onnx)"),
    ):
        with pytest.raises(DSRIRError, match=None) as info:
            inspect_onnx(path)
        assert message in str(info.value) and "\n" not in str(info.value)


# ---- trtexec commands ---------------------------------------------------------------------------------


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


# ---- plan checks --------------------------------------------------------------------------------------


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


def test_calibration_cache_format(tmp_path: Path) -> None:
    cache = tmp_path / "c.cache"
    cache.write_text(CALIB)
    assert (read_calibration_cache(cache).tensors, read_calibration_cache(cache).header_version) == (2, "8601")
    for text, message in (
        ("TRT-8601-MinMaxCalibration\n", "not an EntropyCalibration2 cache"),
        ("TRT-8601-EntropyCalibration2\ninput: zz\n", "malformed line 'input: zz'"),
        ("TRT-8601-EntropyCalibration2\n", "holds no tensor scales"),
    ):
        cache.write_text(text)
        with pytest.raises(DSRIRError, match=message):
            read_calibration_cache(cache)


def test_static_graph_gets_its_own_shapes(work: Path) -> None:
    profile = plan_for(V103, make_onnx(Path("s.onnx"), hw=512)).profile
    assert profile.min == profile.opt == profile.max == (1, 3, 512, 512)


def test_timing_cache_default_is_per_version_and_gpu(work: Path) -> None:
    assert default_timing_cache(V103, ORIN) == work / "xdg" / "dsrir" / "timing" / "trt10.3_orin_sm87.cache"
    assert slug("NVIDIA GeForce RTX 4090") == "nvidia-geforce-rtx-4090"
    assert parse_capability("8.7") == (8, 7) and ORIN.sm == "sm_87" and ORIN.cc == "8.7"
    assert plan_for(V103, make_onnx(Path("m.onnx")), ORIN).timing_cache == default_timing_cache(V103, ORIN)


def test_target_version_resolution() -> None:
    assert resolve_target(None, None, dry_run=True) == (10, 3)
    assert resolve_target(None, "8.6", dry_run=True) == (8, 6)
    assert resolve_target(V103, None, dry_run=False) == V103
    assert resolve_target(V103, "11.1", dry_run=True) == (11, 1)
    with pytest.raises(DSRIRError, match="--target-trt 8.6 but TensorRT 10.3 is installed"):
        resolve_target(V103, "8.6", dry_run=False)
    with pytest.raises(DSRIRError, match="TensorRT 8.4 is too old"):
        resolve_target(None, "8.4", dry_run=True)
    with pytest.raises(DSRIRError, match="expected a TensorRT version"):
        parse_version("ten", "--target-trt")


def test_plugin_lookup_per_major() -> None:
    assert creator_lookup(8) == "get_plugin_creator" and creator_lookup(10) == creator_lookup(11) == "get_creator"
    assert missing_creator_message(Path("lib.so"), "static") == (
        'TensorRT has no plugin creator DSRIR_PatchAttention version "1" namespace "" after loading --plugin-lib '
        "lib.so: a library built with -DDSRIR_TRT_STATIC_REGISTRATION=0 needs --plugin-mode dynamic"
    )


# ---- sidecar and compatibility ------------------------------------------------------------------------


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


def test_sidecar_round_trip_and_checks(work: Path) -> None:
    write_sidecar("e.engine.json", sidecar(engine_sha256="0" * 64, extra={"mode": "all_in_one"}))
    loaded = read_sidecar("e.engine.json")
    assert loaded == sidecar(engine_sha256="0" * 64, extra={"mode": "all_in_one"})
    assert read_sidecar("missing.json") is None
    Path("bad.json").write_text("[1]")
    with pytest.raises(DSRIRError, match="not a JSON object"):
        read_sidecar("bad.json")
    Path("foreign.json").write_text('{"name": "x"}')
    with pytest.raises(DSRIRError, match="lacks tensorrt_version, compute_capability, gpu_name"):
        read_sidecar("foreign.json")
    with pytest.raises(DSRIRError, match="describes another engine"):
        engine_io.check_sidecar(Path("e.engine"), loaded, V103, ORIN, b"engine")
    assert "no sidecar" in engine_io.check_sidecar(Path("e.engine"), None, V103, ORIN)[0]
    assert engine_io.plugin_to_load(None, sidecar(plugin_library="lib.so", plugin_mode="dynamic")) == (
        Path("lib.so"),
        "dynamic",
    )
    assert engine_io.plugin_to_load(Path("mine.so"), None) == (Path("mine.so"), "static")
    serialized = sidecar(plugin_library="lib.so", plugin_mode="dynamic", version_compatible=True)
    assert engine_io.plugin_to_load(None, serialized) == (None, "dynamic")


# ---- the CLI ------------------------------------------------------------------------------------------


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = build_engine.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_dry_run_int8_needs_qdq_or_a_calibration_cache(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_onnx(Path("fp32.onnx"))
    make_onnx(Path("int8.onnx"), "qdq")
    code, out, err = run_cli(["--precision", "int8", "--dry-run", "--onnx", "fp32.onnx"], capsys)
    assert code == 2 and out.startswith("ONNX import check") and "engine plan" not in out
    assert err.startswith("error: INT8 from an FP32 graph needs a calibration cache: pass --calib CACHE")
    assert err.count("\n") == 1
    code, out, err = run_cli(["--precision", "int8", "--dry-run", "--onnx", "int8.onnx"], capsys)
    assert code == 0 and err == ""
    assert "TensorRT        10.3 (target; not installed here)" in out
    assert "int8: INT8 via explicit quantization (Q/DQ, strongly typed)" in out
    assert "profile         min 1x3x256x256  opt 1x3x720x1280  max 1x3x1080x1920" in out
    assert out.rstrip().endswith("--maxShapes=input:1x3x1080x1920 --stronglyTyped")


def test_dry_run_with_a_calibration_cache_on_86(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_onnx(Path("fp32.onnx"))
    Path("cal.cache").write_text(CALIB)
    args = ["--precision", "int8", "--calib", "cal.cache", "--dry-run", "--onnx", "fp32.onnx", "--target-trt", "8.6"]
    code, out, _ = run_cli(args, capsys)
    assert code == 0
    assert "builder flags   INT8" in out and "calibration     cal.cache" in out and "--int8 --calib=cal.cache" in out


def test_trt11_fp16_flag_request_is_refused(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_onnx(Path("fp32.onnx"))
    code, _, err = run_cli(["--precision", "fp16", "--dry-run", "--onnx", "fp32.onnx", "--target-trt", "11.1"], capsys)
    assert code == 2
    assert (
        err == "error: TensorRT 11 has no FP16 flag: export an FP16 graph with python -m export.onnx --precision fp16\n"
    )


# ---- the ONNX import check ---------------------------------------------------------------------------


def import_rows(out: str) -> dict[str, str]:
    """The per-target rows a dry run without --target-trt prints before the plan: version -> result."""
    lines = out.split("engine plan:")[0].splitlines()
    assert lines[0] == "ONNX import check (dsrir/trt/import_rules.py):"
    rows = [line.split(None, 2)[1:] for line in lines[1:]]
    return {version: result for version, result in rows}


def test_dry_run_reports_the_import_check_for_every_target(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_onnx(Path("new.onnx"))  # opset 17, as export.onnx --target-trt 8.x writes
    make_onnx(Path("old.onnx"), opset=18)
    code, out, err = run_cli(["--dry-run", "--onnx", "new.onnx"], capsys)
    assert code == 0, err
    assert import_rows(out) == dict.fromkeys(TARGETS, "ok")
    assert "ONNX import     ok for 10.3 (rules: onnx/onnx-tensorrt 96e7811 (branch 10.1-GA" in out
    code, out, err = run_cli(["--dry-run", "--onnx", "old.onnx"], capsys)
    assert code == 0, err  # the plan's TensorRT (10.3 by default) parses opset 18
    rows = import_rows(out)
    for old in ("8.5", "8.6"):
        assert rows[old] == f"1 problem: the model: opset 18: TensorRT {old}'s parser implements opset 17 at most"
    assert rows["10.3"] == rows["10.16"] == rows["11.1"] == "ok"


def test_a_graph_the_target_cannot_import_is_one_line(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_onnx(Path("old.onnx"), opset=18)
    code, out, err = run_cli(["--dry-run", "--onnx", "old.onnx", "--target-trt", "8.6"], capsys)
    assert code == 2 and out == ""
    assert err == (
        "error: old.onnx: TensorRT 8.6 would not import it: the model: opset 18: TensorRT 8.6's parser implements "
        "opset 17 at most; re-export with python -m export.onnx --target-trt 8.6\n"
    )
    code, out, err = run_cli(["--dry-run", "--onnx", "old.onnx", "--target-trt", "10.3"], capsys)
    assert code == 0 and "ONNX import     ok for 10.3" in out and "ONNX import check" not in out


def test_the_cpu_int8_graph_is_refused_for_every_tensorrt(
    work: Path, with_fake_trt: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_onnx(Path("cpu.onnx"), "cpu_int8")
    refusal = (
        "error: cpu.onnx is the CPU INT8 graph (dsrir.precision int8-cpu): its UINT8 zero points import into no "
        "TensorRT version; build from the FP32/FP16 export or calibration's model_qdq.onnx\n"
    )
    for target in TARGETS:
        args = ["--precision", "int8", "--dry-run", "--onnx", "cpu.onnx", "--target-trt", target]
        assert run_cli(args, capsys) == (2, "", refusal)
    code, out, err = run_cli(["--precision", "int8", "--dry-run", "--onnx", "cpu.onnx"], capsys)
    assert (code, err) == (2, refusal)
    assert import_rows(out) == dict.fromkeys(TARGETS, "CPU INT8 graph (UINT8 zero points): no TensorRT imports it")
    trt = with_fake_trt()
    monkeypatch.setattr(build_engine, "query_gpu", lambda: ORIN)
    assert run_cli(["--precision", "int8", "--onnx", "cpu.onnx"], capsys) == (2, "", refusal)
    assert not [call for call in trt.calls if call[0] in ("network", "parse")]  # refused before TensorRT saw it


def test_build_without_tensorrt_says_how_to_install(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_onnx(Path("m.onnx"))
    code, out, err = run_cli(["--onnx", "m.onnx"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: TensorRT is not installed: on Jetson it comes with JetPack (sudo apt install")
    assert "pip install tensorrt" in err and err.count("\n") == 1


def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_engine.main(["--help"])
    out = capsys.readouterr().out
    assert "(default: fp16)" in out and "1x3x720x1280, 720p video" in out and "(default: None)" not in out


def test_dry_run_as_a_module(work: Path) -> None:
    make_onnx(Path("int8.onnx"), "qdq")
    result = subprocess.run(
        [sys.executable, "-m", "export.build_engine", "--precision", "int8", "--dry-run", "--onnx", "int8.onnx"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "trtexec equivalent:" in result.stdout


def test_torch_tensorrt_frontend_validates_its_options(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = Path("w.pth")
    for options, message in (
        (BuildOptions(), "builds from --checkpoint PATH"),
        (BuildOptions(precision="int8"), "only fp32 and fp16"),
        (BuildOptions(plugin_lib=Path("lib.so")), "--plugin-lib with --frontend torch-tensorrt"),
        (BuildOptions(dla_core=0), "--dla-core with --frontend torch-tensorrt"),
        (BuildOptions(onnx=Path("m.onnx")), "--onnx with --frontend torch-tensorrt"),
    ):
        with pytest.raises(DSRIRError, match=message):
            check_options(options, None if "checkpoint PATH" in message else ckpt)
    with pytest.raises(DSRIRError, match="batch size must be the same"):
        torch_profile(BuildOptions(max_shape="2x3x512x512"), 8)
    code, _, err = run_cli(["--frontend", "torch-tensorrt", "--checkpoint", "w.pth"], capsys)
    assert code == 2 and ("torch-tensorrt is not installed: pip install torch-tensorrt" in err or "TensorRT" in err)
    code, _, err = run_cli(["--onnx", "m.onnx", "--checkpoint", "w.pth"], capsys)
    assert code == 2 and "--checkpoint is for --frontend torch-tensorrt" in err


# ---- the thin TensorRT layer against a recording fake --------------------------------------------------


class _Enum:
    def __init__(self, *names: str) -> None:
        for value, name in enumerate(names):
            setattr(self, name, value)


def fake_tensorrt(version: str = "10.3.0.30", dla_cores: int = 0, creator: bool = True) -> types.ModuleType:
    """Just enough of the tensorrt module for the builder and the loader, recording every call."""
    trt = types.ModuleType("tensorrt")
    calls: list[tuple[Any, ...]] = []
    trt.calls = calls  # type: ignore[attr-defined]
    trt.__version__ = version  # type: ignore[attr-defined]
    trt.NetworkDefinitionCreationFlag = _Enum("EXPLICIT_BATCH", "STRONGLY_TYPED")  # type: ignore[attr-defined]
    trt.BuilderFlag = _Enum("FP16", "INT8", "DEBUG", "GPU_FALLBACK", "VERSION_COMPATIBLE")  # type: ignore[attr-defined]
    trt.MemoryPoolType = _Enum("WORKSPACE")  # type: ignore[attr-defined]
    trt.DeviceType = _Enum("GPU", "DLA")  # type: ignore[attr-defined]
    trt.HardwareCompatibilityLevel = _Enum("NONE", "AMPERE_PLUS")  # type: ignore[attr-defined]
    trt.TensorIOMode = _Enum("NONE", "INPUT", "OUTPUT")  # type: ignore[attr-defined]

    class Logger:
        WARNING = 2

        def __init__(self, severity: int) -> None:
            pass

    class Registry:
        def get_creator(self, *key: str) -> object | None:
            calls.append(("get_creator", *key))
            return object() if creator else None

        get_plugin_creator = get_creator

        def load_library(self, path: str) -> object:
            calls.append(("load_library", path))
            return object()

    registry = Registry()

    class Cache:
        def serialize(self) -> bytes:
            return b"timing-cache"

    class Config:
        def __setattr__(self, name: str, value: Any) -> None:
            calls.append(("config", name, value))

        def set_flag(self, flag: int) -> None:
            calls.append(("flag", flag))

        def set_memory_pool_limit(self, pool: int, size: int) -> None:
            calls.append(("pool", pool, size))

        def add_optimization_profile(self, profile: Any) -> int:
            return 0

        def create_timing_cache(self, data: bytes) -> Cache:
            calls.append(("timing_cache_in", data))
            return Cache()

        def set_timing_cache(self, cache: Cache, ignore_mismatch: bool) -> bool:
            return True

        def set_calibration_profile(self, profile: Any) -> bool:
            return True

    class Profile:
        def set_shape(self, name: str, *shapes: list[int]) -> None:
            calls.append(("shape", name, *shapes))

    class Builder:
        num_DLA_cores = dla_cores

        def __init__(self, logger: Logger) -> None:
            pass

        def create_network(self, flags: int) -> str:
            calls.append(("network", flags))
            return "network"

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: str, config: Config) -> bytes:
            return b"serialized-engine"

    class OnnxParser:
        """Refuses what this TensorRT version's importer refuses (dsrir/trt/import_rules.py), as the real one
        would, instead of accepting every file."""

        def __init__(self, network: str, logger: Logger) -> None:
            self.errors: list[str] = []

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, index: int) -> str:
            return self.errors[index]

        def parse_from_file(self, path: str) -> bool:
            from dsrir.trt.import_rules import check_for_target

            calls.append(("parse", path))
            self.errors = [str(problem) for problem in check_for_target(onnx.load(path), version)]
            return not self.errors

    class Engine:
        num_io_tensors = 2

        def get_tensor_name(self, index: int) -> str:
            return ["input", "output"][index]

        def get_tensor_mode(self, name: str) -> int:
            return 1 if name == "input" else 2

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
            calls.append(("deserialize", len(data)))
            return Engine() if data == b"serialized-engine" else None

    trt.Logger, trt.Builder, trt.OnnxParser, trt.Runtime = Logger, Builder, OnnxParser, Runtime  # type: ignore[attr-defined]
    trt.Dims = list  # type: ignore[attr-defined]
    trt.get_plugin_registry = lambda: registry  # type: ignore[attr-defined]

    class IInt8EntropyCalibrator2:
        def __init__(self) -> None:
            pass

    trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2  # type: ignore[attr-defined]
    return trt


def test_fake_parser_refuses_what_its_version_cannot_import(tmp_path: Path, with_fake_trt: Any) -> None:
    """The builder's parse step surfaces the parser's first error in one line (a graph made for 10.x on 8.6)."""
    from types import SimpleNamespace

    from export.engine.builder import _parse

    graph = tmp_path / "opset18.onnx"
    make_onnx(graph)
    onnx_model = onnx.load(str(graph))
    onnx_model.opset_import[0].version = 18
    onnx.save(onnx_model, str(graph))
    with_fake_trt(version="8.6.1")
    plan = SimpleNamespace(graph=SimpleNamespace(path=graph))
    with pytest.raises(DSRIRError, match="TensorRT's ONNX parser failed"):
        _parse(plan, "network", None)  # type: ignore[arg-type]
    with_fake_trt(version="10.3.0")
    _parse(plan, "network", None)  # type: ignore[arg-type]


@pytest.fixture
def with_fake_trt(monkeypatch: pytest.MonkeyPatch) -> Any:
    def install(**kwargs: Any) -> types.ModuleType:
        """A fresh TensorRT, as in a new process: no plugin library loaded yet (dsrir.trt.plugin loads each once)."""
        trt = fake_tensorrt(**kwargs)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        monkeypatch.setattr("dsrir.trt.plugin._loaded", {})
        monkeypatch.delitem(sys.modules, "export.engine.calibrator", raising=False)
        return trt

    return install


def test_build_and_load_through_the_thin_layer(
    work: Path, with_fake_trt: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    trt = with_fake_trt()
    monkeypatch.setattr(build_engine, "query_gpu", lambda: ORIN)
    monkeypatch.setattr(engine_io, "query_gpu", lambda: ORIN)
    make_onnx(Path("dsrir.onnx"), "fp16")
    code, out, err = run_cli(["--onnx", "dsrir.onnx", "--workspace", "1024", "--output", "dsrir.engine"], capsys)
    assert code == 0, err
    assert ("network", 1 << 1) in trt.calls  # STRONGLY_TYPED by name, whatever its value
    assert ("pool", 0, 1024 << 20) in trt.calls
    assert ("shape", "input", [1, 3, 256, 256], [1, 3, 720, 1280], [1, 3, 1080, 1920]) in trt.calls
    assert Path("dsrir.engine").read_bytes() == b"serialized-engine"
    timing = work / "xdg" / "dsrir" / "timing" / "trt10.3_orin_sm87.cache"
    assert timing.read_bytes() == b"timing-cache" and f"timing cache    {timing}" in out
    meta = json.loads(Path("dsrir.engine.json").read_text())
    assert meta["tensorrt_version"] == "10.3.0.30" and meta["compute_capability"] == "8.7"
    assert meta["strongly_typed"] and meta["profile"]["opt"] == [1, 3, 720, 1280] and meta["onnx_sha256"]
    assert meta["trtexec_command"].startswith("trtexec --onnx=dsrir.onnx") and meta["io"] == "float"

    engine, loaded = engine_io.load_engine("dsrir.engine")
    assert loaded is not None and loaded.preset == "dsrir-xs" and engine_io.io_tensors(engine)["output"] == "output"

    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(version="8.6.2.3"))
    monkeypatch.setattr(engine_io, "query_gpu", lambda: XAVIER)
    with pytest.raises(DSRIRError) as info:
        engine_io.load_engine("dsrir.engine")
    assert str(info.value).startswith(
        "engine built with TensorRT 10.3 for sm_87; this is 8.6 on sm_72: rebuild with python -m export.build_engine "
        "--onnx dsrir.onnx --precision fp16"
    )


def test_thin_layer_plugin_dla_and_calibrator(
    work: Path, with_fake_trt: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(build_engine, "query_gpu", lambda: ORIN)
    make_onnx(Path("p.onnx"), plugin=True)
    Path("lib.so").write_bytes(b"")
    with_fake_trt(creator=False)
    code, _, err = run_cli(["--onnx", "p.onnx", "--plugin-lib", "lib.so", "--plugin-mode", "dynamic"], capsys)
    assert code == 2 and 'no plugin creator DSRIR_PatchAttention version "1" namespace ""' in err
    trt = with_fake_trt(dla_cores=0)
    code, _, err = run_cli(
        ["--onnx", "p.onnx", "--plugin-lib", "lib.so", "--plugin-mode", "dynamic", "--dla-core", "0"], capsys
    )
    assert code == 2 and err == "error: --dla-core 0: this platform has no DLA (Orin and Xavier have 2)\n"
    assert ("load_library", str(Path("lib.so").resolve())) in trt.calls
    assert ("get_creator", "DSRIR_PatchAttention", "1", "") in trt.calls

    make_onnx(Path("f.onnx"))
    Path("cal.cache").write_text(CALIB)
    trt = with_fake_trt(dla_cores=2)
    code, _, err = run_cli(
        ["--onnx", "f.onnx", "--precision", "best", "--calib", "cal.cache", "--dla-core", "1"], capsys
    )
    assert code == 0, err
    flags = [c[1] for c in trt.calls if c[0] == "flag"]
    assert flags == [trt.BuilderFlag.FP16, trt.BuilderFlag.INT8, trt.BuilderFlag.GPU_FALLBACK]
    calibrator = next(c[2] for c in trt.calls if c[:2] == ("config", "int8_calibrator"))
    assert calibrator.read_calibration_cache() == CALIB.encode() and calibrator.get_batch(["input"]) == []
    assert ("config", "DLA_core", 1) in trt.calls and ("config", "default_device_type", trt.DeviceType.DLA) in trt.calls
    assert ("network", 0) in trt.calls  # 10.x without strong typing: no creation flags


def test_rebuild_command_round_trips_the_options(work: Path) -> None:
    Path("lib.so").write_bytes(b"")
    plan = plan_for(V103, make_onnx(Path("m.onnx"), plugin=True), plugin_lib=Path("lib.so"), dla_core=0)
    assert dsrir_command(plan) == (
        "python -m export.build_engine --onnx m.onnx --precision fp16 --plugin-lib lib.so --min-shape 1x3x256x256 "
        "--opt-shape 1x3x720x1280 --max-shape 1x3x1080x1920 --dla-core 0 --output m.engine"
    )


def test_torch_tensorrt_sidecar_names_the_engine_io(work: Path, with_fake_trt: Any) -> None:
    from export.engine.torch_trt import torch_sidecar

    with_fake_trt()
    weights = types.SimpleNamespace(config=types.SimpleNamespace(size_multiple=8), preset="dsrir-xs")
    options = BuildOptions(precision="fp16", hardware_compatibility="ampere+")
    profile = torch_profile(options, 8)
    meta = torch_sidecar(
        b"serialized-engine", weights, Path("w.pth"), options, profile, Path("w.engine"), 1.0, "10.3.0.30", ORIN
    )
    assert (
        meta.inputs == [{"name": "input", "dtype": "float16", "layout": "NCHW"}] and meta.frontend == "torch-tensorrt"
    )
    assert meta.rebuild_command == (
        "python -m export.build_engine --frontend torch-tensorrt --checkpoint w.pth --precision fp16 "
        "--min-shape 1x3x256x256 --opt-shape 1x3x720x1280 --max-shape 1x3x1080x1920 --hardware-compatibility ampere+ "
        "--output w.engine"
    )
    assert incompatibility(meta, V103, GpuInfo("RTX 4090", (8, 9))) is None
