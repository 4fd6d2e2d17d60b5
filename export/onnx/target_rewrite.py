"""Rewrite an export so that a given TensorRT line's ONNX importer reads it as ONNX Runtime does.

The dynamo exporter writes opset 18 with a few constructs older importers misread (the rules and their sources are
in :mod:`dsrir.trt.import_rules`):

* opset 17 (:func:`to_opset17`), for TensorRT 8.5/8.6 (JetPack 5.1 and 6.0): their parsers implement opset 17 and
  ignore ReduceMean's opset-18 ``axes`` input (every axis is reduced).
* ``Shape(start, end)`` -> ``Shape`` + ``Slice`` (:func:`split_shape_ranges`), for 8.5/8.6: their ``Shape``
  importer ignores ``start``/``end`` and returns the whole shape, so the 6-D patch-attention view shapes grow
  past TensorRT's 8 dimensions.
* explicit ``Squeeze`` axes (:func:`explicit_squeeze_axes`), for every line: TensorRT 11.0-11.4 import Squeeze
  only with its axes given, and every version needs a static shape to infer them.

Each rewrite keeps the function: the exporter compares the rewritten graph with PyTorch like any other.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from dsrir.graph.edit import replace_nodes
from dsrir.trt.import_rules import ImporterRules

REDUCE_OPS = frozenset(
    {
        "ReduceL1",
        "ReduceL2",
        "ReduceLogSum",
        "ReduceLogSumExp",
        "ReduceMax",
        "ReduceMean",
        "ReduceMin",
        "ReduceProd",
        "ReduceSumSquare",
    }
)
RESIZE_DEFAULTS: dict[str, object] = {"antialias": 0, "keep_aspect_ratio_policy": b"stretch"}
INT64_MAX = np.iinfo(np.int64).max


class UnsupportedForOpset17(ValueError):
    """The graph uses an opset-18 feature that has no opset-17 form here."""


class UnsupportedRewrite(ValueError):
    """A node cannot be rewritten for the target (e.g. Squeeze axes that depend on a dynamic shape)."""


def rewrite_for_target(model: onnx.ModelProto, rules: ImporterRules) -> onnx.ModelProto:
    """A copy of ``model`` with the node rewrites ``rules``' importer needs (the opset is chosen by the caller)."""
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    if not rules.shape_start_end:
        split_shape_ranges(rewritten)
    explicit_squeeze_axes(rewritten)
    return rewritten


def split_shape_ranges(model: onnx.ModelProto) -> int:
    """Replace, in place, each ``Shape(start, end)`` by a full ``Shape`` and a ``Slice`` on axis 0; how many.

    ``Slice`` clamps ``starts``/``ends`` to ``[-rank, rank]`` and counts negative ones from the end exactly as
    ``Shape``'s attributes do, so the result is the same vector.
    """
    graph = model.graph
    nodes: list[onnx.NodeProto] = []
    count = 0
    for node in graph.node:
        ranged = {a.name: a.i for a in node.attribute if a.name in ("start", "end")}
        if node.op_type != "Shape" or node.domain not in ("", "ai.onnx") or not ranged:
            nodes.append(node)
            continue
        base = node.name or node.output[0]
        full = f"{base}/full_shape"
        bounds = {
            f"{base}/starts": ranged.get("start", 0),
            f"{base}/ends": ranged.get("end", INT64_MAX),
            f"{base}/axes": 0,
        }
        graph.initializer.extend(numpy_helper.from_array(np.array([v], np.int64), n) for n, v in bounds.items())
        shape = helper.make_node("Shape", [node.input[0]], [full], name=f"{base}/shape")
        nodes += [shape, helper.make_node("Slice", [full, *bounds], [node.output[0]], name=base)]
        count += 1
    if count:
        replace_nodes(graph, nodes)
    return count


def explicit_squeeze_axes(model: onnx.ModelProto) -> int:
    """Give every ``Squeeze`` without axes the axes it squeezes (the unit dims of its input); how many.

    The input's shape must be known statically (ONNX shape inference with data propagation); otherwise
    :class:`UnsupportedRewrite` names the node.
    """
    graph = model.graph
    missing = [n for n in graph.node if n.op_type == "Squeeze" and n.domain in ("", "ai.onnx") and not _axes(n)]
    if not missing:
        return 0
    opset = next((e.version for e in model.opset_import if e.domain in ("", "ai.onnx")), 18)
    shapes = _static_shapes(model)
    for node in missing:
        shape = shapes.get(node.input[0])
        if shape is None:
            raise UnsupportedRewrite(f"Squeeze node {node.name!r}: the shape of {node.input[0]!r} is not static")
        axes = [axis for axis, size in enumerate(shape) if size == 1]
        if opset >= 13:
            name = f"{node.name or node.output[0]}/axes"
            graph.initializer.append(numpy_helper.from_array(np.array(axes, np.int64), name))
            del node.input[1:]
            node.input.append(name)
        else:
            node.attribute.append(helper.make_attribute("axes", axes))
    return len(missing)


def _axes(node: onnx.NodeProto) -> bool:
    return (len(node.input) > 1 and bool(node.input[1])) or any(a.name == "axes" for a in node.attribute)


def _static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes = {}
    for value in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        if value.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(d.dim_value for d in dims)
    return shapes


def to_opset17(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of an opset-18 ``model`` rewritten for opset 17 (custom-domain imports unchanged).

    ``onnx.version_converter`` has no Split 18 -> 17 adapter and the onnxscript converter declines, so the few
    opset-18 changes a DSRIR graph uses are undone here: ``ReduceMean`` & co. take ``axes`` as an attribute again
    (``noop_with_empty_axes`` must be its default); ``Resize``'s new ``antialias``/``keep_aspect_ratio_policy``
    must be their defaults and are dropped. Anything else opset 17 cannot express is refused by name, and
    ``onnx.checker`` validates the result against the opset-17 schemas.
    """
    converted = onnx.ModelProto()
    converted.CopyFrom(model)
    graph = converted.graph
    initializers = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type in REDUCE_OPS:
            _reduce_axes_to_attribute(node, initializers)
        elif node.op_type == "Resize":
            _drop_resize_defaults(node)
        elif node.op_type == "Split" and any(a.name == "num_outputs" for a in node.attribute):
            raise UnsupportedForOpset17(f"Split node {node.name!r} uses num_outputs (opset 18 only)")
        elif node.op_type == "Pad" and len(node.input) > 3 and node.input[3]:
            raise UnsupportedForOpset17(f"Pad node {node.name!r} uses axes (opset 18 only)")
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used or init.name in {v.name for v in graph.output}]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for entry in converted.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = 17
    return converted


def _reduce_axes_to_attribute(node: onnx.NodeProto, initializers: dict[str, onnx.TensorProto]) -> None:
    noop = next((a.i for a in node.attribute if a.name == "noop_with_empty_axes"), 0)
    kept_attributes = [a for a in node.attribute if a.name != "noop_with_empty_axes"]
    axes_name = node.input[1] if len(node.input) > 1 else ""
    if axes_name:
        if axes_name not in initializers:
            raise UnsupportedForOpset17(f"{node.op_type} node {node.name!r} has computed axes ({axes_name})")
        axes = [int(v) for v in numpy_helper.to_array(initializers[axes_name]).reshape(-1)]
        kept_attributes.append(helper.make_attribute("axes", axes))
    elif noop:
        raise UnsupportedForOpset17(f"{node.op_type} node {node.name!r} uses noop_with_empty_axes=1")
    del node.attribute[:]
    node.attribute.extend(kept_attributes)
    del node.input[1:]


def _drop_resize_defaults(node: onnx.NodeProto) -> None:
    kept = []
    for attribute in node.attribute:
        if attribute.name == "axes":
            raise UnsupportedForOpset17(f"Resize node {node.name!r} uses axes (opset 18 only)")
        if attribute.name in RESIZE_DEFAULTS:
            if helper.get_attribute_value(attribute) != RESIZE_DEFAULTS[attribute.name]:
                raise UnsupportedForOpset17(f"Resize node {node.name!r} sets {attribute.name} (opset 18 only)")
            continue
        kept.append(attribute)
    del node.attribute[:]
    node.attribute.extend(kept)
