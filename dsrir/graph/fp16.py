"""``--precision fp16``: an FP16 graph with float32 input/output, for strongly typed TensorRT.

TensorRT 11 (and 10.x with ``--stronglyTyped``) runs each tensor in the type the ONNX graph gives it, so
FP16 must be in the graph. The conversion is ONNX Runtime's ``float16`` tool with ``keep_io_types=True``:
float32 in and out with a Cast at each boundary, every other float tensor and weight float16, and the
inputs whose type ONNX fixes to float32 (Resize scales) kept float32. Two fixes follow:

* ``DSRIR_PatchAttention`` weights (``W1, b1, W2, b2``) go back to float32 (the plugin's contract: only
  ``res``, ``skip`` and the output are float16); the plugin accumulates in float32 anyway.
* A float16 constant that the tool casts straight back to float32 is replaced by its float32 original.

Nothing else is kept in float32: measured on a briefly trained dsrir-xs, the FP16 graph's PSNR on a noisy
natural-like image is within 0.01 dB of the FP32 graph's (the ONNX Runtime CPU kernels reduce
``ReduceMean`` in float32, as TensorRT does), so the patch-attention means, sigmoids and the residual adds
need no float32 island. ``keep_fp32`` names node types to keep in float32 should a model need it.
"""

from __future__ import annotations

from collections.abc import Iterable

import onnx

from dsrir.graph.edit import drop_value_info, replace_nodes, topological_sort
from dsrir.graph.ops import PLUGIN_OP, PLUGIN_WEIGHT_SLOTS


def convert_to_fp16(model: onnx.ModelProto, keep_fp32: Iterable[str] = ()) -> onnx.ModelProto:
    """A float16 copy of a float32 graph whose input and output stay float32."""
    from onnxruntime.transformers.float16 import (  # type: ignore[import-untyped]
        DEFAULT_OP_BLOCK_LIST,
        convert_float_to_float16,
    )

    originals = {init.name: init for init in model.graph.initializer if init.data_type == onnx.TensorProto.FLOAT}
    source = onnx.ModelProto()
    source.CopyFrom(model)  # the tool edits what it is given
    converted: onnx.ModelProto = convert_float_to_float16(
        source,
        keep_io_types=True,
        op_block_list=sorted(set(DEFAULT_OP_BLOCK_LIST) | set(keep_fp32)),
        disable_shape_infer=False,
    )
    _plugin_weights_to_fp32(converted, originals)
    _undo_constant_round_trips(converted, originals)
    # The tool records initializers' types in value_info too; those restored to float32 would contradict it.
    drop_value_info(converted.graph, {init.name for init in converted.graph.initializer})
    topological_sort(converted.graph)  # the tool appends the input Cast last; onnx.checker wants order
    return converted


def _plugin_weights_to_fp32(model: onnx.ModelProto, originals: dict[str, onnx.TensorProto]) -> None:
    """Give every DSRIR_PatchAttention weight input its float32 original (a separate copy if others share it)."""
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    plugin_uses: dict[str, int] = {}
    all_uses: dict[str, int] = {}
    for node in graph.node:
        for slot, name in enumerate(node.input):
            all_uses[name] = all_uses.get(name, 0) + 1
            if node.op_type == PLUGIN_OP and slot in PLUGIN_WEIGHT_SLOTS:
                plugin_uses[name] = plugin_uses.get(name, 0) + 1
    for name in plugin_uses:
        current = initializers.get(name)
        if current is None or name not in originals or current.data_type == onnx.TensorProto.FLOAT:
            continue
        if plugin_uses[name] == all_uses[name]:
            current.CopyFrom(originals[name])
            continue
        copy_name = f"{name}_fp32"
        if copy_name not in initializers:
            fp32 = graph.initializer.add()
            fp32.CopyFrom(originals[name])
            fp32.name = copy_name
            initializers[copy_name] = fp32
        for node in graph.node:
            if node.op_type == PLUGIN_OP:
                for slot in PLUGIN_WEIGHT_SLOTS:
                    if slot < len(node.input) and node.input[slot] == name:
                        node.input[slot] = copy_name


def _undo_constant_round_trips(model: onnx.ModelProto, originals: dict[str, onnx.TensorProto]) -> None:
    """``init(fp16) -> Cast(to=float)`` becomes the float32 initializer itself (e.g. Resize scales)."""
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    graph_outputs = {value.name for value in graph.output}
    drop: list[onnx.NodeProto] = []
    renames: dict[str, str] = {}
    for node in graph.node:
        if node.op_type != "Cast" or len(node.input) != 1 or node.output[0] in graph_outputs:
            continue
        source = node.input[0]
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        init = initializers.get(source)
        if to != onnx.TensorProto.FLOAT or init is None or source not in originals or consumers.get(source) != 1:
            continue
        init.CopyFrom(originals[source])
        renames[node.output[0]] = source
        drop.append(node)
    dropped = {id(node) for node in drop}
    replace_nodes(graph, [node for node in graph.node if id(node) not in dropped])
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
    drop_value_info(graph, set(renames))
