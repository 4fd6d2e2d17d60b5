"""dsrir.trt.import_rules: what each TensorRT line's ONNX importer takes, checked on every DSRIR flavour.

Two halves. Small hand-made graphs pin each rule to the versions it holds for (the importer lines are cited in
the rules module). Then the real graphs, exported once per module from a seeded dsrir-xs (decomposed and plugin,
for the default target and for TensorRT 8.6) and the flavours derived from them the way the toolkit derives them
(FP16, uint8 frame I/O, calibration's Q/DQ graph, ONNX Runtime's CPU INT8 graph), are checked for every target,
and each must pass or fail exactly as expected, for the expected reasons.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from dsrir.errors import DSRIRError
from dsrir.graph.checks import check_graph
from dsrir.trt.import_rules import (
    DSRIR_OPS,
    MODEL,
    RULES,
    TARGETS,
    Problem,
    check_for_target,
    require_importable,
    rules_for,
    summary,
)
from dsrir.trt.version import DEFAULT_TARGET
from export.onnx.target_rewrite import explicit_squeeze_axes, split_shape_ranges, to_opset17

OLD = ("8.5", "8.6")  # JetPack 5.1 / 6.0
NEW = ("10.3", "10.16", "11.1")
F, I64 = TensorProto.FLOAT, TensorProto.INT64


# ---- the rules themselves -------------------------------------------------------------------------


def test_every_named_line_has_rules_with_a_source_and_evidence() -> None:
    assert TARGETS == ("8.5", "8.6", "10.3", "10.16", "11.1")
    assert DEFAULT_TARGET in TARGETS
    for line, rules in RULES.items():
        assert rules.line == line and rules.source and rules.evidence
        assert rules.ops == DSRIR_OPS  # every op DSRIR uses has an importer in every line
    assert [RULES[line].max_opset for line in TARGETS] == [17, 17, 20, 24, 24]
    assert [RULES[line].preferred_opset for line in TARGETS] == [17, 17, 18, 18, 18]


@pytest.mark.parametrize(
    ("version", "line"),
    [("8.5.3", "8.5"), ("8.6.2", "8.6"), ("9.3", "8.6"), ("10.0", "10.3"), ("10.3.0.30", "10.3"), ("10.15", "10.3")]
    + [("10.16", "10.16"), ("10.20", "10.16"), ("11.0", "11.1"), ("11.6", "11.1"), ((11, 1, 0), "11.1")],
)
def test_a_version_is_checked_with_the_line_that_covers_it(version: str | tuple[int, ...], line: str) -> None:
    assert rules_for(version).line == line


def test_versions_before_8_5_have_no_rules() -> None:
    with pytest.raises(DSRIRError, match="no ONNX import rules before 8.5"):
        rules_for("8.4")


# ---- each rule on a hand-made graph ---------------------------------------------------------------


def model_of(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    initializers: tuple[onnx.TensorProto, ...] = (),
    opset: int = 17,
    domains: tuple[str, ...] = (),
) -> onnx.ModelProto:
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, 1) for d in domains)]
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=opsets)


def image(name: str = "x", dims: tuple[int | str, ...] = (1, 3, 8, 8), elem: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, list(dims))


def const(name: str, values: list[int] | list[float] | int | float, dtype: type = np.int64) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, dtype), name)


def shape_range() -> onnx.ModelProto:
    node = helper.make_node("Shape", ["x"], ["s"], name="hw", start=2, end=4)
    return model_of([node], [image()], [helper.make_tensor_value_info("s", I64, [2])])


def reduce_axes_input() -> onnx.ModelProto:
    node = helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="mean", keepdims=1)
    out = helper.make_tensor_value_info("y", F, [1, 3, 1, 1])
    return model_of([node], [image()], [out], (const("axes", [2, 3]),), opset=18)


def reduce_axes_attribute() -> onnx.ModelProto:
    node = helper.make_node("ReduceMean", ["x"], ["y"], name="mean", keepdims=1, axes=[2, 3])
    return model_of([node], [image()], [helper.make_tensor_value_info("y", F, [1, 3, 1, 1])])


def squeeze(axes: bool, dims: tuple[int | str, ...] = (1, 3, 1, 8)) -> onnx.ModelProto:
    node = helper.make_node("Squeeze", ["x", "axes"] if axes else ["x"], ["y"], name="squeeze")
    out = helper.make_tensor_value_info("y", F, [3, dims[-1]])
    return model_of([node], [image(dims=dims)], [out], (const("axes", [0, 2]),) if axes else ())


def qdq(zero_point: object | None = np.int8(0), scale: object = np.float32(0.02), opset: int = 17) -> onnx.ModelProto:
    params = ["scale", "zero"] if zero_point is not None else ["scale"]
    initializers = [numpy_helper.from_array(np.array(scale), "scale")]
    if zero_point is not None:
        initializers.append(numpy_helper.from_array(np.array(zero_point), "zero"))
    elem = TensorProto.FLOAT16 if np.array(scale).dtype == np.float16 else F
    nodes = [
        helper.make_node("QuantizeLinear", ["x", *params], ["q"], name="quantize"),
        helper.make_node("DequantizeLinear", ["q", *params], ["y"], name="dequantize"),
    ]
    return model_of(nodes, [image(elem=elem)], [image("y", elem=elem)], tuple(initializers), opset=opset)


def plugin(skip: str = "x", version_type: str = "string") -> onnx.ModelProto:
    weights = (
        numpy_helper.from_array(np.ones((1, 3, 1, 1), np.float32), "w1"),
        numpy_helper.from_array(np.zeros(1, np.float32), "b1"),
        numpy_helper.from_array(np.ones((3, 1, 1, 1), np.float32), "w2"),
        numpy_helper.from_array(np.zeros(3, np.float32), "b2"),
    )
    version: object = "1" if version_type == "string" else 1
    node = helper.make_node(
        "DSRIR_PatchAttention",
        ["x", "w1", "b1", "w2", "b2", skip],
        ["y"],
        name="pa",
        domain="trt.plugins",
        plugin_version=version,
        plugin_namespace="",
        grid_h=2,
        grid_w=2,
    )
    return model_of([node], [image()], [image("y")], weights, domains=("trt.plugins",))


def single(op: str, out_elem: int = F, **attrs: Any) -> onnx.ModelProto:
    node = helper.make_node(op, ["x"], ["y"], name=op.lower(), **attrs)
    return model_of([node], [image()], [helper.make_tensor_value_info("y", out_elem, [1, 3, 8, 8])])


def uint8_inside() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Cast", ["x"], ["u"], name="to_u8", to=TensorProto.UINT8),
        helper.make_node("Cast", ["u"], ["y"], name="from_u8", to=F),
    ]
    return model_of(nodes, [image()], [image("y")])


def uint8_io(via: int = F) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Cast", ["x"], ["f"], name="cast_in", to=via),
        helper.make_node("Relu", ["f"], ["r"], name="relu"),
        helper.make_node("Cast", ["r"], ["y"], name="cast_out", to=TensorProto.UINT8),
    ]
    return model_of(nodes, [image(elem=TensorProto.UINT8)], [image("y", elem=TensorProto.UINT8)])


def rank9() -> onnx.ModelProto:
    node = helper.make_node("Reshape", ["x", "shape"], ["y"], name="view9")
    out = helper.make_tensor_value_info("y", F, [1] * 7 + [3, 64])
    return model_of([node], [image()], [out], (const("shape", [1] * 7 + [3, 64]),))


ALL_FAIL = dict.fromkeys(TARGETS, "")
# name -> (graph, {target: substring of the expected reason}); targets left out must pass.
CASES = {
    "Shape(start, end)": (shape_range, dict.fromkeys(OLD, "ignores Shape's start/end")),
    "ReduceMean axes input": (reduce_axes_input, dict.fromkeys(OLD, "ignores the axes input")),
    "ReduceMean axes attribute": (reduce_axes_attribute, {}),
    "Squeeze, static, no axes": (lambda: squeeze(False), {"11.1": "only with explicit axes"}),
    "Squeeze, dynamic, no axes": (
        lambda: squeeze(False, ("n", 3, 1, "w")),
        {**dict.fromkeys(OLD + NEW[:2], "only from a static input shape"), "11.1": "only with explicit axes"},
    ),
    "Squeeze with axes": (lambda: squeeze(True), {}),
    "INT8 Q/DQ": (qdq, {}),
    "UINT8 Q/DQ, zero point 128": (lambda: qdq(np.uint8(128)), dict.fromkeys(TARGETS, "UINT8 quantization")),
    "INT8 Q/DQ, zero point 3": (lambda: qdq(np.int8(3)), dict.fromkeys(TARGETS, "non-zero zero point")),
    "Q/DQ without zero point": (lambda: qdq(None), dict.fromkeys(OLD, "needs the zero-point input")),
    "Q/DQ with FP16 scale (opset 19)": (
        lambda: qdq(scale=np.float16(0.02), opset=19),
        dict.fromkeys(OLD, "scales as float32"),
    ),
    "plugin node": (plugin, {}),
    "plugin node, empty skip": (lambda: plugin(skip=""), dict.fromkeys(OLD, "empty optional input")),
    "plugin node, INT plugin_version": (lambda: plugin(version_type="int"), dict.fromkeys(TARGETS, "STRING")),
    "op without a rule": (lambda: single("Erf"), dict.fromkeys(TARGETS, "no import rule for Erf")),
    "UINT8 inside": (uint8_inside, dict.fromkeys(TARGETS, "UINT8 tensor 'u' inside the network")),
    "UINT8 I/O": (uint8_io, {}),
    "UINT8 I/O through INT32": (lambda: uint8_io(via=TensorProto.INT32), {"8.5": "casts UINT8 only to or from"}),
    "rank 9": (rank9, dict.fromkeys(TARGETS, "rank-9 output")),
    "BF16 tensor": (
        lambda: single("Cast", TensorProto.BFLOAT16, to=TensorProto.BFLOAT16),
        dict.fromkeys(OLD, "BFLOAT16 tensors"),
    ),
    "Resize cubic antialias": (
        lambda: resize(mode="cubic", antialias=1),
        {**dict.fromkeys(OLD, "opset 18"), **dict.fromkeys(NEW, "antialias is not supported")},
    ),
    "Resize linear half_pixel": (lambda: resize(mode="linear"), dict.fromkeys(OLD, "opset 18")),
}


def resize(**attrs: Any) -> onnx.ModelProto:
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="resize", **attrs)
    out = helper.make_tensor_value_info("y", F, [1, 3, 16, 16])
    return model_of([node], [image()], [out], (const("scales", [1.0, 1.0, 2.0, 2.0], np.float32),), opset=18)


def custom_op() -> onnx.ModelProto:
    node = helper.make_node("Foo", ["x"], ["y"], name="foo", domain="com.example")
    return model_of([node], [image()], [image("y")], domains=("com.example",))


CASES["custom op without a plugin"] = (custom_op, dict.fromkeys(TARGETS, "com.example::Foo has no TensorRT importer"))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("target", TARGETS)
def test_each_rule_holds_for_exactly_its_versions(case: str, target: str) -> None:
    build, failing = CASES[case]
    model = build()
    onnx.checker.check_model(model)
    problems = check_for_target(model, target)
    if target not in failing:
        assert problems == [], summary(problems)
        return
    assert problems, f"{case} should not import into TensorRT {target}"
    assert any(failing[target] in problem.reason for problem in problems), summary(problems)


def test_a_problem_names_the_node_and_the_reason_on_one_line() -> None:
    problems = check_for_target(reduce_axes_input(), "8.6")
    assert [str(p) for p in problems] == [
        "node 'mean' (ReduceMean): TensorRT 8.6 ignores the axes input and reduces every axis (opset 17: axes as "
        "an attribute)",
        "the model: opset 18: TensorRT 8.6's parser implements opset 17 at most",
    ]
    assert problems[-1] == Problem(MODEL, "", "opset 18: TensorRT 8.6's parser implements opset 17 at most")
    with pytest.raises(DSRIRError) as info:
        require_importable(reduce_axes_input(), (8, 6, 2), "model.onnx")
    assert str(info.value) == (
        "model.onnx would not import into TensorRT 8.6: node 'mean' (ReduceMean): TensorRT 8.6 ignores the axes "
        "input and reduces every axis (opset 17: axes as an attribute) (and 1 more)"
    )
    with pytest.raises(DSRIRError, match=r"^m would not import into TensorRT 9.1 \(checked with the 8.6 rules\): "):
        require_importable(shape_range(), "9.1", "m")
    assert summary([]) == "ok"


def test_the_rewrites_make_the_hand_made_graphs_importable_everywhere() -> None:
    model = shape_range()
    assert split_shape_ranges(model) == 1 and [n.op_type for n in model.graph.node] == ["Shape", "Slice"]
    dynamic = squeeze(False, ("n", 3, 1, "w"))
    with pytest.raises(ValueError, match="the shape of 'x' is not static"):
        explicit_squeeze_axes(dynamic)
    static = squeeze(False)
    assert explicit_squeeze_axes(static) == 1
    assert numpy_helper.to_array(static.graph.initializer[-1]).tolist() == [0, 2]
    for graph in (model, to_opset17(reduce_axes_input()), static):
        check_graph(graph)
        assert all(check_for_target(graph, target) == [] for target in TARGETS)


# ---- every real flavour for every target ----------------------------------------------------------


@pytest.fixture(scope="module")
def exports() -> dict[str, onnx.ModelProto]:
    """The decomposed and plugin exports of a seeded dsrir-xs for the default target and for TensorRT 8.6."""
    pytest.importorskip("onnxscript", reason="the dynamo ONNX exporter needs onnxscript")
    from dsrir.model import DSRIR, PRESETS
    from export.onnx.build import ExportOptions, build_onnx

    torch.manual_seed(0)
    model = DSRIR(PRESETS["dsrir-xs"]).eval()
    graphs = {}
    for flavour in ("decomposed", "plugin"):
        for target, suffix in ((None, ""), ((8, 6), " 8.6")):
            options = ExportOptions(patch_attention=flavour, target_trt=target, check_size=None)
            graphs[flavour + suffix] = build_onnx(model, "dsrir-xs", "unknown", options).model
    return graphs


@pytest.fixture(scope="module")
def flavours(
    exports: dict[str, onnx.ModelProto], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, onnx.ModelProto]:
    """Every graph kind the toolkit makes, derived as the toolkit derives it."""
    from calibration.ort_int8 import quantize_for_cpu
    from calibration.qdq import insert_qdq
    from calibration.ranges import Ranges, conv_sites, is_quantized_module
    from dsrir.graph.fp16 import convert_to_fp16
    from export.onnx.uint8_io import wrap_uint8_io

    graphs = dict(exports)
    for suffix in ("", " 8.6"):
        source = exports["decomposed" + suffix]
        graphs["fp16" + suffix] = convert_to_fp16(source)
        graphs["uint8 I/O" + suffix] = wrap_uint8_io(source)
        sites = [site for module, site in conv_sites(source).items() if is_quantized_module(module)]
        graphs["Q/DQ" + suffix] = insert_qdq(source, Ranges("max", dict.fromkeys({s.input for s in sites}, 1.0)))
    folder = tmp_path_factory.mktemp("cpu_int8")
    onnx.save(exports["decomposed"], str(folder / "fp32.onnx"))
    frames = (np.random.default_rng(seed).random((1, 3, 32, 32), dtype=np.float32) for seed in range(2))
    graphs["CPU INT8"] = onnx.load(str(quantize_for_cpu(folder / "fp32.onnx", frames, folder / "cpu.onnx")))
    return graphs


SHAPE = "ignores Shape's start/end"
REDUCE = "ignores the axes input"
OPSET = "opset 18: TensorRT"
UINT8_QDQ = "UINT8 quantization"
NONZERO = "non-zero zero point"
INT32_QDQ = "INT32 quantization"  # ONNX Runtime's bias DequantizeLinear
KNOWN = (SHAPE, REDUCE, OPSET, UINT8_QDQ, NONZERO, INT32_QDQ)
# flavour -> {target: the reasons expected (each must appear, and nothing else)}; targets left out must pass.
OPSET_18 = {**dict.fromkeys(OLD, {SHAPE, REDUCE, OPSET})}
EXPECTED: dict[str, dict[str, set[str]]] = {
    "decomposed": OPSET_18,
    "fp16": OPSET_18,
    "uint8 I/O": OPSET_18,
    "Q/DQ": OPSET_18,
    "plugin": dict.fromkeys(OLD, {OPSET}),
    "decomposed 8.6": {},
    "fp16 8.6": {},
    "uint8 I/O 8.6": {},
    "Q/DQ 8.6": {},
    "plugin 8.6": {},
    "CPU INT8": {
        **dict.fromkeys(OLD, {SHAPE, REDUCE, OPSET, UINT8_QDQ, NONZERO, INT32_QDQ}),
        **dict.fromkeys(NEW, {UINT8_QDQ, NONZERO, INT32_QDQ}),
    },
}


@pytest.mark.parametrize("flavour", EXPECTED)
def test_every_flavour_imports_exactly_where_expected(flavours: dict[str, onnx.ModelProto], flavour: str) -> None:
    graph = flavours[flavour]
    for target in TARGETS:
        problems = check_for_target(graph, target)
        expected = EXPECTED[flavour].get(target, set())
        found = {reason for reason in KNOWN if any(reason in problem.reason for problem in problems)}
        assert found == expected, f"{flavour} on TensorRT {target}: {summary(problems)}"
        unexplained = [p for p in problems if not any(reason in p.reason for reason in expected)]
        assert unexplained == [], f"{flavour} on TensorRT {target}: unexpected {summary(unexplained)}"


def test_the_8_6_exports_are_opset_17_with_no_shape_ranges_and_explicit_squeeze_axes(
    exports: dict[str, onnx.ModelProto],
) -> None:
    for name in ("decomposed 8.6", "plugin 8.6"):
        graph = exports[name]
        assert {op.domain: op.version for op in graph.opset_import}[""] == 17
        assert not [n for n in graph.graph.node if n.op_type == "Shape" and n.attribute]
        assert all(len(n.input) == 2 for n in graph.graph.node if n.op_type == "Squeeze")
        assert all({a.name for a in n.attribute} >= {"axes"} for n in graph.graph.node if n.op_type == "ReduceMean")
        assert {p.key: p.value for p in graph.metadata_props}["dsrir.target_trt"] == "8.6"
    default = exports["decomposed"]
    assert {p.key: p.value for p in default.metadata_props}["dsrir.target_trt"] == DEFAULT_TARGET
    assert all(len(n.input) == 2 for n in default.graph.node if n.op_type == "Squeeze")  # 11.0-11.4 need them


def test_the_old_exporters_opset_17_graph_still_fails_on_8_6_at_every_shape_node(
    exports: dict[str, onnx.ModelProto],
) -> None:
    """What ``--opset 17`` wrote before --target-trt: the opset-18 export through to_opset17 only. ReduceMean and the
    opset are fixed, but TensorRT 8.6 reads each Shape(start, end) as the whole shape."""
    old = to_opset17(exports["decomposed"])
    shape_nodes = [n.name for n in old.graph.node if n.op_type == "Shape" and n.attribute]
    assert len(shape_nodes) == 3  # batch, H, W of the patch-attention views
    for target in OLD:
        problems = check_for_target(old, target)
        assert [p.node for p in problems] == shape_nodes and all(SHAPE in p.reason for p in problems)
    with pytest.raises(DSRIRError, match=rf"node '{shape_nodes[0]}' \(Shape\): TensorRT 8.6 ignores Shape's start"):
        check_graph(old, "8.6")


def test_the_export_check_writes_nothing_for_a_graph_its_target_would_misread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without its rewrites an 8.6 export fails the import check with one line naming a Shape node."""
    pytest.importorskip("onnxscript", reason="the dynamo ONNX exporter needs onnxscript")
    from dsrir.checkpoint import official_checkpoint, save_pth
    from dsrir.model import DSRIR, PRESETS
    from export.onnx.build import main as export_main

    torch.manual_seed(0)
    checkpoint = tmp_path / "m.pth"
    save_pth(checkpoint, official_checkpoint(DSRIR(PRESETS["dsrir-xs"]), "dsrir-xs", epoch=1, mode="all_in_one"))
    monkeypatch.setattr("export.onnx.target_rewrite.rewrite_for_target", lambda graph, rules: graph)
    output = tmp_path / "m.onnx"
    args = ["--checkpoint", str(checkpoint), "--target-trt", "8.6", "--no-simplify", "--check-size", "none"]
    assert export_main([*args, "--output", str(output)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and not output.exists()
    assert err[0].startswith("error: the graph would not import into TensorRT 8.6: node 'node_Shape_")
    assert "TensorRT 8.6 ignores Shape's start/end and returns the whole shape" in err[0]


def test_weights_kept_in_an_external_file_are_not_read(tmp_path: Path) -> None:
    """export.build_engine loads graphs without their external data: types are still checked, values are not."""
    path = tmp_path / "m.onnx"
    onnx.save(qdq(np.uint8(128)), str(path), save_as_external_data=True, location="m.onnx.data", size_threshold=0)
    problems = check_for_target(onnx.load(str(path), load_external_data=False), "10.3")
    assert [p.node for p in problems] == ["quantize", "dequantize"]
    assert all("UINT8 quantization" in p.reason and "non-zero" not in p.reason for p in problems)
