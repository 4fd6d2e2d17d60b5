"""What the engine builder needs to know about an ONNX file, read without TensorRT.

The builder's decisions depend on the graph, not on what a user remembers about it: the input's name,
layout and type, whether it is already FP16, whether it carries Q/DQ nodes (explicit INT8), whether
it needs the ``DSRIR_PatchAttention`` plugin, and whether the TensorRT version's ONNX importer takes it
(:mod:`dsrir.trt.import_rules`, run by the plan). The graph's ``dsrir.*`` metadata (``dsrir.graph.metadata``)
supplies the size multiple and is copied into the engine's sidecar.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from dsrir.digest import files_sha256
from dsrir.errors import DSRIRError
from dsrir.graph.checks import recorded_target
from dsrir.graph.metadata import ExportMetadata, read_metadata
from dsrir.graph.ops import PLUGIN_OP, QDQ_OPS
from dsrir.trt.import_rules import Problem, check_for_target
from dsrir.trt.version import Version

DTYPE_NAMES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.BFLOAT16: "bfloat16",
}
Dim = int | str  # static size, or the name of a dynamic one


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    dims: tuple[Dim, ...]


@dataclass(frozen=True)
class GraphInfo:
    path: Path
    input: TensorInfo
    outputs: tuple[TensorInfo, ...]
    layout: str  # "NCHW" (float io) or "NHWC" (uint8 frames)
    has_qdq: bool
    has_fp16: bool
    plugin_nodes: int
    metadata: ExportMetadata
    target_trt: str | None = None  # the TensorRT version export.onnx checked the graph for (None: not recorded)
    model: onnx.ModelProto | None = field(default=None, compare=False, repr=False)  # weights not loaded

    def import_problems(self, version: Version | str) -> list[Problem]:
        """What TensorRT ``version``'s ONNX importer would refuse or misread in this graph (empty: nothing)."""
        return [] if self.model is None else check_for_target(self.model, version)

    @property
    def kind(self) -> str:
        """``qdq`` (explicitly quantized), ``fp16`` (FP16 tensors) or ``fp32``: what the precision decision uses."""
        if self.has_qdq:
            return "qdq"
        return "fp16" if self.has_fp16 else "fp32"


def _tensor_info(value: onnx.ValueInfoProto) -> TensorInfo:
    tensor = value.type.tensor_type
    dims: list[Dim] = []
    for dim in tensor.shape.dim:
        dims.append(dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or "?"))
    return TensorInfo(value.name, DTYPE_NAMES.get(tensor.elem_type, f"onnx-type-{tensor.elem_type}"), tuple(dims))


def _all_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Nodes of the graph and of its subgraphs (If/Loop bodies)."""
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        nodes.append(node)
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                nodes += _all_nodes(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for sub in attribute.graphs:
                    nodes += _all_nodes(sub)
    return nodes


def _uses_fp16(model: onnx.ModelProto, nodes: list[onnx.NodeProto]) -> bool:
    graph = model.graph
    typed = [*graph.input, *graph.output, *graph.value_info]
    if any(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 for v in typed):
        return True
    if any(init.data_type == onnx.TensorProto.FLOAT16 for init in graph.initializer):
        return True
    for node in nodes:
        if node.op_type == "Cast":
            for attribute in node.attribute:
                if attribute.name == "to" and attribute.i == onnx.TensorProto.FLOAT16:
                    return True
    return False


def layout_of(tensor: TensorInfo, io: str, path: Path) -> str:
    """NCHW float32/float16 RGB for ``io`` float; NHWC uint8 frames for ``io`` uint8 (see ExportMetadata)."""
    if len(tensor.dims) != 4:
        raise DSRIRError(f"{path}: input {tensor.name!r} has rank {len(tensor.dims)}; DSRIR engines take 4-D images")
    if tensor.dtype == "uint8":
        layout, channel_axis = "NHWC", 3
    elif tensor.dtype in ("float32", "float16"):
        layout, channel_axis = "NCHW", 1
    else:
        raise DSRIRError(f"{path}: input {tensor.name!r} is {tensor.dtype}; expected float32, float16 or uint8")
    if (io == "uint8") != (layout == "NHWC"):
        raise DSRIRError(f"{path}: metadata says io={io} but input {tensor.name!r} is {tensor.dtype} {layout}")
    channels = tensor.dims[channel_axis]
    if isinstance(channels, int) and channels != 3:
        raise DSRIRError(f"{path}: input {tensor.name!r} has {channels} channels on axis {channel_axis}; expected 3")
    return layout


def external_data_files(model: onnx.ModelProto, path: Path) -> list[Path]:
    """Files holding the weights of a model saved with external data (the dynamo exporter's ``.onnx.data``)."""
    names: set[str] = set()
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            names.update(entry.value for entry in tensor.external_data if entry.key == "location")
    return [path.parent / name for name in sorted(names)]


def inspect_onnx(path: str | os.PathLike[str]) -> GraphInfo:
    """Check the file with ``onnx.checker`` and describe it; every problem is one DSRIRError line."""
    path = Path(path)
    if not path.is_file():
        raise DSRIRError(f"{path}: ONNX file not found")
    try:
        model = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(str(path))
    except Exception as exc:  # onnx raises DecodeError, ValidationError, OSError...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DSRIRError(f"{path}: not a valid ONNX model ({first})") from None
    try:
        metadata = read_metadata(model)
    except (KeyError, ValueError) as exc:
        reason = exc.args[0] if exc.args else type(exc).__name__
        raise DSRIRError(f"{path}: {reason} (export it with python -m export.onnx)") from None
    initializers = {init.name for init in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    if len(inputs) != 1:
        raise DSRIRError(f"{path}: {len(inputs)} graph inputs; a DSRIR model has exactly one (the image)")
    first_input = _tensor_info(inputs[0])
    nodes = _all_nodes(model.graph)
    return GraphInfo(
        path=path,
        input=first_input,
        outputs=tuple(_tensor_info(v) for v in model.graph.output),
        layout=layout_of(first_input, metadata.io, path),
        has_qdq=any(node.op_type in QDQ_OPS for node in nodes),
        has_fp16=_uses_fp16(model, nodes),
        plugin_nodes=sum(node.op_type == PLUGIN_OP for node in nodes),
        metadata=metadata,
        target_trt=recorded_target(model),
        model=model,
    )


def onnx_digest(path: Path) -> str:
    """sha256 of the ``.onnx`` file and its external data files: an engine's ONNX hash covers its weights too."""
    model = onnx.load(str(path), load_external_data=False)
    return files_sha256([path, *external_data_files(model, path)])
