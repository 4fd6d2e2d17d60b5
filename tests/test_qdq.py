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

from calibration.ort_int8 import quantize_for_cpu
from calibration.qdq import insert_qdq
from calibration.ranges import ConvSite, Ranges, conv_sites, is_quantized_module
from dsrir.errors import DSRIRError
from export import onnx_parity
from export.engine_graph import inspect_onnx
from export.metadata import read_metadata, write_metadata
from export.onnx import ExportOptions, build_onnx
from tests.conftest import natural_like_image

pytest.importorskip("onnxscript", reason="the dynamo ONNX exporter needs onnxscript")

SIZE = 32
CALIBRATION_SEEDS = range(16)
HELD_OUT_SEEDS = (100, 101, 102)
# Largest |INT8 - FP32| output differences accepted, about 3x what was measured here (Q/DQ 0.009, CPU uint8 0.014).
QDQ_TOLERANCE = 0.03
CPU_TOLERANCE = 0.04


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
    session = onnx_parity.session(probe, threads=2)
    amax = dict.fromkeys(tensors, 0.0)
    for frame in calibration_frames():
        for tensor, value in zip(tensors, session.run(tensors, {"input": frame})):
            amax[tensor] = max(amax[tensor], float(np.abs(value).max()))
    return Ranges(calibrator="max", activations=amax)


@pytest.fixture(scope="module")
def qdq_graph(fp32_graph: onnx.ModelProto, ranges: Ranges) -> onnx.ModelProto:
    return insert_qdq(fp32_graph, ranges)


def output_error(graph: onnx.ModelProto, reference: onnx.ModelProto) -> float:
    """Largest |graph - reference| over a batch of held-out images."""
    frame = np.concatenate([image(seed) for seed in HELD_OUT_SEEDS])
    got = onnx_parity.session(graph, threads=2).run(None, {"input": frame})[0]
    want = onnx_parity.session(reference, threads=2).run(None, {"input": frame})[0]
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
    for module, site in conv_sites(qdq_graph).items():  # the PatchAttention MLP stays floating point
        if not is_quantized_module(module):
            assert ".PA.conv_du." in module
            assert producers[site.input].op_type != "DequantizeLinear"


def test_qdq_graph_is_close_to_fp32_and_a_wrong_scale_is_not(
    qdq_graph: onnx.ModelProto, fp32_graph: onnx.ModelProto, ranges: Ranges
) -> None:
    error = output_error(qdq_graph, fp32_graph)
    assert 0 < error <= QDQ_TOLERANCE
    unscaled = dataclasses.replace(ranges, activations={t: a * 127 for t, a in ranges.activations.items()})
    assert output_error(insert_qdq(fp32_graph, unscaled), fp32_graph) > 5 * QDQ_TOLERANCE  # scale = amax (0.78 here)


def test_engine_builder_classifies_the_qdq_graph_as_explicit_int8(qdq_graph: onnx.ModelProto, tmp_path: Path) -> None:
    path = tmp_path / "dsrir.int8.onnx"
    onnx.save(qdq_graph, str(path))
    info = inspect_onnx(path)
    assert info.kind == "qdq" and info.metadata.precision == "int8-qdq"
    assert info.metadata.preset == "dsrir-xs"


def test_qdq_refuses_plugin_fp16_and_uncalibrated_graphs(fp32_graph: onnx.ModelProto, ranges: Ranges) -> None:
    for field, value, message in (("patch_attention", "plugin", "plugin flavour"), ("precision", "fp16", "fp16")):
        graph = onnx.ModelProto()
        graph.CopyFrom(fp32_graph)
        write_metadata(graph, dataclasses.replace(read_metadata(graph), **{field: value}))
        with pytest.raises(DSRIRError, match=message):
            insert_qdq(graph, ranges)
    partial = dataclasses.replace(ranges, activations={"input": 1.0})
    with pytest.raises(DSRIRError, match="no amax"):
        insert_qdq(fp32_graph, partial)


def test_cpu_uint8_graph_from_external_weights_runs_close_to_fp32(fp32_graph: onnx.ModelProto, tmp_path: Path) -> None:
    source = tmp_path / "fp32.onnx"  # weights beside the graph, as the dynamo exporter saves them
    copy = onnx.ModelProto()
    copy.CopyFrom(fp32_graph)  # saving with external data rewrites the message it is given
    onnx.save(copy, str(source), save_as_external_data=True, location="fp32.onnx.data", size_threshold=0)
    pulled: list[int] = []
    output = quantize_for_cpu(source, counted(CALIBRATION_SEEDS, pulled), tmp_path / "cpu.int8.onnx")
    assert pulled == list(CALIBRATION_SEEDS)  # every frame, read through the iterator
    graph = onnx.load(str(output))
    assert not list(tmp_path.glob("cpu.int8.onnx*.data")) and not list(tmp_path.glob(".*tmp"))
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
    assert output_error(graph, fp32_graph) <= CPU_TOLERANCE


def test_cpu_quantisation_rejects_bad_frames_and_methods(fp32_graph: onnx.ModelProto, tmp_path: Path) -> None:
    source = tmp_path / "fp32.onnx"
    onnx.save(fp32_graph, str(source))
    with pytest.raises(DSRIRError, match="calibration method"):
        quantize_for_cpu(source, calibration_frames(), tmp_path / "out.onnx", method="kl")
    with pytest.raises(DSRIRError, match="frame 1 is uint8"):
        quantize_for_cpu(source, iter([np.zeros((1, 3, SIZE, SIZE), np.uint8)]), tmp_path / "out.onnx")
    with pytest.raises(DSRIRError, match="no calibration frames"):
        quantize_for_cpu(source, iter([]), tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()
