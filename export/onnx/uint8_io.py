"""``--io uint8``: the graph takes and returns video frames, with pre/post-processing folded into the engine.

Input ``input`` is ``(N, H, W, 3)`` uint8 BGR (what OpenCV and most capture APIs hand over), output ``output``
the same. Inside: Cast to float32, NHWC -> NCHW, BGR -> RGB, /255, the network, then clip to [0, 1], *255,
Round (half to even, as ``np.rint`` in :class:`dsrir.model.Restorer`), RGB -> BGR, NCHW -> NHWC, Cast to uint8.
The uint8 tensors touch only the Casts at the graph's boundary, the only place TensorRT accepts uint8.

H and W must still be multiples of the model's ``size_multiple``: the runtime pads (reflect) and crops.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from dsrir.graph.edit import replace_nodes

PREFIX = "uint8_io"


def wrap_uint8_io(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of a float-I/O graph (``input``/``output`` NCHW float32 RGB in [0, 1]) with uint8 BGR NHWC I/O."""
    wrapped = onnx.ModelProto()
    wrapped.CopyFrom(model)
    graph = wrapped.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ValueError("uint8 I/O wraps a graph with exactly one input and one output")
    source, sink = graph.input[0], graph.output[0]
    if source.type.tensor_type.elem_type != TensorProto.FLOAT or sink.type.tensor_type.elem_type != TensorProto.FLOAT:
        raise ValueError("uint8 I/O wraps a float32-I/O graph")
    in_name, out_name = source.name, sink.name
    inner_in, inner_out = f"{PREFIX}/rgb_in", f"{PREFIX}/rgb_out"
    in_dims = [_dim_text(d) for d in source.type.tensor_type.shape.dim]
    out_dims = [_dim_text(d) for d in sink.type.tensor_type.shape.dim]
    for node in graph.node:
        node.input[:] = [inner_in if name == in_name else name for name in node.input]
        node.output[:] = [inner_out if name == out_name else name for name in node.output]

    def name(step: str) -> str:
        return f"{PREFIX}/{step}"

    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([2, 1, 0], np.int64), name("channel_flip")),
            numpy_helper.from_array(np.array(255.0, np.float32), name("scale")),
            numpy_helper.from_array(np.array(0.0, np.float32), name("zero")),
            numpy_helper.from_array(np.array(1.0, np.float32), name("one")),
        ]
    )
    pre = [
        helper.make_node("Cast", [in_name], [name("float")], to=TensorProto.FLOAT, name=name("cast_in")),
        helper.make_node("Transpose", [name("float")], [name("nchw_bgr")], perm=[0, 3, 1, 2], name=name("to_nchw")),
        helper.make_node("Gather", [name("nchw_bgr"), name("channel_flip")], [name("nchw_rgb")], axis=1,
                         name=name("bgr_to_rgb")),
        helper.make_node("Div", [name("nchw_rgb"), name("scale")], [inner_in], name=name("to_unit")),
    ]  # fmt: skip
    post = [
        helper.make_node("Clip", [inner_out, name("zero"), name("one")], [name("clipped")], name=name("clip")),
        helper.make_node("Mul", [name("clipped"), name("scale")], [name("levels")], name=name("to_levels")),
        helper.make_node("Round", [name("levels")], [name("rounded")], name=name("round")),
        helper.make_node("Gather", [name("rounded"), name("channel_flip")], [name("nchw_out")], axis=1,
                         name=name("rgb_to_bgr")),
        helper.make_node("Transpose", [name("nchw_out")], [name("nhwc")], perm=[0, 2, 3, 1], name=name("to_nhwc")),
        helper.make_node("Cast", [name("nhwc")], [out_name], to=TensorProto.UINT8, name=name("cast_out")),
    ]  # fmt: skip
    replace_nodes(graph, [*pre, *graph.node, *post])
    del graph.input[:]
    del graph.output[:]
    nhwc_in = [in_dims[0], in_dims[2], in_dims[3], in_dims[1]]
    nhwc_out = [out_dims[0], out_dims[2], out_dims[3], out_dims[1]]
    graph.input.append(helper.make_tensor_value_info(in_name, TensorProto.UINT8, nhwc_in))
    graph.output.append(helper.make_tensor_value_info(out_name, TensorProto.UINT8, nhwc_out))
    return wrapped


def _dim_text(dim: onnx.TensorShapeProto.Dimension) -> int | str:
    return dim.dim_value if dim.HasField("dim_value") else dim.dim_param
