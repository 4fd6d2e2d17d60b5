"""What each TensorRT line's ONNX importer accepts, for the ops and types DSRIR graphs use, as data; and the check.

Every exported graph (``export.onnx``) and every graph an engine is planned for (``export.build_engine``) is run
through :func:`check_for_target`: a graph that a targeted TensorRT would refuse, or worse import wrongly, fails here
with one line naming the node and the reason, on any machine, before anyone carries it to a Jetson.

The rules were read from the ONNX importer sources (onnx/onnx-tensorrt, vendored as ``parsers/onnx`` in
NVIDIA/TensorRT; ``git ls-tree <tag> parsers/onnx`` gives the commit), never copied; each line below names its
commit and the lines each rule rests on. Paths are in onnx-tensorrt: ``builtin_op_importers.cpp`` (8.x),
``onnxOpImporters.cpp`` (10.x), ``onnx2trt_utils.cpp`` (8.x helpers), ``docs/operators.md``.

* 8.5: TensorRT 8.5.3's submodule fd119fe (same tree as the 8.5-GA branch head fdeeaca).
* 8.6: TensorRT v8.6.1's submodule 6ba67d3 (JetPack 6.0 ships 8.6.2, the same parser line).
* 10.3: TensorRT v10.3.0's submodule 62bdde2 is in neither the local mirror nor the code index: the rules come from
  branch 10.1-GA (96e7811) plus the 10.2/10.3 entries of docs/Changelog.md (10.2: "minor changes to op importers
  for GRU and Squeeze"; 10.3: tensor ``axes`` for Slice), which touch nothing DSRIR graphs use.
* 10.16 (newest 10.x): TensorRT v10.16's submodule 6bde659, read from the code index (no line numbers there: the
  functions are named instead).
* 11.1: TensorRT v11.1's submodule 7c51a63 is not readable here either. Rules = 10.16's, adjusted by the release
  notes: NVIDIA/TensorRT v11.1 CHANGELOG.md (11.0/11.1: new ops only) and the 11.5 notes ("Added support for
  Squeeze when axis input is omitted"; "Added support for ONNX opset 25"), so 11.0-11.4 get explicit Squeeze axes
  and opset 24 at most. Versions after 11.1 are checked with 11.1's rules (conservative).

A version that is not one of these lines is checked with the line that covers it (``ImporterRules.since``: 9.x with
8.6's rules, 10.0-10.15 with 10.3's, 11.x with 11.1's), which errs on the side of refusing. Ops the exporter does
not emit today are not listed: an export that starts using one fails here until someone reads its importer and
adds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from dsrir.errors import DSRIRError
from dsrir.graph.ops import PLUGIN_OP, QDQ_OPS
from dsrir.trt.version import Version, parse_version, short

REDUCE_OPS = frozenset({"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd"})
MAX_DIMS = 8  # nvinfer1::Dims::MAX_DIMS in every version named here
MODEL = "(model)"  # the "node" of a problem with the model as a whole

# ONNX ops (default domain) across every DSRIR flavour: the decomposed and plugin exports, FP16 (Casts), uint8 frame
# I/O (Cast, Transpose, Gather, Div, Clip, Mul, Round), calibration's Q/DQ graph and ONNX Runtime's CPU INT8 graph,
# before and after onnxslim, opset 17 and 18. Each has an importer in every line below: DEFINE_BUILTIN_OP_IMPORTER
# lines in builtin_op_importers.cpp @ fd119fe (Add 173, AveragePool 188, Cast 304, Clip 492, Concat 569, Constant 589,
# Conv 662, DequantizeLinear 1308, Div 1314, Gather 1542, Identity 2103, LeakyRelu 2263, Mul 3013,
# QuantizeLinear 3409, ReduceMean 3651, Relu 3683, Round 3693, Resize 3698, Reshape 3875, Shape 4478, Sigmoid 4486,
# Slice 4513, Split 4674, Squeeze 4782, Sub 4842, Transpose 4955, Unsqueeze 5025), @ 6ba67d3 (Add 154,
# AveragePool 169, Cast 285, Clip 462, Concat 539, Constant 559, Conv 632, QuantizeLinear 1300,
# DequantizeLinear 1305, Div 1321, Gather 1549, Identity 2116, LeakyRelu 2305, Mul 3057, ReduceMean 3685, Relu 3717,
# Round 3727, Resize 3732, Reshape 3909, Shape 4434, Sigmoid 4442, Slice 4469, Split 4630, Squeeze 4738, Sub 4798,
# Transpose 4923, Unsqueeze 4995), onnxOpImporters.cpp @ 96e7811 (10.1-GA: Add 177, AveragePool 192, Cast 385,
# Clip 563, Concat 649, Constant 668, Conv 737, QuantizeLinear 1659, DequantizeLinear 1664, Div 1694, Gather 1924,
# Identity 2572, LeakyRelu 2805, Mul 3568, ReduceMean 4340, Relu 4374, Round 4384, Resize 4389, Reshape 4647,
# Shape 5224, Sigmoid 5258, Slice 5285, Split 5469, Squeeze 5608, Sub 5675, Transpose 5790, Unsqueeze 5874); and
# "Y" for each in docs/operators.md @ 6bde659 (10.16).
DSRIR_OPS = frozenset(
    {
        "Add",
        "AveragePool",
        "Cast",
        "Clip",
        "Concat",
        "Constant",
        "Conv",
        "DequantizeLinear",
        "Div",
        "Gather",
        "Identity",
        "LeakyRelu",
        "Mul",
        "QuantizeLinear",
        "ReduceMean",
        "Relu",
        "Reshape",
        "Resize",
        "Round",
        "Shape",
        "Sigmoid",
        "Slice",
        "Split",
        "Squeeze",
        "Sub",
        "Transpose",
        "Unsqueeze",
    }
)
RESIZE_MODES = frozenset({"nearest", "linear", "cubic"})
RESIZE_COORDINATES = frozenset(
    {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
)
PLUGIN_ATTRIBUTE_TYPES = frozenset(
    {
        onnx.AttributeProto.INT,
        onnx.AttributeProto.INTS,
        onnx.AttributeProto.FLOAT,
        onnx.AttributeProto.FLOATS,
        onnx.AttributeProto.STRING,
    }
)
BASE_TYPES = frozenset(
    {
        TensorProto.FLOAT,
        TensorProto.FLOAT16,
        TensorProto.INT32,
        TensorProto.INT64,  # 8.x narrows INT64 to INT32 (docs/Changelog.md 9.0 EA: "no longer automatically casts")
        TensorProto.INT8,
        TensorProto.UINT8,  # graph input/output only, see _uint8_problems
        TensorProto.BOOL,
        TensorProto.DOUBLE,  # cast down to FLOAT by the parser
    }
)
# The Q/DQ and tensor types of the 10.x and 11.x lines (the same in each line read here).
TRT10_QDQ_TYPES = frozenset({TensorProto.INT8, TensorProto.FLOAT8E4M3FN, TensorProto.INT4})
TRT10_TENSOR_TYPES = BASE_TYPES | {TensorProto.BFLOAT16, TensorProto.FLOAT8E4M3FN, TensorProto.INT4}


@dataclass(frozen=True)
class ImporterRules:
    """One TensorRT line's ONNX importer, reduced to what matters for DSRIR graphs."""

    line: str  # "8.6"
    since: Version  # the first TensorRT version these rules are used for (until the next line's)
    source: str  # where the rules were read
    max_opset: int  # newest default-domain opset the importer implements
    ops: frozenset[str]  # default-domain ops with an importer (of those DSRIR uses)
    shape_start_end: bool  # Shape honours its opset-15 start/end attributes
    reduce_axes_input: bool  # ReduceMean reads opset-18 axes from its second input
    squeeze_without_axes: bool  # Squeeze with axes omitted imports (static unit dims)
    tensor_axes: bool  # Squeeze/Unsqueeze axes may be computed tensors (else initializers only)
    qdq_types: frozenset[int]  # Q/DQ quantized (zero-point / DequantizeLinear input) types
    qdq_zero_point_required: bool  # Q/DQ nodes need the zero-point input
    qdq_fp32_scales_only: bool  # the scale initializer is read as float32
    plugin_empty_inputs: bool  # custom (plugin) nodes may leave optional inputs empty
    uint8_cast_float_only: bool  # a Cast from or to UINT8 must have FP32/FP16 on its other side
    tensor_types: frozenset[int]
    evidence: tuple[str, ...]  # the lines each rule rests on

    @property
    def preferred_opset(self) -> int:
        """The opset the exporter writes for this line: 18 (what the dynamo exporter produces) or less."""
        return min(18, self.max_opset)


RULES: dict[str, ImporterRules] = {
    "8.5": ImporterRules(
        line="8.5",
        since=(8, 5),
        source="onnx/onnx-tensorrt fd119fe (NVIDIA/TensorRT 8.5.3 parsers/onnx; = branch 8.5-GA fdeeaca)",
        max_opset=17,
        ops=DSRIR_OPS,
        shape_start_end=False,
        reduce_axes_input=False,
        squeeze_without_axes=True,
        tensor_axes=False,
        qdq_types=frozenset({TensorProto.INT8}),
        qdq_zero_point_required=True,
        qdq_fp32_scales_only=True,
        plugin_empty_inputs=False,
        uint8_cast_float_only=True,
        tensor_types=BASE_TYPES,
        evidence=(
            "docs/operators.md:5 'TensorRT 8.5 supports operators up to Opset 17'",
            "builtin_op_importers.cpp:4478-4484 importShape: addShape(input) only, start/end never read",
            "builtin_op_importers.cpp:3651-3654 importReduceMean passes no axes input to reduceTensor; "
            "onnx2trt_utils.cpp:1698-1719 reduceTensor: axes attribute, else the (absent) input, else every axis",
            "builtin_op_importers.cpp:4782-4830 importSqueeze: opset>=13 axes input must be an initializer; "
            "omitted axes only for a static shape (4817)",
            "builtin_op_importers.cpp:1184-1245 QuantDequantLinearHelper: UINT8 input refused (1187), UINT8 "
            "QuantizeLinear zero point refused (1192), 3 inputs required (1206), float32 scale read (1220), zero "
            "point must be all zeros (1240)",
            "builtin_op_importers.cpp:304-331 importCast: UINT8 only to/from FP32/FP16 (316-324)",
            "builtin_op_importers.cpp:5425-5456 FallbackPluginImporter: op_type + plugin_version/plugin_namespace "
            "attributes; every input through convertToTensor (5449), so no empty optional inputs",
        ),
    ),
    "8.6": ImporterRules(
        line="8.6",
        since=(8, 6),
        source="onnx/onnx-tensorrt 6ba67d3 (NVIDIA/TensorRT v8.6.1 parsers/onnx; branch 8.6-GA)",
        max_opset=17,
        ops=DSRIR_OPS,
        shape_start_end=False,
        reduce_axes_input=False,
        squeeze_without_axes=True,
        tensor_axes=False,
        qdq_types=frozenset({TensorProto.INT8}),
        qdq_zero_point_required=True,
        qdq_fp32_scales_only=True,
        plugin_empty_inputs=False,
        uint8_cast_float_only=False,
        tensor_types=BASE_TYPES,
        evidence=(
            "docs/operators.md:5 'TensorRT 8.6 supports operators up to Opset 17'",
            "builtin_op_importers.cpp:4434-4440 importShape: addShape(input) only, start/end never read",
            "builtin_op_importers.cpp:3685-3688 importReduceMean passes no axes input to reduceTensor; "
            "onnx2trt_utils.cpp:1532-1552 reduceTensor: axes attribute, else the (absent) input, else every axis",
            "builtin_op_importers.cpp:4738-4781 importSqueeze: opset>=13 axes input must be an initializer (4749); "
            "omitted axes only for a static shape (4773)",
            "builtin_op_importers.cpp:1157-1230 QuantDequantLinearHelper: UINT8 input refused (1160), UINT8 "
            "QuantizeLinear zero point refused (1165), zero point read as inputs.at(2) (1214-1216), float32 scale "
            "read (1195), zero point must be all zeros (1220)",
            "builtin_op_importers.cpp:5395-5425 FallbackPluginImporter: op_type + plugin_version/plugin_namespace "
            "attributes; every input through convertToTensor (5419), so no empty optional inputs",
        ),
    ),
    "10.3": ImporterRules(
        line="10.3",
        since=(10, 0),
        source="onnx/onnx-tensorrt 96e7811 (branch 10.1-GA; v10.3.0's 62bdde2 unavailable) + Changelog 10.2/10.3",
        max_opset=20,
        ops=DSRIR_OPS,
        shape_start_end=True,
        reduce_axes_input=True,
        squeeze_without_axes=True,
        tensor_axes=False,
        qdq_types=TRT10_QDQ_TYPES,
        qdq_zero_point_required=False,
        qdq_fp32_scales_only=False,
        plugin_empty_inputs=True,
        uint8_cast_float_only=False,
        tensor_types=TRT10_TENSOR_TYPES,
        evidence=(
            "docs/operators.md:5 'opset 9 to opset 20' (10.1-GA)",
            "onnxOpImporters.cpp:5224-5256 importShape slices the shape by start/end (10.0-GA: 5188-5220)",
            "onnxOpImporters.cpp:4340-4344 importReduceMean passes inputs.at(1) as axes (10.0-GA: 4308-4312)",
            "onnxOpImporters.cpp:5608-5658 importSqueeze: axes input must be an initializer (5619); omitted axes "
            "only for a static shape (5644-5650); tensor axes for Squeeze/Unsqueeze came in 10.7 (NVIDIA/TensorRT "
            "CHANGELOG.md 10.7.0)",
            "onnxOpImporters.cpp:1346-1500 QuantDequantLinearHelper: UINT8 input refused (1349), UINT8 "
            "QuantizeLinear zero point refused (1354), zero point must be all zeros (1491)",
            "docs/Changelog.md 10.0 GA: 'Added support for empty inputs in custom plugin nodes'",
        ),
    ),
    "10.16": ImporterRules(
        line="10.16",
        since=(10, 16),
        source="onnx/onnx-tensorrt 6bde659 (NVIDIA/TensorRT v10.16 parsers/onnx)",
        max_opset=24,
        ops=DSRIR_OPS,
        shape_start_end=True,
        reduce_axes_input=True,
        squeeze_without_axes=True,
        tensor_axes=True,
        qdq_types=TRT10_QDQ_TYPES,
        qdq_zero_point_required=False,
        qdq_fp32_scales_only=False,
        plugin_empty_inputs=True,
        uint8_cast_float_only=False,
        tensor_types=TRT10_TENSOR_TYPES,
        evidence=(
            "docs/operators.md:5 'TensorRT 10.16 supports ... opset 9 to opset 24'",
            "onnxOpImporters.cpp importShape: addShape, cast to INT64, then a slice by start/end",
            "onnxOpImporters.cpp importSqueeze: axes tensor input accepted; omitted axes only for a static shape",
            "onnxOpImporters.cpp QuantDequantLinearHelper: UINT8 DequantizeLinear input refused and UINT8 zero "
            "points imported as INT8 unless kENABLE_UINT8_AND_ASYMMETRIC_QUANTIZATION_DLA; non-zero zero point "
            "refused ('Non-zero zero point is not supported')",
            "ModelImporter.cpp parseNode: UINT8 initializers outside Q/DQ become INT32",
        ),
    ),
}
# 11.1 was not read: it is 10.16's rules with what the release notes change (the module docstring).
RULES["11.1"] = replace(
    RULES["10.16"],
    line="11.1",
    since=(11, 0),
    source="release notes over 10.16's rules (v11.1's parsers/onnx 7c51a63 unavailable here)",
    squeeze_without_axes=False,
    evidence=(
        "NVIDIA/TensorRT v11.1 CHANGELOG.md 11.0/11.1 Parsers: new operators only (Swish, TRT_Attention...)",
        "TensorRT 11.5 release notes (onnx-tensorrt release/11.5-GA): 'Added support for Squeeze when axis "
        "input is omitted' and 'Added support for ONNX opset 25': 11.0-11.4 need explicit Squeeze axes and "
        "opset 24 at most",
    ),
)
TARGETS = tuple(RULES)  # 8.5, 8.6, 10.3, 10.16, 11.1: the lines --dry-run reports


@dataclass(frozen=True)
class Problem:
    """A node (or the model) a TensorRT importer would refuse or import wrongly."""

    node: str
    op: str
    reason: str

    def __str__(self) -> str:
        if self.node == MODEL:
            return f"the model: {self.reason}"
        return f"node {self.node!r} ({self.op}): {self.reason}"


def rules_for(version: Version | str) -> ImporterRules:
    """The rules used for TensorRT ``version``: the line whose ``since`` is the latest at or below it (10.1 -> 10.3,
    10.20 -> 10.16, 11.6 -> 11.1)."""
    wanted = parse_version(version, "TensorRT version") if isinstance(version, str) else tuple(version)
    covering = [rules for rules in RULES.values() if rules.since <= wanted[:2]]
    if not covering:
        raise DSRIRError(f"TensorRT {short(wanted)}: no ONNX import rules before {TARGETS[0]} (the oldest supported)")
    return max(covering, key=lambda rules: rules.since)


def check_for_target(model: onnx.ModelProto, version: Version | str) -> list[Problem]:
    """Every node of ``model`` that TensorRT ``version``'s ONNX importer would refuse or misread, with the reason."""
    rules = rules_for(version)
    trt = f"TensorRT {rules.line}"
    problems: list[Problem] = []
    graph = _Graph(model)
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            problems += _custom_node_problems(node, model, rules)
            continue
        if node.op_type not in rules.ops:
            reason = f"no import rule for {node.op_type} in dsrir/trt/import_rules.py: read {trt}'s importer, add it"
            problems.append(Problem(node.name, node.op_type, reason))
            continue
        problems += [Problem(node.name, node.op_type, reason) for reason in _node_problems(node, graph, rules)]
    problems += _uint8_problems(model, graph, trt)
    problems += _type_and_rank_problems(model, graph, rules)
    opset = default_opset(model)
    if opset > rules.max_opset:  # last, so that a one-line report names a node when there is one
        problems.append(Problem(MODEL, "", f"opset {opset}: {trt}'s parser implements opset {rules.max_opset} at most"))
    return problems


def require_importable(model: onnx.ModelProto, version: Version | str, what: str) -> None:
    """Raise a one-line DSRIRError naming the first problem (and how many more) when ``model`` would not import."""
    problems = check_for_target(model, version)
    if problems:
        wanted = parse_version(version, "TensorRT version") if isinstance(version, str) else tuple(version)
        line = rules_for(wanted).line
        rules = "" if short(wanted) == line else f" (checked with the {line} rules)"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DSRIRError(f"{what} would not import into TensorRT {short(wanted)}{rules}: {problems[0]}{more}")


def summary(problems: list[Problem], reasons: int = 3) -> str:
    """``ok``, or ``N problems:`` and the first node of each of the first ``reasons`` distinct reasons (with how many
    more nodes share it): one line of a report."""
    if not problems:
        return "ok"
    groups: dict[tuple[str, str], list[Problem]] = {}
    for problem in problems:
        groups.setdefault((problem.op, problem.reason), []).append(problem)
    named = [f"{same[0]}" + (f" (+{len(same) - 1} like it)" if len(same) > 1 else "") for same in groups.values()]
    more = f"; +{len(named) - reasons} more reasons" if len(named) > reasons else ""
    return f"{len(problems)} problem{'s' if len(problems) > 1 else ''}: {'; '.join(named[:reasons])}{more}"


def default_opset(model: onnx.ModelProto) -> int:
    return next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), 0)


class _Graph:
    """Initializer values and inferred tensor types/shapes of a model, for rules that need them."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.initializers = {init.name: init for init in model.graph.initializer}
        self.producers = {name: node.op_type for node in model.graph.node for name in node.output}
        self.constants = dict(self.initializers)
        for node in model.graph.node:  # Constant nodes count as initializers for every importer
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                value = next((a.t for a in node.attribute if a.name == "value"), None)
                if value is not None:
                    self.constants[node.output[0]] = value
        try:
            inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
        except Exception:  # partial information is still useful; the graph checks reject malformed graphs
            inferred = model
        self.values: dict[str, onnx.TypeProto.Tensor] = {}
        for value in (*inferred.graph.input, *inferred.graph.output, *inferred.graph.value_info):
            if value.type.HasField("tensor_type"):
                self.values[value.name] = value.type.tensor_type
        for init in self.initializers.values():
            tensor = onnx.TypeProto.Tensor(elem_type=init.data_type)
            for size in init.dims:
                tensor.shape.dim.add().dim_value = size
            self.values[init.name] = tensor

    def array(self, name: str) -> np.ndarray | None:
        """The value of a constant (None: not a constant, or its data is in an external file not loaded)."""
        tensor = self.constants.get(name)
        if tensor is None or tensor.data_location == TensorProto.EXTERNAL:
            return None
        return numpy_helper.to_array(tensor)

    def elem_type(self, name: str) -> int | None:
        tensor = self.values.get(name)
        return tensor.elem_type if tensor is not None and tensor.elem_type else None

    def static_shape(self, name: str) -> tuple[int, ...] | None:
        tensor = self.values.get(name)
        if tensor is None or not tensor.HasField("shape"):
            return None
        dims = tensor.shape.dim
        if not all(dim.HasField("dim_value") for dim in dims):
            return None
        return tuple(dim.dim_value for dim in dims)

    def rank(self, name: str) -> int | None:
        tensor = self.values.get(name)
        return len(tensor.shape.dim) if tensor is not None and tensor.HasField("shape") else None


def _attribute(node: onnx.NodeProto, name: str) -> object:
    found = next((a for a in node.attribute if a.name == name), None)
    value = helper.get_attribute_value(found) if found is not None else None
    return value.decode() if isinstance(value, bytes) else value


def _given(node: onnx.NodeProto, index: int) -> str:
    return node.input[index] if len(node.input) > index else ""


def _node_problems(node: onnx.NodeProto, graph: _Graph, rules: ImporterRules) -> Iterable[str]:
    trt = f"TensorRT {rules.line}"
    op = node.op_type
    if op == "Shape" and not rules.shape_start_end and {"start", "end"} & {a.name for a in node.attribute}:
        yield f"{trt} ignores Shape's start/end and returns the whole shape (rewrite as Shape + Slice)"
    elif op in REDUCE_OPS:
        axes = _given(node, 1)
        if axes and not rules.reduce_axes_input:
            yield f"{trt} ignores the axes input and reduces every axis (opset 17: axes as an attribute)"
        elif axes and axes not in graph.constants:
            yield f"axes {axes!r} must be an initializer"
    elif op in ("Squeeze", "Unsqueeze"):
        axes = _given(node, 1) or ("attribute" if _attribute(node, "axes") is not None else "")
        if not axes:
            if op == "Unsqueeze":
                yield "Unsqueeze needs axes"
            elif not rules.squeeze_without_axes:
                yield f"{trt} imports Squeeze only with explicit axes (omitted axes: from 11.5)"
            elif graph.static_shape(node.input[0]) is None:
                yield f"{trt} infers omitted Squeeze axes only from a static input shape"
        elif axes != "attribute" and not rules.tensor_axes and axes not in graph.constants:
            yield f"{trt} needs {op} axes as an initializer (computed axes: from 10.7)"
    elif op == "Slice":
        for index in (1, 2, 3):
            if _given(node, index) and not rules.tensor_axes and _given(node, index) not in graph.constants:
                yield f"{trt} needs Slice starts/ends/axes as initializers here"
                break
    elif op == "Resize":
        yield from _resize_problems(node)
    elif op == "Split" and _attribute(node, "num_outputs") is not None and rules.max_opset < 18:
        yield f"num_outputs is opset 18; {trt} reads opset 17"
    elif op in QDQ_OPS:
        yield from _qdq_problems(node, graph, rules)
    elif op == "Cast" and rules.uint8_cast_float_only:
        sides = {graph.elem_type(node.input[0]), _attribute(node, "to")}
        if TensorProto.UINT8 in sides and not sides - {TensorProto.UINT8} <= {TensorProto.FLOAT, TensorProto.FLOAT16}:
            yield f"{trt} casts UINT8 only to or from FP32/FP16"
    elif op == "AveragePool" and any(d != 1 for d in _attribute(node, "dilations") or ()):  # type: ignore[attr-defined]
        yield "AveragePool dilations must be 1"


def _resize_problems(node: onnx.NodeProto) -> Iterable[str]:
    mode = _attribute(node, "mode") or "nearest"
    coordinates = _attribute(node, "coordinate_transformation_mode") or "half_pixel"
    if mode not in RESIZE_MODES:
        yield f"Resize mode {mode!r}: TensorRT has {', '.join(sorted(RESIZE_MODES))}"
    if coordinates not in RESIZE_COORDINATES:
        yield f"Resize coordinate_transformation_mode {coordinates!r} is not imported"
    if _attribute(node, "antialias"):
        yield "Resize antialias is not supported"
    if (_attribute(node, "keep_aspect_ratio_policy") or "stretch") != "stretch":
        yield "Resize keep_aspect_ratio_policy must be stretch"


def _qdq_problems(node: onnx.NodeProto, graph: _Graph, rules: ImporterRules) -> Iterable[str]:
    trt = f"TensorRT {rules.line}"
    zero_point = _given(node, 2)
    if not zero_point and rules.qdq_zero_point_required:
        yield f"{trt} needs the zero-point input (INT8, all zeros)"
    # The quantized type: DequantizeLinear's input, and either node's zero point (QuantizeLinear without one
    # quantizes to INT8 in TensorRT).
    # A DequantizeLinear fed by a QuantizeLinear reads whatever type TensorRT gave that QuantizeLinear (checked there):
    # ONNX types a QuantizeLinear without zero point UINT8, TensorRT 10 quantizes it to INT8.
    fed_by_quantize = graph.producers.get(node.input[0]) == "QuantizeLinear"
    named = [node.input[0]] if node.op_type == "DequantizeLinear" and not fed_by_quantize else []
    types = [graph.elem_type(name) for name in [*named, zero_point] if name]
    refused = {t for t in types if t is not None and t not in rules.qdq_types}
    if refused:
        yield (
            f"{_type_names(frozenset(refused))} quantization: {trt} imports {_type_names(rules.qdq_types)} Q/DQ "
            "only (symmetric, zero point 0)"
        )
    values = graph.array(zero_point)
    if values is not None and values.any():
        yield f"non-zero zero point {zero_point!r}: {trt} supports symmetric quantization only"
    scale = _given(node, 1)
    scale_type = graph.constants[scale].data_type if scale in graph.constants else TensorProto.FLOAT
    if rules.qdq_fp32_scales_only and scale_type != TensorProto.FLOAT:
        yield f"{trt} reads Q/DQ scales as float32; {scale!r} is not"


def _custom_node_problems(node: onnx.NodeProto, model: onnx.ModelProto, rules: ImporterRules) -> list[Problem]:
    """DSRIR's one custom op goes to TensorRT's fallback plugin importer; nothing else has a plugin."""
    problems: list[Problem] = []

    def problem(reason: str) -> None:
        problems.append(Problem(node.name, node.op_type, reason))

    if node.op_type != PLUGIN_OP:
        problem(f"custom op {node.domain}::{node.op_type} has no TensorRT importer or DSRIR plugin")
        return problems
    if node.domain not in {entry.domain for entry in model.opset_import}:
        problem(f"domain {node.domain!r} is missing from the model's opset_import")
    for attribute in node.attribute:
        if attribute.name in ("plugin_version", "plugin_namespace") and attribute.type != onnx.AttributeProto.STRING:
            problem(f"{attribute.name} must be a STRING attribute (the parser reads it as a string)")
        elif attribute.type not in PLUGIN_ATTRIBUTE_TYPES:
            problem(f"attribute {attribute.name!r}: the plugin importer passes INT(S), FLOAT(S) and STRING only")
    if not rules.plugin_empty_inputs and any(name == "" for name in node.input):
        problem(f"TensorRT {rules.line} cannot pass an empty optional input to a plugin (from 10.0)")
    return problems


def _uint8_problems(model: onnx.ModelProto, graph: _Graph, trt: str) -> list[Problem]:
    """UINT8 tensors may only be the network's inputs and outputs (read or written by a Cast); Q/DQ have their own
    rule. docs/operators.md @ 6bde659: 'UINT8 is only supported as network input or output tensor types'."""
    boundary = {v.name for v in model.graph.input} | {v.name for v in model.graph.output}
    problems = []
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type in QDQ_OPS:
            continue
        for name in [*node.input, *node.output]:
            if name and name not in boundary and graph.elem_type(name) == TensorProto.UINT8:
                reason = f"UINT8 tensor {name!r} inside the network: {trt} takes UINT8 only as network input/output"
                problems.append(Problem(node.name, node.op_type, reason))
                break
    return problems


def _type_and_rank_problems(model: onnx.ModelProto, graph: _Graph, rules: ImporterRules) -> list[Problem]:
    problems = []
    for node in model.graph.node:
        for name in node.output:
            elem_type = graph.elem_type(name)
            if elem_type is not None and elem_type not in rules.tensor_types:
                type_name = helper.tensor_dtype_to_string(elem_type).removeprefix("TensorProto.")
                problems.append(Problem(node.name, node.op_type, f"{type_name} tensors: not in TensorRT {rules.line}"))
            rank = graph.rank(name)
            if rank is not None and rank > MAX_DIMS:
                reason = f"rank-{rank} output: TensorRT tensors have {MAX_DIMS} dimensions at most"
                problems.append(Problem(node.name, node.op_type, reason))
    return problems


def _type_names(types: frozenset[int]) -> str:
    return "/".join(sorted(helper.tensor_dtype_to_string(t).removeprefix("TensorProto.") for t in types))
