"""The TensorRT INT8 artefact: the FP32 export with explicit QuantizeLinear -> DequantizeLinear pairs.

TensorRT (8.6, 10.x, and 11.x, which has no other INT8 path) builds INT8 layers where a graph says so with Q/DQ
nodes, and fuses a DequantizeLinear into the layer that reads it. Placement follows the Q/DQ layer-placement
recommendations of its developer guide ("Working with Quantized Types"):

* Every quantised Conv (:func:`calibration.ranges.is_quantized_module`: all but the PatchAttention MLP and the
  image embedding ``ebd``) reads both inputs straight from a DequantizeLinear: the activation per tensor (int8, zero
  point 0, scale amax / 127 from the calibration ranges), the weight per output channel (axis 0, symmetric; float
  weights behind Q -> DQ, which TensorRT quantises at build time). A tensor read by several Convs gets one shared
  pair. The PatchAttention MLP and its sigmoid stay floating point (the gate multiplies its error into every pixel
  of a cell, for almost no compute), and so does ``ebd``, the first convolution (measured: the largest single
  source of INT8 error, 0.6 % of the FLOPs).
* Conv outputs get no Q/DQ of their own (the guide's default). Bias and ReLU/LeakyReLU fuse into the Conv, and where
  the next Conv's Q is the only reader (conv1 -> ReLU -> conv2 in every block) TensorRT folds that Q in as well, so
  the Conv writes INT8.
* Residual Add inputs get no Q/DQ. TensorRT fuses an Add that follows a Conv into that Conv whatever the other
  input's precision, which only decides whether the fused Conv may write INT8: worth it when every reader of the sum
  is a quantised Conv. In DSRIR every Add fed by a Conv also feeds a floating-point reader (the next block's
  ``res * gate + x``, the output image), so the float sum must exist anyway, except USAU's three
  ``conv1(x) + conv_in(img)``; there it would save one tensor write at the price of an extra rounding and a range
  for a Conv output that calibration does not record. The patch-attention residuals follow the gate Mul, not a
  Conv, and have nothing to fuse with.

High precision: a strongly typed build (TensorRT 10.x with Q/DQ graphs, the only mode of 11.x) computes every
non-INT8 layer in the graph's own type, and a DequantizeLinear outputs its scale's type. ``high_precision="fp16"``
(for TensorRT 10/11) therefore makes everything that is not INT8 FP16: scales, weights of the float convolutions,
every activation, with float32 only at the graph's input and output (:mod:`dsrir.graph.fp16`). FP16 Q/DQ types
need opset 19 (QuantizeLinear/DequantizeLinear-19 take float16), which TensorRT 8.x cannot parse: for 8.6 keep
``fp32`` and build with the INT8 and FP16 flags.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from calibration.fp32_export import fp32_export_metadata
from calibration.ranges import ConvSite, Ranges, conv_sites, is_quantized_module
from dsrir.errors import DSRIRError
from dsrir.graph.checks import check_graph
from dsrir.graph.edit import replace_nodes
from dsrir.graph.metadata import INT8_QDQ, ExportMetadata, write_metadata
from dsrir.graph.quant import INT8_MAX, MIN_AMAX

HIGH_PRECISIONS = ("fp32", "fp16")
FP16_QDQ_OPSET = 19  # QuantizeLinear/DequantizeLinear take float16 inputs and scales from opset 19
PREFIX = "qdq"


def insert_qdq(model: onnx.ModelProto, ranges: Ranges, high_precision: str = "fp32") -> onnx.ModelProto:
    """A checked copy of the decomposed FP32 export ``model`` with Q/DQ before every quantised Conv.

    ``ranges`` supplies the activation amax of every quantised Conv's input and, optionally, per-channel weight
    amax (computed from the initializer when absent). The copy's ``dsrir.precision`` is ``int8-qdq``; with
    ``high_precision="fp16"`` everything that is not INT8 is FP16 (float32 I/O, opset 19).
    """
    return _insert_qdq(model, fp32_export_metadata(model, "Q/DQ insertion"), ranges, high_precision)


def insert_qdq_plugin(
    plugin: onnx.ModelProto, calibrated: onnx.ModelProto, ranges: Ranges, high_precision: str = "fp32", what: str = ""
) -> onnx.ModelProto:
    """:func:`insert_qdq` for the plugin flavour ``plugin`` of the decomposed export ``calibrated`` that ``ranges``
    were measured on (ONNX Runtime cannot calibrate inside a plugin node): the same convolutions get the same
    Q/DQ (:func:`carry_ranges`); ``what`` names ``plugin`` in errors."""
    what = what or "the plugin flavour"
    metadata = fp32_export_metadata(plugin, f"Q/DQ insertion into {what}", allow_plugin=True)
    if metadata.patch_attention != "plugin":
        raise DSRIRError(
            f"{what}: patch attention {metadata.patch_attention}, expected the plugin flavour "
            "(python -m export.onnx --patch-attention plugin)"
        )
    return _insert_qdq(plugin, metadata, carry_ranges(ranges, calibrated, plugin, what), high_precision)


def _insert_qdq(
    model: onnx.ModelProto, metadata: ExportMetadata, ranges: Ranges, high_precision: str
) -> onnx.ModelProto:
    if high_precision not in HIGH_PRECISIONS:
        raise DSRIRError(f"high precision {high_precision!r}: expected one of {', '.join(HIGH_PRECISIONS)}")
    quantized = onnx.ModelProto()
    quantized.CopyFrom(model)
    graph = quantized.graph
    weights = {init.name: init for init in graph.initializer}
    sites = {site.node: site for module, site in conv_sites(quantized).items() if is_quantized_module(module)}
    emitted: set[str] = set()  # one shared pair per tensor, placed before its first quantised reader
    nodes: list[onnx.NodeProto] = []
    parameters: list[onnx.TensorProto] = []
    for node in graph.node:
        site = sites.get(node.name)
        if site is not None:
            for tensor in (site.input, site.weight):
                if tensor not in emitted:
                    is_weight = tensor == site.weight
                    scale = _weight_scales(ranges, weights[tensor]) if is_weight else _activation_scale(ranges, site)
                    pair, pair_parameters = _qdq_pair(tensor, scale)
                    nodes += pair
                    parameters += pair_parameters
                    emitted.add(tensor)
            node.input[0], node.input[1] = _dequantized(site.input), _dequantized(site.weight)
        nodes.append(node)
    replace_nodes(graph, nodes)
    graph.initializer.extend(parameters)
    if high_precision == "fp16":
        quantized = _to_fp16(quantized)
    write_metadata(quantized, dataclasses.replace(metadata, precision=INT8_QDQ))
    check_graph(quantized)
    return quantized


def _to_fp16(quantized: onnx.ModelProto) -> onnx.ModelProto:
    """The Q/DQ graph at opset 19 with every float tensor and scale FP16 except the float32 input and output.

    Opset 18 -> 19 changes no op a DSRIR graph uses except by adding types (Cast, Reshape, Resize, Shape,
    Q/DQ), so the version is restamped rather than converted.
    """
    from dsrir.graph.fp16 import convert_to_fp16

    for opset in quantized.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version < FP16_QDQ_OPSET:
            opset.version = FP16_QDQ_OPSET
    return convert_to_fp16(quantized)


def high_precision_for(version: tuple[int, ...]) -> str:
    """What a Q/DQ graph's non-INT8 part should be for TensorRT ``version``: FP16 for 10+ (strongly typed builds
    take the graph's types; 11.x knows nothing else), FP32 for 8.x (no opset 19; the FP16 flag lowers it)."""
    return "fp16" if version[0] >= 10 else "fp32"


def placement(model: onnx.ModelProto) -> set[tuple[str, frozenset[str]]]:
    """Where a Q/DQ graph quantises, independent of tensor names (PTQ and QAT export separately): for every
    QuantizeLinear, the producer's op type (through Casts) and the PyTorch modules of the convolutions reading its
    DequantizeLinear.
    """
    modules = {site.node: module for module, site in conv_sites(model).items()}
    producers = {out: node for node in model.graph.node for out in node.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    result = set()
    for node in model.graph.node:
        if node.op_type != "QuantizeLinear":
            continue
        producer = producers.get(node.input[0])
        while producer is not None and producer.op_type == "Cast":  # an FP16 graph casts its input once
            producer = producers.get(producer.input[0])
        kind = producer.op_type if producer is not None else "initializer-or-input"
        dequantized = [d.output[0] for d in readers.get(node.output[0], []) if d.op_type == "DequantizeLinear"]
        convs = {modules.get(r.name, r.op_type) for out in dequantized for r in readers.get(out, [])}
        result.add((kind, frozenset(convs)))
    return result


EPILOGUE_OPS = frozenset({"Relu", "LeakyRelu", "Add"})  # what TensorRT fuses into a Conv before its output Q


@dataclass(frozen=True)
class QDQStructure:
    """How a Q/DQ graph will run in TensorRT, counted from the graph: INT8 convolutions, activation quantizers that a
    convolution epilogue can absorb (the tensor comes from Conv -> (Relu|LeakyRelu|Add)*, every link read once, and
    only the Q reads it) against standalone ones (residual sums read by float ops too, pool/resize/concat outputs,
    the input), and the float types of everything else."""

    convs: int
    int8_convs: int
    activation_quantizers: int
    absorbable: int
    standalone: int
    scale_types: tuple[str, ...]
    float_types: tuple[str, ...]


def qdq_structure(model: onnx.ModelProto) -> QDQStructure:
    graph = model.graph
    constants = {init.name for init in graph.initializer} | {
        node.output[0] for node in graph.node if node.op_type == "Constant"
    }
    producers = {out: node for node in graph.node for out in node.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    outputs = {value.name for value in graph.output}

    def single_reader(tensor: str) -> bool:
        return tensor in producers and len(readers.get(tensor, [])) == 1 and tensor not in outputs

    def from_conv_epilogue(tensor: str) -> bool:
        node = producers.get(tensor)
        if node is None or node.op_type == "Conv":
            return node is not None
        if node.op_type not in EPILOGUE_OPS:
            return False
        links = [name for name in node.input if name not in constants and single_reader(name)]
        return any(from_conv_epilogue(name) for name in links)

    convs = [node for node in graph.node if node.op_type == "Conv"]
    int8 = [
        conv
        for conv in convs
        if all(
            producers.get(name) is not None and producers[name].op_type == "DequantizeLinear" for name in conv.input[:2]
        )
    ]
    quantizers = [n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in constants]
    absorbable = sum(single_reader(q.input[0]) and from_conv_epilogue(q.input[0]) for q in quantizers)
    initializers = {init.name: init for init in graph.initializer}
    scales = {
        onnx.TensorProto.DataType.Name(initializers[n.input[1]].data_type)
        for n in graph.node
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.input[1] in initializers
    }
    inferred = onnx.shape_inference.infer_shapes(model)
    io = {value.name for value in (*graph.input, *graph.output)}
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
    types = {
        onnx.TensorProto.DataType.Name(value.type.tensor_type.elem_type)
        for value in inferred.graph.value_info
        if value.name not in io and value.type.tensor_type.elem_type in floats
    }
    return QDQStructure(
        len(convs),
        len(int8),
        len(quantizers),
        absorbable,
        len(quantizers) - absorbable,
        tuple(sorted(scales)),
        tuple(sorted(types)),
    )


def carry_ranges(ranges: Ranges, calibrated: onnx.ModelProto, target: onnx.ModelProto, what: str) -> Ranges:
    """``ranges``, calibrated on the decomposed export ``calibrated``, keyed by the tensor names of ``target``, another
    export of the same weights (the plugin flavour, whose patch attention ONNX Runtime cannot calibrate).

    Each quantised convolution reads the same values in both graphs (a plugin node computes exactly the decomposed
    block it replaces), so its input's amax carries over. The PatchAttention MLPs are inside the plugin and stay
    float in both, so both Q/DQ graphs quantise the same convolutions.
    """
    activations: dict[str, float] = {}
    weights: dict[str, list[float]] = {}
    for source, site in matching_sites(calibrated, target, what):
        if source.input not in ranges.activations:
            raise DSRIRError(
                f"the ranges have no amax for {source.input!r} (input of {source.module}): calibrate "
                "the decomposed graph"
            )
        activations[site.input] = ranges.activations[source.input]
        if source.weight in ranges.weights:
            weights[site.weight] = ranges.weights[source.weight]
    return dataclasses.replace(ranges, activations=activations, weights=weights)


def matching_sites(calibrated: onnx.ModelProto, target: onnx.ModelProto, what: str) -> list[tuple[ConvSite, ConvSite]]:
    """(site in ``calibrated``, site in ``target``) for every quantised convolution of ``target``, matched by module
    (both exports name weights after it); a one-line DSRIRError naming ``what`` when ``target`` is not an export of
    the same weights."""
    sources = conv_sites(calibrated)
    source_weights = {init.name: init for init in calibrated.graph.initializer}
    target_weights = {init.name: init for init in target.graph.initializer}
    pairs = []
    for module, site in conv_sites(target).items():
        if not is_quantized_module(module):
            continue
        source = sources.get(module)
        if source is None or not _same_tensor(source_weights[source.weight], target_weights[site.weight]):
            change = "is not in" if source is None else "has other weights than"
            raise DSRIRError(
                f"{what}: convolution {module} {change} the calibrated graph: export both flavours from the "
                "same checkpoint"
            )
        pairs.append((source, site))
    return pairs


def _same_tensor(a: onnx.TensorProto, b: onnx.TensorProto) -> bool:
    return np.array_equal(numpy_helper.to_array(a), numpy_helper.to_array(b))


def _activation_scale(ranges: Ranges, site: ConvSite) -> np.ndarray:
    if site.input not in ranges.activations:
        raise DSRIRError(f"the ranges have no amax for {site.input!r} (input of {site.module}): calibrate this graph")
    return np.array(ranges.scale(site.input), np.float32)


def _weight_scales(ranges: Ranges, weight: onnx.TensorProto) -> np.ndarray:
    """Symmetric per-output-channel scales: the calibrated amax if recorded, else the weight's own."""
    if weight.data_type != TensorProto.FLOAT:
        raise DSRIRError(f"Q/DQ insertion needs the FP32 graph; weight {weight.name!r} is not float32")
    channels = weight.dims[0]
    if weight.name in ranges.weights:
        amax = np.asarray(ranges.weights[weight.name], np.float64)
        if amax.shape != (channels,):
            raise DSRIRError(
                f"the ranges give {amax.size} channel amax for {weight.name!r}, which has {channels} "
                "output channels: ranges of another model?"
            )
    else:
        amax = np.abs(numpy_helper.to_array(weight)).reshape(channels, -1).max(axis=1)
    return (np.maximum(amax, MIN_AMAX) / INT8_MAX).astype(np.float32)


def _dequantized(tensor: str) -> str:
    return f"{PREFIX}/{tensor}/dequantized"


def _qdq_pair(tensor: str, scale: np.ndarray) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Q -> DQ of ``tensor`` and their scale and zero point: per tensor for a 0-d ``scale``, else per output channel
    (axis 0)."""
    base = f"{PREFIX}/{tensor}"
    params = [f"{base}/scale", f"{base}/zero_point"]
    initializers = [
        numpy_helper.from_array(scale, params[0]),
        numpy_helper.from_array(np.zeros(scale.shape, np.int8), params[1]),
    ]
    quantize = helper.make_node("QuantizeLinear", [tensor, *params], [f"{base}/quantized"], name=f"{base}/Quantize")
    dequantize = helper.make_node(
        "DequantizeLinear", [f"{base}/quantized", *params], [_dequantized(tensor)], name=f"{base}/Dequantize"
    )
    if scale.ndim:
        for node in (quantize, dequantize):
            node.attribute.append(helper.make_attribute("axis", 0))
    return [quantize, dequantize], initializers
