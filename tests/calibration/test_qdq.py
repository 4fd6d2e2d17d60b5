"""The two INT8 ONNX artefacts on ONNX Runtime (CPU): TensorRT's Q/DQ graph and ORT's own uint8 graph.

dsrir-xs with seeded random weights, exported once at 32x32-friendly dynamic shapes; calibration ranges come from
running the FP32 graph on natural-like images with every quantised convolution's input exposed as an output.
Random weights make the network close to the identity plus a correction, so tolerances are on the output's
difference from the FP32 graph, not on restoration quality; a deliberately wrong scale shows they can fail.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from calibration.ort_int8 import quantize_for_cpu, weight_bits_of
from calibration.qdq import insert_qdq, placement
from calibration.ranges import ConvSite, Ranges, conv_sites, is_quantized_module
from dsrir.errors import DSRIRError
from dsrir.graph.metadata import read_metadata, write_metadata
from dsrir.graph.quant import INT8_MAX, REDUCED_RANGE, largest_weight_code
from dsrir.graph.session import cpu_session
from export.engine.graph import inspect_onnx
from export.onnx.build import ExportOptions, build_onnx
from runtime.backends.cpu_int8 import CpuFeatures, fit_to_cpu, read_cpu_features
from tests.conftest import natural_like_image

pytest.importorskip("onnxscript", reason="the dynamo ONNX exporter needs onnxscript")

SIZE = 32
CALIBRATION_SEEDS = range(16)
HELD_OUT_SEEDS = (100, 101, 102)
# Largest |INT8 - FP32| output differences accepted, about 3x what was measured here (Q/DQ 0.009, CPU uint8 0.014).
QDQ_TOLERANCE = 0.03
CPU_TOLERANCE = 0.04
SATURATING = CpuFeatures("x86_64", frozenset({"avx2", "fma"}))
NON_SATURATING = CpuFeatures("x86_64", frozenset({"avx2", "avx512f", "avx512_vnni"}))


def image(seed: int) -> np.ndarray:
    """A (1, 3, SIZE, SIZE) float32 natural-like RGB image in [0, 1]."""
    return natural_like_image(SIZE, SIZE, seed).astype(np.float32).transpose(2, 0, 1)[None] / 255


def calibration_frames() -> Iterator[np.ndarray]:
    return (image(seed) for seed in CALIBRATION_SEEDS)


def counted(seeds: range, pulled: list[int]) -> Iterator[np.ndarray]:
    """The images of ``seeds``, one at a time, noting each seed in ``pulled`` as it is read."""
    for seed in seeds:
        pulled.append(seed)
        yield image(seed)


@pytest.fixture(scope="module")
def fp32_graph() -> onnx.ModelProto:
    from dsrir.model import DSRIR, PRESETS

    torch.manual_seed(0)
    model = DSRIR(PRESETS["dsrir-xs"]).eval()
    return build_onnx(model, "dsrir-xs", "unknown", ExportOptions(simplify=False, check_size=None)).model


@pytest.fixture(scope="module")
def quantized_sites(fp32_graph: onnx.ModelProto) -> list[ConvSite]:
    return [site for module, site in conv_sites(fp32_graph).items() if is_quantized_module(module)]


@pytest.fixture(scope="module")
def ranges(fp32_graph: onnx.ModelProto, quantized_sites: list[ConvSite]) -> Ranges:
    """amax of every quantised conv input over the calibration images, from the FP32 graph itself."""
    tensors = sorted({site.input for site in quantized_sites})
    probe = onnx.ModelProto()
    probe.CopyFrom(fp32_graph)
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in tensors)
    session = cpu_session(probe, threads=2)
    amax = dict.fromkeys(tensors, 0.0)
    for frame in calibration_frames():
        for tensor, value in zip(tensors, session.run(tensors, {"input": frame})):
            amax[tensor] = max(amax[tensor], float(np.abs(value).max()))
    return Ranges(calibrator="max", activations=amax)


@pytest.fixture(scope="module")
def qdq_graph(fp32_graph: onnx.ModelProto, ranges: Ranges) -> onnx.ModelProto:
    return insert_qdq(fp32_graph, ranges)


def held_out_batch() -> np.ndarray:
    return np.concatenate([image(seed) for seed in HELD_OUT_SEEDS])


def output_error(graph: onnx.ModelProto, reference: onnx.ModelProto) -> float:
    """Largest |graph - reference| over a batch of held-out images."""
    frame = held_out_batch()
    got = cpu_session(graph, threads=2).run(None, {"input": frame})[0]
    want = cpu_session(reference, threads=2).run(None, {"input": frame})[0]
    return float(np.abs(got - want).max())


def test_qdq_pairs_sit_on_every_quantised_conv_input_and_weight_only(
    qdq_graph: onnx.ModelProto, quantized_sites: list[ConvSite], ranges: Ranges
) -> None:
    onnx.checker.check_model(qdq_graph, full_check=True)
    ops = Counter(node.op_type for node in qdq_graph.graph.node)
    inputs, weights = {site.input for site in quantized_sites}, {site.weight for site in quantized_sites}
    assert len(inputs) < len(quantized_sites)  # some tensors feed several convs: one shared pair each
    assert ops["QuantizeLinear"] == ops["DequantizeLinear"] == len(inputs) + len(weights)
    producers = {out: node for node in qdq_graph.graph.node for out in node.output}
    initializers = {init.name: onnx.numpy_helper.to_array(init) for init in qdq_graph.graph.initializer}
    convs = {node.name: node for node in qdq_graph.graph.node if node.op_type == "Conv"}
    for site in quantized_sites:
        conv = convs[site.node]
        data, weight = producers[conv.input[0]], producers[conv.input[1]]
        assert data.op_type == weight.op_type == "DequantizeLinear"
        quantize = producers[data.input[0]]
        assert quantize.op_type == "QuantizeLinear" and quantize.input[0] == site.input
        assert initializers[quantize.input[1]] == np.float32(ranges.scale(site.input))
        assert initializers[quantize.input[2]].dtype == np.int8 and not initializers[quantize.input[2]].any()
        scales = initializers[producers[weight.input[0]].input[1]]
        assert scales.shape == (initializers[site.weight].shape[0],)  # per output channel
        assert {a.name: a.i for a in weight.attribute}["axis"] == 0
    floats = [module for module, site in conv_sites(qdq_graph).items() if not is_quantized_module(module)]
    assert "ebd" in floats  # the image embedding and the PatchAttention MLP stay floating point, nothing else
    assert all(".PA.conv_du." in module for module in floats if module != "ebd")
    readers = [producers.get(conv_sites(qdq_graph)[module].input) for module in floats]  # ebd reads the graph input
    assert not any(node is not None and node.op_type == "DequantizeLinear" for node in readers)


def test_qdq_graph_is_close_to_fp32_and_a_wrong_scale_is_not(
    qdq_graph: onnx.ModelProto, fp32_graph: onnx.ModelProto, ranges: Ranges
) -> None:
    error = output_error(qdq_graph, fp32_graph)
    assert 0 < error <= QDQ_TOLERANCE
    unscaled = dataclasses.replace(ranges, activations={t: a * 127 for t, a in ranges.activations.items()})
    assert output_error(insert_qdq(fp32_graph, unscaled), fp32_graph) > 5 * QDQ_TOLERANCE  # scale = amax (0.78 here)


def test_fp16_qdq_graph_is_fp16_everywhere_but_io_and_as_close_to_fp32(
    qdq_graph: onnx.ModelProto, fp32_graph: onnx.ModelProto, ranges: Ranges
) -> None:
    """For strongly typed TensorRT 10/11: a DequantizeLinear outputs its scale's type and every other layer runs in
    the graph's type, so scales and all non-INT8 tensors must be FP16 (only I/O float32)."""
    graph = insert_qdq(fp32_graph, ranges, high_precision="fp16")
    assert {o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")} == {19}
    inferred = onnx.shape_inference.infer_shapes(graph, strict_mode=True)
    io = {v.name for v in (*graph.graph.input, *graph.graph.output)}
    float_types = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE}
    for value in (*inferred.graph.value_info, *graph.graph.input, *graph.graph.output):
        elem = value.type.tensor_type.elem_type
        if elem in float_types:
            assert elem == (onnx.TensorProto.FLOAT if value.name in io else onnx.TensorProto.FLOAT16), value.name
    initializers = {init.name: init for init in graph.graph.initializer}
    for node in graph.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and node.input[1] in initializers:
            assert initializers[node.input[1]].data_type == onnx.TensorProto.FLOAT16, node.name
    resize_scales = {node.input[2] for node in graph.graph.node if node.op_type == "Resize" and len(node.input) > 2}
    float32 = {i.name for i in graph.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    assert float32 <= resize_scales  # ONNX fixes Resize scales to float32; nothing else stays float32
    int8_convs = [n for n in graph.graph.node if n.op_type == "Conv" and "dequantized" in n.input[0]]
    fp32_int8_convs = [n for n in qdq_graph.graph.node if n.op_type == "Conv" and "dequantized" in n.input[0]]
    assert len(int8_convs) == len(fp32_int8_convs) > 0
    assert placement(graph) == placement(qdq_graph)
    assert output_error(graph, fp32_graph) <= QDQ_TOLERANCE
    with pytest.raises(DSRIRError, match="high precision 'bf16'"):
        insert_qdq(fp32_graph, ranges, high_precision="bf16")


def test_engine_builder_classifies_the_qdq_graph_as_explicit_int8(qdq_graph: onnx.ModelProto, tmp_path: Path) -> None:
    path = tmp_path / "dsrir.int8.onnx"
    onnx.save(qdq_graph, str(path))
    info = inspect_onnx(path)
    assert info.kind == "qdq" and info.metadata.precision == "int8-qdq"
    assert info.metadata.preset == "dsrir-xs"


def test_qdq_refuses_plugin_fp16_and_uncalibrated_graphs(fp32_graph: onnx.ModelProto, ranges: Ranges) -> None:
    for field, value, message in (
        ("patch_attention", "plugin", "plugin, not decomposed"),
        ("precision", "fp16", "fp16"),
    ):
        graph = onnx.ModelProto()
        graph.CopyFrom(fp32_graph)
        write_metadata(graph, dataclasses.replace(read_metadata(graph), **{field: value}))
        with pytest.raises(DSRIRError, match=message):
            insert_qdq(graph, ranges)
    partial = dataclasses.replace(ranges, activations={"input": 1.0})
    with pytest.raises(DSRIRError, match="no amax"):
        insert_qdq(fp32_graph, partial)


@pytest.fixture(scope="module")
def cpu_graphs(fp32_graph: onnx.ModelProto, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """The CPU INT8 graph with 7-bit (the default) and 8-bit weights, from an export with its weights beside it."""
    folder = tmp_path_factory.mktemp("cpu_int8")
    source = folder / "fp32.onnx"  # weights beside the graph, as the dynamo exporter saves them
    copy = onnx.ModelProto()
    copy.CopyFrom(fp32_graph)  # saving with external data rewrites the message it is given
    onnx.save(copy, str(source), save_as_external_data=True, location="fp32.onnx.data", size_threshold=0)
    pulled: list[int] = []
    default = quantize_for_cpu(source, counted(CALIBRATION_SEEDS, pulled), folder / "cpu.int8.onnx")
    assert pulled == list(CALIBRATION_SEEDS)  # every frame, read through the iterator
    full = quantize_for_cpu(source, calibration_frames(), folder / "cpu.int8.w8.onnx", weight_bits=8)
    assert not list(folder.glob("cpu.int8*.data")) and not list(folder.glob(".*tmp"))
    return {7: default, 8: full}


def run_ort(graph: onnx.ModelProto, frame: np.ndarray, optimized: bool = True) -> np.ndarray:
    """ORT's CPU output; unoptimized, every Q/DQ pair runs as float arithmetic (no integer kernel can saturate)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    if not optimized:
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"input": frame})[0])


def test_cpu_uint8_graph_quantises_the_right_convs_with_7_bit_weights(
    fp32_graph: onnx.ModelProto, cpu_graphs: dict[int, Path]
) -> None:
    graph = onnx.load(str(cpu_graphs[7]))
    metadata = read_metadata(graph)
    assert metadata == dataclasses.replace(read_metadata(fp32_graph), precision="int8-cpu")
    initializers = {init.name: init for init in graph.graph.initializer}
    quantize = [node for node in graph.graph.node if node.op_type == "QuantizeLinear"]
    assert len(quantize) > 100
    assert all(initializers[node.input[2]].data_type == onnx.TensorProto.UINT8 for node in quantize)
    producers = {out: node for node in graph.graph.node for out in node.output}
    nodes = {node.name: node for node in graph.graph.node}
    quantized_tensors = {node.input[0] for node in quantize}
    for module, site in conv_sites(fp32_graph).items():  # ORT keeps the node names
        reads = [producers.get(name) for name in nodes[site.node].input[:2]]
        dequantized = all(node is not None and node.op_type == "DequantizeLinear" for node in reads)
        assert dequantized == is_quantized_module(module), module
        if not is_quantized_module(module):  # the MLP's ReLU and sigmoid read float convolution outputs
            assert nodes[site.node].output[0] not in quantized_tensors, module
    assert largest_weight_code(graph) == REDUCED_RANGE  # 7-bit: 2 x 255 x 64 fits an int16 sum
    assert largest_weight_code(onnx.load(str(cpu_graphs[8]))) == INT8_MAX
    assert weight_bits_of(cpu_graphs[7]) == 7 and weight_bits_of(cpu_graphs[8]) == 8


def test_default_cpu_graph_is_close_to_fp32_in_plain_onnx_runtime_on_any_cpu(
    fp32_graph: onnx.ModelProto, cpu_graphs: dict[int, Path]
) -> None:
    """Plain ORT, no fitting: the default file is right wherever it runs (it was 0.070 on AVX2 with 8-bit weights)."""
    assert output_error(onnx.load(str(cpu_graphs[7])), fp32_graph) <= CPU_TOLERANCE


@pytest.mark.parametrize("cpu", [SATURATING, NON_SATURATING], ids=["avx2", "vnni"])
def test_runtime_fits_8_bit_weights_to_the_cpu_and_says_so(
    fp32_graph: onnx.ModelProto, cpu_graphs: dict[int, Path], cpu: CpuFeatures
) -> None:
    """Each branch of the CPU choice, checked against what that CPU's kernels compute: float arithmetic (as
    ORT runs Q/DQ unoptimized) is what a non-saturating CPU gets; the halved graph must be close to FP32 anywhere."""
    graph = onnx.load(str(cpu_graphs[8]))
    fitted, how = fit_to_cpu(graph, cpu)
    frame, want = held_out_batch(), run_ort(fp32_graph, held_out_batch())
    if cpu.saturates_u8s8:
        assert "7-bit weights, halved at load" in how and largest_weight_code(fitted) == REDUCED_RANGE
        assert float(np.abs(run_ort(fitted, frame) - want).max()) <= CPU_TOLERANCE
    else:
        assert "8-bit weights" in how and fitted is graph
        assert float(np.abs(run_ort(fitted, frame, optimized=False) - want).max()) <= CPU_TOLERANCE


def test_runtime_backend_runs_the_8_bit_graph_close_to_fp32_on_this_cpu(
    fp32_graph: onnx.ModelProto, cpu_graphs: dict[int, Path]
) -> None:
    """Through the runtime's own backend with this machine's real CPU features (on AVX2-only CPUs the 8-bit
    graph alone is 0.070 off: this fails without the fitting)."""
    from runtime.backends.onnxruntime_backend import OrtBackend

    backend = OrtBackend(cpu_graphs[8], threads=2)
    frame = held_out_batch()
    error = float(np.abs(backend.infer(frame) - run_ort(fp32_graph, frame)).max())
    assert error <= CPU_TOLERANCE
    assert "-bit weights" in backend.description and read_cpu_features().describe() in backend.description


def test_cpu_quantisation_rejects_bad_frames_and_methods(fp32_graph: onnx.ModelProto, tmp_path: Path) -> None:
    source = tmp_path / "fp32.onnx"
    onnx.save(fp32_graph, str(source))
    with pytest.raises(DSRIRError, match="calibration method"):
        quantize_for_cpu(source, calibration_frames(), tmp_path / "out.onnx", method="kl")
    with pytest.raises(DSRIRError, match="frame 1 is uint8"):
        quantize_for_cpu(source, iter([np.zeros((1, 3, SIZE, SIZE), np.uint8)]), tmp_path / "out.onnx")
    with pytest.raises(DSRIRError, match="no calibration frames"):
        quantize_for_cpu(source, iter([]), tmp_path / "out.onnx")
    with pytest.raises(DSRIRError, match="weight bits 6"):
        quantize_for_cpu(source, calibration_frames(), tmp_path / "out.onnx", weight_bits=6)
    assert not (tmp_path / "out.onnx").exists()
