"""PyTorch DSRIR -> in-memory ONNX: the dynamo exporter, dynamic batch/H/W, one input and one output.

The graph takes ``input`` (N, 3, H, W) float32 RGB in [0, 1] and returns ``output``, the final image only
(:meth:`DSRIR.restore`); H and W must be multiples of the model's ``size_multiple``, which is how the shapes
are declared to ``torch.export`` (``H = multiple * h``), so one graph serves every such size.

Before tracing, a copy of the model gets export-only module swaps that keep its function:

* Every bilinear x0.5 downsample becomes a 2x2 average pool. With ``align_corners=False`` and no
  antialiasing, bilinear x0.5 samples at ``2i + 0.5``, the mean of pixels ``2i`` and ``2i + 1`` in each
  direction: the same function on the even sizes the network sees. The float scale factor's symbolic-shape
  arithmetic made ``torch.export`` about 4x slower (dsrir-xs: 22 s -> 6 s tracing, about 68 s -> 21 s in all),
  and TensorRT and ONNX Runtime run an AveragePool more cheaply than a Resize.
* ``plugin=True``: patch attention becomes the TensorRT plugin node (:mod:`export.onnx.plugin_nodes`).
"""

from __future__ import annotations

import copy
import logging
import warnings
from typing import Any

import onnx
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dsrir.model.restore_only import RestoreOnly
from export.onnx import plugin_nodes

INPUT_NAME = "input"
OUTPUT_NAME = "output"
DIM_NAMES = ("batch", "height", "width")
MAX_BATCH = 256
MAX_SIDE = 8192


class HalveByMean(nn.Module):
    """Bilinear x0.5 (align_corners=False) on even sizes, written as the 2x2 mean it equals."""

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 2)


def _is_bilinear_half(module: nn.Module) -> bool:
    if not isinstance(module, nn.Upsample) or module.mode != "bilinear" or module.align_corners:
        return False
    factor = module.scale_factor
    factors = factor if isinstance(factor, tuple) else (factor, factor)
    return module.size is None and all(f == 0.5 for f in factors)


def swap_bilinear_halving(model: nn.Module) -> int:
    """Replace every bilinear x0.5 ``nn.Upsample`` of ``model`` in place by :class:`HalveByMean`; how many."""
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if _is_bilinear_half(child):
                setattr(parent, name, HalveByMean())
                swapped += 1
    return swapped


def export_model(model: nn.Module, size_multiple: int, opset: int = 18, plugin: bool = False) -> onnx.ModelProto:
    """Trace ``model`` (a DSRIR, or anything with ``restore``) to ONNX with dynamic batch, H and W.

    The caller's model is not modified. Weights are embedded (no external data). With ``plugin`` each
    PatchAttention is one ``DSRIR_PatchAttention`` node.
    """
    wrapped: nn.Module = RestoreOnly(copy.deepcopy(model)).eval()
    if plugin:
        wrapped, _ = plugin_nodes.with_plugin_patch_attention(wrapped)
    swap_bilinear_halving(wrapped)
    parameter = next(wrapped.parameters())
    # Batch 2 and H != W, so that no size is specialised (torch.export fixes sizes equal to 1 or to each other).
    example = torch.rand(2, 3, 8 * size_multiple, 12 * size_multiple, dtype=parameter.dtype)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    height = torch.export.Dim("h_blocks", min=1, max=MAX_SIDE // size_multiple)
    width = torch.export.Dim("w_blocks", min=1, max=MAX_SIDE // size_multiple)
    dynamic = {"image": {0: batch, 2: size_multiple * height, 3: size_multiple * width}}
    table: dict[Any, Any] = plugin_nodes.translation_table() if plugin else {}
    registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry_log.level
    registry_log.setLevel(logging.ERROR)  # "torchvision is not installed. Skipping torchvision::nms" x4
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's deprecation chatter is not the user's business
            program = torch.onnx.export(
                wrapped,
                (example,),
                dynamo=True,
                opset_version=opset,
                dynamic_shapes=dynamic,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                custom_translation_table=table or None,
                optimize=True,
                verbose=False,
            )
    finally:
        registry_log.setLevel(level)
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    exported = program.model_proto
    _name_io_dims(exported)
    _strip_node_metadata(exported.graph)
    return exported


def _name_io_dims(model: onnx.ModelProto) -> None:
    """``batch``/``height``/``width`` on the graph's input and output (the exporter writes ``8*h_blocks``...)."""
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        for axis, name in zip((0, 2, 3), DIM_NAMES):
            dims[axis].Clear()
            dims[axis].dim_param = name


def _strip_node_metadata(graph: onnx.GraphProto) -> None:
    """Drop the exporter's per-node stack traces and module paths: they name files of the exporting machine."""
    for node in graph.node:
        del node.metadata_props[:]
    for value in (*graph.input, *graph.output, *graph.value_info):
        del value.metadata_props[:]
