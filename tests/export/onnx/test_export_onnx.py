"""``python -m export.onnx``: every flavour against PyTorch on ONNX Runtime (CPU), at three sizes, one export each.

The model is dsrir-xs trained for a few dozen steps to denoise (fixed seeds): with its random initialisation
the network adds almost nothing to its input (the output is the image plus a small correction), so an FP16
graph would look as good as FP32 whatever it did inside. After the short training it gains several dB over
the noisy input, so the FP16 comparison measures the network's own arithmetic.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from dsrir.checkpoint import official_checkpoint, read_weights, save_pth
from dsrir.errors import DSRIRError
from dsrir.graph.checks import check_graph
from dsrir.graph.fp16 import convert_to_fp16
from dsrir.graph.metadata import ExportMetadata, read_metadata
from dsrir.graph.ops import PLUGIN_DOMAIN, plugin_nodes
from dsrir.graph.session import cpu_session
from dsrir.model import DSRIR
from dsrir.ops.patch_attention import PatchAttention
from dsrir.trt.import_rules import TARGETS, check_for_target, summary
from export.onnx import parity as onnx_parity
from export.onnx.build import ExportFailure, ExportOptions, build_onnx, checkpoint_mode, default_output, target_opset
from export.onnx.build import main as export_main
from export.onnx.uint8_io import wrap_uint8_io
from tests.conftest import briefly_trained_denoiser, natural_like_image

pytest.importorskip("onnxscript", reason="the dynamo ONNX exporter needs onnxscript")
pytest.importorskip("onnxruntime_extensions", reason="plugin graphs run on CPU through onnxruntime-extensions")

PRESET = "dsrir-xs"
SIZES = [(1, 3, 64, 96), (2, 3, 120, 160), (1, 3, 61, 97)]  # the last one through the Restorer's padding
MULTIPLE = 8
TRAIN_STEPS = 40


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def noisy_pair(height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A clean natural-like image and its noisy version (sigma 25), both (1, 3, H, W) float32 in [0, 1]."""
    clean = natural_like_image(height, width, seed=seed).astype(np.float32).transpose(2, 0, 1)[None] / 255
    noise = np.random.default_rng(seed).standard_normal(clean.shape).astype(np.float32) * 25 / 255
    return clean, np.clip(clean + noise, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def model() -> DSRIR:
    return briefly_trained_denoiser(TRAIN_STEPS)


@pytest.fixture(scope="module")
def checkpoint(model: DSRIR, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "model_best.pth"
    save_pth(path, official_checkpoint(model, PRESET, epoch=1, mode="all_in_one"))
    return path


@pytest.fixture(scope="module")
def decomposed(checkpoint: Path) -> Path:
    """Exported through the CLI with its defaults (decomposed, fp32, float I/O, simplified, parity-checked)."""
    assert export_main(["--checkpoint", str(checkpoint)]) == 0
    return default_output(checkpoint, ExportOptions())


@pytest.fixture(scope="module")
def plugin(checkpoint: Path) -> Path:
    output = checkpoint.parent / "plugin.onnx"
    assert export_main(["--checkpoint", str(checkpoint), "--patch-attention", "plugin", "--output", str(output)]) == 0
    return output


@pytest.fixture(scope="module")
def for_trt86(checkpoint: Path) -> Path:
    """The decomposed FP32 export for TensorRT 8.6 (JetPack 6.0; 8.5 alike): opset 17 and the 8.x rewrites."""
    output = checkpoint.parent / "trt86.onnx"
    assert export_main(["--checkpoint", str(checkpoint), "--target-trt", "8.6", "--output", str(output)]) == 0
    return output


def float_graph_matches_torch(graph: onnx.ModelProto, model: DSRIR, tolerance: float) -> list[float]:
    sess = cpu_session(graph)
    errors = []
    for i, shape in enumerate(SIZES):
        image = np.random.default_rng(i).random(shape, dtype=np.float32)
        got = onnx_parity.run_float(sess, image, MULTIPLE)
        want = onnx_parity.torch_restore(model, image, MULTIPLE)
        assert got.shape == shape
        errors.append(float(np.abs(got - want).max()))
    assert max(errors) <= tolerance, errors
    return errors


def test_decomposed_fp32_matches_pytorch_at_three_sizes_without_reexport(decomposed: Path, model: DSRIR) -> None:
    graph = onnx.load(str(decomposed))
    assert not decomposed.with_name(decomposed.name + ".data").exists()  # one self-contained file
    assert len(graph.graph.input) == 1 and len(graph.graph.output) == 1
    dims = [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    assert {op.domain: op.version for op in graph.opset_import}[""] >= 17
    assert {p.key: p.value for p in graph.metadata_props}["dsrir.target_trt"] == "10.3"  # the default target
    assert not plugin_nodes(graph)
    float_graph_matches_torch(graph, model, 1e-4)


def test_trt86_export_runs_like_the_opset_18_export_and_imports_into_every_target(
    for_trt86: Path, decomposed: Path, model: DSRIR
) -> None:
    graph, reference = onnx.load(str(for_trt86)), onnx.load(str(decomposed))
    assert {op.domain: op.version for op in graph.opset_import}[""] == 17
    assert {op.domain: op.version for op in reference.opset_import}[""] == 18
    shapes = {n.output[0] for n in graph.graph.node if n.op_type == "Shape"}
    assert len(shapes) == 3 and not [n for n in graph.graph.node if n.op_type == "Shape" and n.attribute]
    assert len([n for n in graph.graph.node if n.op_type == "Slice" and n.input[0] in shapes]) == 3
    means = [n for n in graph.graph.node if n.op_type == "ReduceMean"]
    assert len(means) == 27 and all(len(n.input) == 1 and "axes" in {a.name for a in n.attribute} for n in means)
    assert all(len(n.input) == 2 for n in graph.graph.node if n.op_type == "Squeeze")
    for target in TARGETS:  # 8.5 and 8.6 included; the opset-18 export only passes the 10.x/11.x ones
        assert check_for_target(graph, target) == [], summary(check_for_target(graph, target))
    assert [bool(check_for_target(reference, target)) for target in TARGETS] == [True, True, False, False, False]
    sessions = cpu_session(graph), cpu_session(reference)
    for i, shape in enumerate(SIZES):
        image = np.random.default_rng(10 + i).random(shape, dtype=np.float32)
        got, want = (onnx_parity.run_float(sess, image, MULTIPLE) for sess in sessions)
        assert np.abs(got - want).max() <= 1e-5
    float_graph_matches_torch(graph, model, 1e-4)


def test_the_target_picks_the_opset_and_bounds_an_explicit_one() -> None:
    targets = [None, (8, 5), (8, 6, 2), (10, 3), (11, 1)]
    assert [target_opset(ExportOptions(target_trt=target))[1] for target in targets] == [18, 17, 17, 18, 18]
    assert target_opset(ExportOptions(opset=17))[1] == 17  # still honoured: 10.3 parses opset 17 too
    assert target_opset(ExportOptions(opset=20, target_trt=(10, 3)))[1] == 20
    with pytest.raises(DSRIRError) as info:
        target_opset(ExportOptions(opset=18, target_trt=(8, 6)))
    assert str(info.value) == (
        "--opset 18: TensorRT 8.6's ONNX parser implements opset 17 at most (leave --opset out: --target-trt picks it)"
    )


def test_plugin_graph_has_one_node_per_patch_attention(plugin: Path, decomposed: Path, model: DSRIR) -> None:
    graph = onnx.load(str(plugin))
    check_graph(graph)
    nodes = plugin_nodes(graph)
    modules = {f"model.{name}": m for name, m in model.named_modules() if isinstance(m, PatchAttention)}
    assert len(nodes) == len(modules) == 27
    ops = Counter(node.op_type for node in graph.graph.node)
    decomposed_ops = Counter(node.op_type for node in onnx.load(str(decomposed)).graph.node)
    assert ops["ReduceMean"] == 0 and decomposed_ops["ReduceMean"] == len(modules)
    assert ops["Sigmoid"] == decomposed_ops["Sigmoid"] - len(modules)  # PRU and USAU gates remain
    assert {op.domain for op in graph.opset_import} >= {"", PLUGIN_DOMAIN}
    initializers = {init.name: init for init in graph.graph.initializer}
    for node in nodes:
        module = modules.pop(node.input[1].removesuffix(".conv_du.0.weight"))  # each module once
        assert node.domain == PLUGIN_DOMAIN and len(node.input) == 6
        attributes = {a.name: a for a in node.attribute}
        assert attributes["plugin_version"].type == onnx.AttributeProto.STRING
        assert attributes["plugin_version"].s == b"1" and attributes["plugin_namespace"].s == b""
        assert attributes["grid_h"].type == attributes["grid_w"].type == onnx.AttributeProto.INT
        assert (attributes["grid_h"].i, attributes["grid_w"].i) == module.grid
        weights = [initializers[name] for name in node.input[1:5]]
        assert all(w.data_type == onnx.TensorProto.FLOAT for w in weights)
        assert tuple(weights[0].dims) == tuple(module.conv_du[0].weight.shape)
        assert [name.rsplit(".", 1)[-1] for name in node.input[1:5]] == ["weight", "bias", "weight", "bias"]


def test_plugin_graph_on_cpu_custom_op_matches_pytorch(plugin: Path, model: DSRIR) -> None:
    float_graph_matches_torch(onnx.load(str(plugin)), model, 1e-4)


def test_fp16_graph_psnr_within_0_05_db_of_fp32(decomposed: Path, model: DSRIR) -> None:
    fp32 = onnx.load(str(decomposed))
    fp16 = convert_to_fp16(fp32)
    check_graph(fp16)
    assert fp16.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert fp16.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    types = Counter(init.data_type for init in fp16.graph.initializer)
    assert types[onnx.TensorProto.FLOAT16] > 100 and types[onnx.TensorProto.FLOAT] <= 1  # Resize scales only
    clean, noisy = noisy_pair(128, 160, seed=100)
    out32 = onnx_parity.run_float(cpu_session(fp32), noisy, MULTIPLE)
    out16 = onnx_parity.run_float(cpu_session(fp16), noisy, MULTIPLE)
    psnr32, psnr16 = psnr(np.clip(out32, 0, 1), clean), psnr(np.clip(out16, 0, 1), clean)
    assert psnr32 > psnr(noisy, clean) + 3  # the network does real work, so the comparison means something
    assert abs(psnr16 - psnr32) <= 0.05, (psnr32, psnr16)
    float_graph_matches_torch(fp16, model, 2e-2)  # dynamic shapes survive the conversion


def test_uint8_graph_matches_float_graph_within_one_level(decomposed: Path, model: DSRIR) -> None:
    float_graph = onnx.load(str(decomposed))
    frames_graph = wrap_uint8_io(float_graph)
    check_graph(frames_graph)
    assert frames_graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = [d.dim_param or d.dim_value for d in frames_graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "height", "width", 3]
    float_sess, frames_sess = cpu_session(float_graph), cpu_session(frames_graph)
    worst = 0
    for i, (n, _, h, w) in enumerate(SIZES):
        rgb = np.stack([natural_like_image(h, w, seed=50 + i + k) for k in range(n)])
        noisy = np.clip(rgb + np.random.default_rng(i).normal(0, 20, rgb.shape), 0, 255).astype(np.uint8)
        frames = np.ascontiguousarray(noisy[..., ::-1])  # BGR, as OpenCV delivers them
        got = onnx_parity.run_frames(frames_sess, frames, MULTIPLE)
        assert got.dtype == np.uint8 and got.shape == frames.shape
        restored = onnx_parity.run_float(float_sess, noisy.transpose(0, 3, 1, 2).astype(np.float32) / 255, MULTIPLE)
        want = np.rint(np.clip(restored, 0, 1) * 255).transpose(0, 2, 3, 1)[..., ::-1]
        worst = max(worst, int(np.abs(got.astype(np.int32) - want.astype(np.int32)).max()))
    assert worst <= 1


def test_pruned_model_plugin_fp16_uint8_in_one_export(model: DSRIR, tmp_path: Path) -> None:
    """Narrower convs and patch-attention layers than any preset (what pruning leaves) in the flavour that
    combines everything: plugin nodes with float32 weights in an FP16 graph with uint8 frame I/O."""
    pruned = prune_like(model)
    options = ExportOptions(patch_attention="plugin", precision="fp16", io="uint8", check_size=(61, 97))
    result = build_onnx(pruned, "custom", "unknown", options)
    assert result.parity is not None and result.parity.max_abs <= 2 / 255
    graph = result.model
    nodes = plugin_nodes(graph)
    assert result.plugin_nodes == len(nodes) == 27
    initializers = {init.name: init for init in graph.graph.initializer}
    for node in nodes:
        assert all(initializers[name].data_type == onnx.TensorProto.FLOAT for name in node.input[1:5])
    plugin_weights = {name for node in nodes for name in node.input[1:5]}
    others = [init for init in graph.graph.initializer if init.name not in plugin_weights]
    fp32 = [init.name for init in others if init.data_type == onnx.TensorProto.FLOAT]
    assert len([name for name in fp32 if not name.startswith("uint8_io/")]) <= 1, fp32  # Resize scales only
    assert sum(init.data_type == onnx.TensorProto.FLOAT16 for init in others) > 50
    assert graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert read_metadata(graph) == result.metadata
    frames = np.random.default_rng(7).integers(0, 256, size=(2, 64, 96, 3), dtype=np.uint8)
    got = onnx_parity.run_frames(cpu_session(graph), frames, MULTIPLE).astype(np.int32)
    want = onnx_parity.frames_reference(pruned, frames, MULTIPLE).astype(np.int32)
    assert np.abs(got - want).max() <= 2
    # One plugin-to-CPU path: the runtime's backend opens this graph as the parity check runs it (before, the
    # backend refused FP16 plugin graphs: INVALID_GRAPH, float16 into the float32 custom op).
    from runtime.backends.onnxruntime_backend import OrtBackend

    path = tmp_path / "plugin.fp16.uint8.onnx"
    onnx.save(graph, str(path))
    reference = cpu_session(graph).run(None, {graph.graph.input[0].name: frames[:1]})[0]
    np.testing.assert_array_equal(OrtBackend(path, threads=2).infer(frames[:1]), reference)


def prune_like(model: DSRIR) -> DSRIR:
    """A copy whose PAB inner convs keep half their channels and whose patch-attention layers keep 2."""
    import copy

    pruned = copy.deepcopy(model)
    for module in pruned.modules():
        if hasattr(module, "conv1") and hasattr(module, "PA"):
            keep = module.conv1.out_channels // 2
            module.conv1 = narrowed(module.conv1, out_keep=keep)
            module.conv2 = narrowed(module.conv2, in_keep=keep)
        if isinstance(module, PatchAttention):
            module.conv_du[0] = narrowed(module.conv_du[0], out_keep=2)
            module.conv_du[2] = narrowed(module.conv_du[2], in_keep=2)
    return pruned.eval()


def narrowed(conv: torch.nn.Conv2d, out_keep: int | None = None, in_keep: int | None = None) -> torch.nn.Conv2d:
    out_c, in_c = out_keep or conv.out_channels, in_keep or conv.in_channels
    new = torch.nn.Conv2d(in_c, out_c, conv.kernel_size, padding=conv.padding, bias=conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(conv.weight[:out_c, :in_c])
        if conv.bias is not None and new.bias is not None:
            new.bias.copy_(conv.bias[:out_c])
    return new


def test_metadata_round_trips(decomposed: Path, plugin: Path) -> None:
    for path, flavour in ((decomposed, "decomposed"), (plugin, "plugin")):
        assert read_metadata(onnx.load(str(path))) == ExportMetadata(
            preset=PRESET,
            mode="all_in_one",
            patch_attention=flavour,
            precision="fp32",
            io="float",
            size_multiple=8,
            input_range="0-1",
            toolkit_version=__import__("dsrir").__version__,
        )


def test_mode_is_unknown_when_the_checkpoint_records_none(model: DSRIR, tmp_path: Path) -> None:
    path = tmp_path / "plain.pth"
    save_pth(path, {"epoch": 0, "state_dict": model.state_dict(), "optimizer": {}})
    weights = read_weights(path)
    assert weights.preset == PRESET and checkpoint_mode(weights) == "unknown"


def test_default_output_names_the_flavour(tmp_path: Path) -> None:
    ckpt = tmp_path / "model_best.pth"
    assert default_output(ckpt, ExportOptions()).name == "model_best.decomposed.fp32.onnx"
    options = ExportOptions(patch_attention="plugin", precision="fp16", io="uint8")
    assert default_output(ckpt, options).name == "model_best.plugin.fp16.uint8.onnx"


def test_missing_checkpoint_is_one_error_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert export_main(["--checkpoint", str(tmp_path / "missing.pth")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "missing.pth" in err[0]
    assert not list(tmp_path.glob("*.onnx"))


def test_failed_check_is_one_line_exit_1_and_writes_nothing(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(*args: object) -> None:
        raise ExportFailure("parity check failed: max abs error 1.00e+00 at 1x3x64x96 exceeds 1.0e-04")

    monkeypatch.setattr("export.onnx.build.build_onnx", failing)
    output = tmp_path / "never.onnx"
    assert export_main(["--checkpoint", str(checkpoint), "--output", str(output)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: parity check failed")
    assert not output.exists()


@pytest.mark.parametrize(
    "flag",
    [
        ["--opset", "16"],
        ["--check-size", "64"],
        ["--precision", "int8"],
        ["--target-trt", "8.4"],
        ["--target-trt", "x"],
    ],
)
def test_bad_flags_exit_2(flag: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        export_main(["--checkpoint", "x.pth", *flag])
    assert caught.value.code == 2
    assert flag[0] in capsys.readouterr().err
