"""``--opset 17``: TensorRT 8.5/8.6 (JetPack 5.x) parse ONNX up to opset 17; the dynamo exporter writes 18.

The exporter's own down-conversion fails on these graphs (``onnx.version_converter`` has no Split 18 -> 17
adapter and the onnxscript converter declines), so the few opset-18 changes a DSRIR graph uses are undone here:

* ``ReduceMean`` & co. take ``axes`` as a constant input in 18 and as an attribute in 17;
  ``noop_with_empty_axes`` (18 only) must be its default.
* ``Resize`` gained ``antialias``, ``axes`` and ``keep_aspect_ratio_policy`` in 18; the defaults are dropped.

Anything else that opset 17 cannot express is refused by name; ``onnx.checker`` then validates the result
against the opset-17 schemas, so an unhandled change cannot slip through.
"""

from __future__ import annotations

import onnx
from onnx import helper, numpy_helper

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


class UnsupportedForOpset17(ValueError):
    """The graph uses an opset-18 feature that has no opset-17 form here."""


def to_opset17(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of an opset-18 ``model`` rewritten for opset 17 (custom-domain imports unchanged)."""
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
