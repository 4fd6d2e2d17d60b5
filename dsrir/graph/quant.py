"""INT8 numbers that calibration writes and QAT, the engine builder and the runtime read: one place for each.

Symmetric INT8: scale = amax / 127, zero point 0 (TensorRT's convention, and ONNX Runtime's for signed weights).
The CPU INT8 graph's weights are 8-bit (|q| <= 127) or 7-bit (|q| <= 64, ORT's ``reduce_range``): which one a graph
holds is read from its largest weight code (:func:`largest_weight_code`).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

INT8_MAX = 127  # largest |code| of symmetric INT8, so scale = amax / INT8_MAX
REDUCED_RANGE = 64  # largest |weight code| of 7-bit weights: 2 x 255 x 64 fits ORT's saturating int16 sums
MIN_AMAX = 1e-8  # a tensor or weight channel that was always zero still gets a positive scale


def weight_dequantizers(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """DequantizeLinear nodes whose quantised input is an INT8 initializer (the convolution weights)."""
    int8 = {init.name for init in model.graph.initializer if init.data_type == onnx.TensorProto.INT8}
    return [node for node in model.graph.node if node.op_type == "DequantizeLinear" and node.input[0] in int8]


def largest_weight_code(model: onnx.ModelProto) -> int:
    """max |q| over the INT8 weight initializers (0 when there are none)."""
    codes = {node.input[0] for node in weight_dequantizers(model)}
    arrays = (numpy_helper.to_array(init) for init in model.graph.initializer if init.name in codes)
    return max((int(np.abs(a.astype(np.int16)).max(initial=0)) for a in arrays), default=0)
