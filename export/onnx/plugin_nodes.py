"""``--patch-attention plugin``: each PatchAttention + residual exported as one ``DSRIR_PatchAttention`` node.

The exporter emits the node itself, no graph surgery afterwards: for the export, every
:class:`~dsrir.ops.patch_attention.PatchAttention` is swapped for :class:`PluginPatchAttention`, which calls the
``torch.library`` op ``dsrir::patch_attention_plugin`` (its reference implementation is the PyTorch patch
attention, so tracing sees the real shapes), and the dynamo exporter translates that op with
:func:`translation_table` into the node TensorRT's ONNX parser hands to the plugin (``plugins/README.md``):
inputs ``[res, W1, b1, W2, b2]`` plus ``skip`` as the 6th, a custom domain declared in the model's
``opset_import``, STRING ``plugin_version``/``plugin_namespace`` (read by the parser) and INT ``grid_h``/``grid_w``
(the plugin's only fields). The weights are the module's parameters, so they stay initializers.

No module-level ``from __future__ import annotations``: ``torch.library.custom_op`` reads real annotations.
"""

import copy
from collections.abc import Callable
from typing import Any, Optional

import onnx
import torch
from torch import Tensor, nn

from dsrir.graph.edit import replace_nodes
from dsrir.ops.patch_attention import PatchAttention, patch_attention

OP_TYPE = "DSRIR_PatchAttention"
DOMAIN = "trt.plugins"  # what ONNX Runtime's TensorRT provider uses; TensorRT's parser ignores the domain
DOMAIN_VERSION = 1
PLUGIN_VERSION = "1"
PLUGIN_NAMESPACE = ""
WEIGHT_SLOTS = (1, 2, 3, 4)  # W1, b1, W2, b2: float32 whatever the graph's precision


@torch.library.custom_op("dsrir::patch_attention_plugin", mutates_args=())
def patch_attention_plugin(
    res: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, skip: Optional[Tensor], grid_h: int, grid_w: int
) -> Tensor:
    """Stand-in for the TensorRT plugin during export; computes what the plugin computes."""
    return patch_attention(res, w1, b1, w2, b2, (grid_h, grid_w), skip)


@patch_attention_plugin.register_fake
def _patch_attention_plugin_fake(
    res: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, skip: Optional[Tensor], grid_h: int, grid_w: int
) -> Tensor:
    return torch.empty_like(res)


class PluginPatchAttention(nn.Module):
    """A PatchAttention whose forward is the plugin op; shares the original's ``conv_du`` (same parameter names)."""

    def __init__(self, original: PatchAttention) -> None:
        super().__init__()
        self.grid = original.grid
        self.conv_du = original.conv_du

    def forward(self, x: Tensor, skip: Optional[Tensor] = None) -> Tensor:
        squeeze, expand = self.conv_du[0], self.conv_du[2]
        if squeeze.bias is None or expand.bias is None:  # the plugin takes both biases as inputs
            raise ValueError("DSRIR_PatchAttention needs biased 1x1 convolutions")
        return torch.ops.dsrir.patch_attention_plugin(
            x, squeeze.weight, squeeze.bias, expand.weight, expand.bias, skip, self.grid[0], self.grid[1]
        )


def with_plugin_patch_attention(model: nn.Module) -> tuple[nn.Module, int]:
    """A copy of ``model`` with every PatchAttention swapped for :class:`PluginPatchAttention`; and how many."""
    model = copy.deepcopy(model)
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, PatchAttention):
                setattr(parent, name, PluginPatchAttention(child))
                swapped += 1
    return model, swapped


def _op_schema() -> onnx.defs.OpSchema:
    """The node's signature, for onnxscript only (not registered with onnx: TensorRT owns the op)."""
    schema = onnx.defs.OpSchema
    formal = schema.FormalParameter
    optional = schema.FormalParameterOption.Optional
    return schema(
        OP_TYPE,
        DOMAIN,
        DOMAIN_VERSION,
        inputs=[
            formal("res", "T"),
            formal("W1", "W"),
            formal("b1", "W"),
            formal("W2", "W"),
            formal("b2", "W"),
            formal("skip", "T", param_option=optional),
        ],
        outputs=[formal("out", "T")],
        type_constraints=[("T", ["tensor(float)", "tensor(float16)"], ""), ("W", ["tensor(float)"], "")],
        attributes=[
            schema.Attribute("grid_h", schema.AttrType.INT, ""),
            schema.Attribute("grid_w", schema.AttrType.INT, ""),
            schema.Attribute("plugin_version", schema.AttrType.STRING, ""),
            schema.Attribute("plugin_namespace", schema.AttrType.STRING, ""),
        ],
    )


def translation_table() -> dict[Callable[..., Any], Callable[..., Any]]:
    """``custom_translation_table`` for ``torch.onnx.export``: the plugin op -> one custom-domain node."""
    from onnxscript import values

    node = values.Op(values.Opset(DOMAIN, DOMAIN_VERSION), OP_TYPE, _op_schema())

    def translate(res: Any, w1: Any, b1: Any, w2: Any, b2: Any, skip: Any, grid_h: int, grid_w: int) -> Any:
        inputs = [res, w1, b1, w2, b2] + ([] if skip is None else [skip])
        return node(
            *inputs, grid_h=grid_h, grid_w=grid_w, plugin_version=PLUGIN_VERSION, plugin_namespace=PLUGIN_NAMESPACE
        )

    return {torch.ops.dsrir.patch_attention_plugin.default: translate}


def plugin_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The graph's ``DSRIR_PatchAttention`` nodes (any domain but the standard one)."""
    return [node for node in model.graph.node if node.op_type == OP_TYPE and node.domain not in ("", "ai.onnx")]


def for_cpu_check(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy that ONNX Runtime on CPU can run: plugin nodes on onnxruntime-extensions' float32 ops.

    Those ops are float32 only, so in an FP16 graph (one with float16 weights, as :mod:`dsrir.graph.fp16`
    makes them, where every activation is float16) each node's ``res``/``skip`` is cast to float32 and its
    output back to float16; the plugin computes in float32 too. Needs onnxruntime-extensions.
    """
    from dsrir.ops.patch_attention_ort import to_contrib_domain

    model = copy.deepcopy(model)
    graph = model.graph
    fp16 = any(init.data_type == onnx.TensorProto.FLOAT16 for init in graph.initializer)
    rebuilt: list[onnx.NodeProto] = []
    for node in graph.node:
        if not fp16 or node.op_type != OP_TYPE or node.domain in ("", "ai.onnx"):
            rebuilt.append(node)
            continue
        for slot in [0, 5] if len(node.input) > 5 and node.input[5] else [0]:
            cast_name = f"{node.input[slot]}_{node.name}_fp32"
            rebuilt.append(onnx.helper.make_node("Cast", [node.input[slot]], [cast_name], to=onnx.TensorProto.FLOAT))
            node.input[slot] = cast_name
        result = node.output[0]
        node.output[0] = f"{result}_fp32"
        rebuilt.append(node)
        rebuilt.append(onnx.helper.make_node("Cast", [node.output[0]], [result], to=onnx.TensorProto.FLOAT16))
    replace_nodes(graph, rebuilt)
    return to_contrib_domain(model)
