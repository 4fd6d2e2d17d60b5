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

from dsrir.graph.ops import PLUGIN_DOMAIN, PLUGIN_DOMAIN_VERSION, PLUGIN_NAMESPACE, PLUGIN_OP, PLUGIN_VERSION
from dsrir.ops.patch_attention import PatchAttention, patch_attention


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
        PLUGIN_OP,
        PLUGIN_DOMAIN,
        PLUGIN_DOMAIN_VERSION,
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

    node = values.Op(values.Opset(PLUGIN_DOMAIN, PLUGIN_DOMAIN_VERSION), PLUGIN_OP, _op_schema())

    def translate(res: Any, w1: Any, b1: Any, w2: Any, b2: Any, skip: Any, grid_h: int, grid_w: int) -> Any:
        inputs = [res, w1, b1, w2, b2] + ([] if skip is None else [skip])
        return node(
            *inputs, grid_h=grid_h, grid_w=grid_w, plugin_version=PLUGIN_VERSION, plugin_namespace=PLUGIN_NAMESPACE
        )

    return {torch.ops.dsrir.patch_attention_plugin.default: translate}
