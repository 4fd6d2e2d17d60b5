"""QAT: fake quantisers that round as ONNX Q/DQ does, STE/LSQ gradients, a loss that falls through them, and the
CLI's Q/DQ graph matching the fake-quantised PyTorch model in ONNX Runtime."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from calibration.qdq import insert_qdq, placement
from calibration.ranges import ConvSite, Ranges, conv_sites, is_quantized_module
from dsrir.checkpoint import load_model, official_checkpoint, save_pth
from dsrir.losses import DistillationL1Loss, DSRIRLoss
from dsrir.model import DSRIR, PRESETS
from tests.conftest import natural_like_image
from train.qat import tuning
from train.qat.cli import main
from train.qat.fake_quant import (
    ActivationRange,
    FakeQuantConv2d,
    fake_quantize,
    learned_ranges,
    quantize_model,
    strip_fake_quant,
)
from train.qat.outputs import check_qdq
from train.qat.tuning import build_optimizer, qat_step

# |Q/DQ graph in ONNX Runtime - fake-quant PyTorch| on the final 48x64 image, [0, 1] units. Every quantiser matches
# bit for bit, but the float32 sums of the convolutions differ by about 1e-7, which now and then lands on a rounding
# boundary (first at 1 of 36,864 values) and the flipped INT8 step propagates. Measured: max 6.2e-3 to 6.4e-3,
# mean 1.3e-3; FP32 vs fake-quant differ by about as much (max 7.8e-3, mean 1.6e-3, random weights).
QDQ_MAX_TOLERANCE = 3e-2
QDQ_MEAN_TOLERANCE = 5e-3


@dataclass
class Exported:
    """A random dsrir-xs, an FP32 ONNX export of it and ranges calibrated on that graph, as files the CLI reads."""

    model: DSRIR
    checkpoint: Path
    onnx_path: Path
    graph: onnx.ModelProto
    sites: dict[str, ConvSite]
    ranges: Ranges
    ranges_path: Path


def images(count: int, size: int, seed: int = 0) -> torch.Tensor:
    clean = np.stack([natural_like_image(size, size, seed + i) for i in range(count)]).astype(np.float32) / 255
    return torch.from_numpy(clean).permute(0, 3, 1, 2)


def calibrate(model: DSRIR, sites: dict[str, ConvSite], batch: torch.Tensor) -> Ranges:
    """Max |input| of every conv on ``batch``, keyed by the graph's tensor names (a stand-in for calibration)."""
    amax: dict[str, float] = {}

    def record(tensor: str) -> Callable[[nn.Module, tuple[torch.Tensor]], None]:
        def hook(_module: nn.Module, args: tuple[torch.Tensor]) -> None:
            amax[tensor] = max(amax.get(tensor, 0.0), float(args[0].abs().max()))

        return hook

    handles = [model.get_submodule(s.module).register_forward_pre_hook(record(s.input)) for s in sites.values()]
    with torch.no_grad():
        model.restore(batch)
    for handle in handles:
        handle.remove()
    return Ranges("max", amax, settings={"images": len(batch)})


def torchscript_export(model: DSRIR, path: Path) -> onnx.ModelProto:
    """The TorchScript exporter's graph of ``model``: about 1 s instead of 15 s for export.onnx's dynamo exporter,
    with the same Convs and weight names but other tensor names (``/Split_output_0``, not
    ``split_with_sizes_split_0``), so the CLI must carry the ranges to its own export through module paths."""
    from dsrir.model.restore_only import RestoreOnly

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            RestoreOnly(model), (images(1, 32),), path, dynamo=False, input_names=["input"], output_names=["output"]
        )
    return onnx.load(str(path))


def graph_tensors(graph: onnx.ModelProto) -> set[str]:
    return {name for node in graph.graph.node for name in node.output} | {i.name for i in graph.graph.input}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread for 32x32 tensors: a second adds only synchronisation, and on a busy 2-core machine every
    OpenMP barrier waits for a descheduled peer (8 QAT steps: 1 s of CPU on one thread, over 25 s on two)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    folder = tmp_path_factory.mktemp("qat_inputs")
    torch.manual_seed(0)
    model = DSRIR(PRESETS["dsrir-xs"]).eval()
    paths = folder / "model.pth", folder / "model.onnx", folder / "ranges.json"
    graph = torchscript_export(model, paths[1])
    sites = conv_sites(graph)
    ranges = calibrate(model, sites, images(2, 32))
    save_pth(paths[0], official_checkpoint(model, "dsrir-xs", 5, mode="all_in_one"))
    ranges.save(paths[2])
    return Exported(model, paths[0], paths[1], graph, sites, ranges, paths[2])


def fresh_copy(exported: Exported) -> DSRIR:
    model = DSRIR(PRESETS["dsrir-xs"])
    model.load_state_dict(exported.model.state_dict())
    return model


def reference_quantize(x: np.ndarray, scale: np.ndarray | np.float32) -> np.ndarray:
    """ONNX QuantizeLinear + DequantizeLinear, zero point 0, written out in numpy."""
    return (np.clip(np.rint(x / scale), -128, 127) * scale).astype(np.float32)


def ort_quantize(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"]),
    ]
    params = [numpy_helper.from_array(np.array(scale), "s"), numpy_helper.from_array(np.array(0, np.int8), "z")]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes, "qdq", [value("x", TensorProto.FLOAT, x.shape)], [value("y", TensorProto.FLOAT, x.shape)], params
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_fake_quantize_equals_onnx_quantize_dequantize_bit_for_bit() -> None:
    scale = torch.tensor(2.7183) / 127
    x = torch.randn(4, 8, 16, 16, generator=torch.Generator().manual_seed(0)) * 3
    x.view(-1)[:300] = (torch.arange(300) - 150 + 0.5) * scale  # exact halves (round to even) and saturation
    got = fake_quantize(x, scale).numpy()
    assert np.array_equal(got, reference_quantize(x.numpy(), scale.numpy()))
    assert np.array_equal(got, ort_quantize(x.numpy(), scale.numpy()))
    assert got.min() == pytest.approx(-128 * float(scale)) and got.max() == pytest.approx(127 * float(scale))


def test_fake_quant_conv_is_quantised_input_and_per_channel_weights() -> None:
    torch.manual_seed(1)
    conv = nn.Conv2d(5, 6, 3, padding=1, bias=True)
    quant = FakeQuantConv2d.wrap(conv, ActivationRange(1.5, learnable=True))
    assert quant.weight is conv.weight and quant.bias is conv.bias  # the same Parameters: optimisers see them
    x = torch.randn(2, 5, 12, 12)
    w = conv.weight.detach().numpy()
    w_scale = (np.abs(w).reshape(6, -1).max(axis=1) / np.float32(127)).astype(np.float32)[:, None, None, None]
    x_q = reference_quantize(x.numpy(), np.float32(1.5) / np.float32(127))
    expected = F.conv2d(torch.from_numpy(x_q), torch.from_numpy(reference_quantize(w, w_scale)), conv.bias, padding=1)
    assert torch.equal(quant(x), expected)
    assert torch.equal(quant.unwrap()(x), conv(x))


def test_gradients_pass_straight_through_and_reach_the_scales() -> None:
    x = torch.linspace(-3, 3, 601, requires_grad=True)
    scale = torch.tensor(1.0 / 127, requires_grad=True)  # amax 1: |x| > 1 saturates
    fake_quantize(x, scale).sum().backward()
    inside = (x / scale >= -128) & (x / scale <= 127)
    assert x.grad is not None
    assert torch.equal(x.grad, inside.float())  # STE: 1 inside the range, 0 where QuantizeLinear saturates
    ratio = (x / scale).detach()
    lsq = torch.where(inside, torch.round(ratio) - ratio, ratio.clamp(-128, 127)).sum()
    assert scale.grad == pytest.approx(float(lsq), rel=1e-4)

    torch.manual_seed(2)
    learnable = FakeQuantConv2d.wrap(nn.Conv2d(4, 4, 3, padding=1), ActivationRange(0.5, learnable=True))
    fixed = FakeQuantConv2d.wrap(nn.Conv2d(4, 4, 3, padding=1), ActivationRange(0.5, learnable=False))
    image = torch.randn(1, 4, 8, 8)
    (learnable(image).square().sum() + fixed(image).square().sum()).backward()
    assert learnable.weight.grad is not None and learnable.weight.grad.abs().sum() > 0
    gain = learnable.input_range.log_gain.grad
    assert gain is not None and torch.isfinite(gain) and gain != 0
    assert fixed.weight.grad is not None and fixed.input_range.log_gain.grad is None


def test_quantize_model_ties_shared_tensors_and_learned_ranges_round_trip(exported: Exported) -> None:
    model = quantize_model(fresh_copy(exported), exported.ranges, exported.sites)
    quantized = {name for name, m in model.named_modules() if isinstance(m, FakeQuantConv2d)}
    assert quantized == {p for p in exported.sites if is_quantized_module(p)}
    assert not any(".PA.conv_du." in name for name in quantized)  # the attention MLP stays floating point
    assert "ebd" not in quantized  # the image embedding stays floating point too
    assert model.usau_1.conv_in.input_range is model.usau_2.conv_in.input_range  # both read the graph input
    readers = {s.input for s in exported.sites.values() if s.module in quantized}
    assert len({id(m.input_range) for m in model.modules() if isinstance(m, FakeQuantConv2d)}) == len(readers)

    ranges = learned_ranges(model, exported.sites, exported.ranges)
    assert ranges.calibrator == "qat" and ranges.settings["base_calibrator"] == "max"
    assert ranges.activations == {t: exported.ranges.activations[t] for t in readers}  # exp(0) = 1: bit-exact
    assert set(ranges.activations) <= graph_tensors(exported.graph)
    assert set(ranges.weights) <= {init.name for init in exported.graph.graph.initializer}

    batch = images(1, 32)
    assert not torch.equal(model.restore(batch), exported.model.restore(batch))
    plain = strip_fake_quant(model)
    assert not any(isinstance(m, FakeQuantConv2d) for m in plain.modules())
    assert set(plain.state_dict()) == set(exported.model.state_dict())  # official names, no range entries
    assert torch.equal(plain.restore(batch), exported.model.restore(batch))


def quiet_loss() -> DSRIRLoss:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no VGG19 weights here: the contrastive term is off
        return DSRIRLoss()


def test_qat_steps_reduce_the_loss_on_a_fixed_batch(exported: Exported) -> None:
    model = quantize_model(fresh_copy(exported), exported.ranges, exported.sites).train()
    criterion = quiet_loss()
    optimizer = build_optimizer(model, learning_rate=1e-3, scale_learning_rate=1e-2)
    target = images(2, 32, seed=10)
    degraded = (target + 0.1 * torch.randn(target.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    gains = [m.input_range.log_gain for m in model.modules() if isinstance(m, FakeQuantConv2d)]
    losses = [qat_step(model, criterion, optimizer, degraded, target)["total"] for _ in range(8)]
    assert losses[-1] < losses[0] - 1.0, losses  # -PSNR dominates the total: over 1 dB better
    assert any(float(gain.detach()) != 0 for gain in gains)  # the ranges moved too


def test_distillation_moves_the_quantised_student_towards_its_fp32_teacher(exported: Exported) -> None:
    """QAT's default loss: the FP32 network's own outputs are the target, so the loss is the quantisation error
    itself (zero for the teacher), it falls with steps, and the teacher neither learns nor leaves eval mode."""
    teacher = fresh_copy(exported)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    criterion = DistillationL1Loss(teacher).train()
    degraded = images(2, 32, seed=11)
    unused_target = torch.zeros_like(degraded)
    restored, variances = fresh_copy(exported)(degraded)
    assert criterion(restored, variances, unused_target, degraded)[1]["total"] == 0.0
    model = quantize_model(fresh_copy(exported), exported.ranges, exported.sites).train()
    optimizer = build_optimizer(model, learning_rate=1e-5, scale_learning_rate=1e-3)  # the CLI's defaults
    losses = [qat_step(model, criterion, optimizer, degraded, unused_target)["total"] for _ in range(30)]
    assert losses[0] > 0 and np.mean(losses[-5:]) < 0.92 * losses[0], losses  # measured: 16 % lower
    assert not teacher.training and all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())


def test_sigint_finishes_the_step_then_stops(exported: Exported, monkeypatch: pytest.MonkeyPatch) -> None:
    model = quantize_model(fresh_copy(exported), exported.ranges, exported.sites)
    real_step = tuning.qat_step

    def step_then_interrupt(*args: object) -> dict[str, float]:
        terms = real_step(*args)  # type: ignore[arg-type]
        os.kill(os.getpid(), signal.SIGINT)
        return terms

    monkeypatch.setattr(tuning, "qat_step", step_then_interrupt)
    handler = signal.getsignal(signal.SIGINT)
    batches = [{"degraded": images(1, 32), "target": images(1, 32, seed=5)}] * 3
    optimizer = build_optimizer(model, 1e-5, 1e-3)
    losses, stopped = tuning.fine_tune(model, quiet_loss(), optimizer, batches, torch.device("cpu"), progress=False)
    assert stopped and len(losses) == 1  # then run() saves the checkpoint and exports
    assert signal.getsignal(signal.SIGINT) is handler


def test_cli_fine_tunes_and_writes_a_qdq_graph_matching_the_fake_quant_model(
    tmp_path: Path, exported: Exported, clean_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "qat"
    args = ["--checkpoint", exported.checkpoint, "--ranges", exported.ranges_path, "--onnx", exported.onnx_path]
    args += ["--synthetic", clean_dir, "--steps", 3, "--batch-size", 2, "--patch-size", 32, "--workers", 0]
    args += ["--learning-rate", 1e-3, "--device", "cpu", "--output-dir", out, "--no-progress"]  # --loss distill
    args += ["--target-trt", "8.6"]  # the FP32 flavour, which must round exactly as the fake quantisers
    assert main([str(a) for a in args]) == 0
    printed = capsys.readouterr().out
    assert "Q/DQ vs fake-quant" in printed and "model_qat_qdq.onnx" in printed
    summary = json.loads((out / "qat_summary.json").read_text())
    quantized = sum(is_quantized_module(p) for p in exported.sites)
    assert summary["steps"] == 3 and not summary["stopped_early"]
    assert summary["qdq_operands_bit_exact"] == 2 * quantized

    model, weights = load_model(out / "model_qat.pth")  # official format, strict load
    assert weights.preset == "dsrir-xs" and weights.metadata["epoch"] == 5
    assert any(not torch.equal(v, exported.model.state_dict()[k]) for k, v in model.state_dict().items())
    fp32 = onnx.load(str(out / "model_qat_fp32.onnx"))
    ranges = Ranges.load(out / "ranges_qat.json")
    assert ranges.settings["loss"] == "distill"
    assert ranges.model_sha256 == hashlib.sha256((out / "model_qat_fp32.onnx").read_bytes()).hexdigest()
    assert set(ranges.activations) <= graph_tensors(fp32) and ranges.settings["steps"] == 3
    assert not set(ranges.activations) & set(exported.ranges.activations) - {"input"}  # other exporter, other names
    new_sites = conv_sites(fp32)
    moved = [p for p, s in new_sites.items() if s.input in ranges.activations]
    before = {p: exported.ranges.activations[exported.sites[p].input] for p in moved}
    assert any(ranges.activations[new_sites[p].input] != before[p] for p in moved)  # learnable ranges trained

    qdq = onnx.load(str(out / "model_qat_qdq.onnx"))
    onnx.checker.check_model(qdq, full_check=True)
    assert sum(node.op_type == "QuantizeLinear" for node in qdq.graph.node) > 0
    ptq = insert_qdq(fp32, ranges)  # what python -m calibration writes for that export and those ranges
    assert placement(qdq) == placement(ptq) and len(placement(ptq)) > 0  # interchangeable for export.build_engine
    fake_quant = quantize_model(model, ranges, new_sites).eval()  # the files rebuild the fine-tuned QAT model
    assert check_qdq(qdq, new_sites, fake_quant).operands == 2 * quantized  # every quantiser bit for bit
    image = images(1, 64)[..., :48, :]
    session = ort.InferenceSession(qdq.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: image.numpy()})[0]
    with torch.no_grad():
        want = fake_quant.restore(image).numpy()
    deviation = np.abs(got - want)
    print(f"Q/DQ ONNX Runtime vs fake-quant PyTorch: max {deviation.max():.2e}, mean {deviation.mean():.2e}")
    assert deviation.max() <= QDQ_MAX_TOLERANCE and deviation.mean() <= QDQ_MEAN_TOLERANCE


def test_bad_inputs_give_one_line_errors(
    tmp_path: Path, exported: Exported, clean_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--checkpoint", str(exported.checkpoint), "--synthetic", str(clean_dir), "--device", "cpu"]
    empty = tmp_path / "empty.json"
    Ranges("max", {}).save(empty)
    assert main([*base, "--ranges", str(empty), "--onnx", str(exported.onnx_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the ranges have no amax for tensor") and "\n" not in err
    assert main([*base, "--ranges", str(exported.ranges_path), "--onnx", str(tmp_path / "missing.onnx")]) == 2
    assert "--onnx " in (err := capsys.readouterr().err) and "missing.onnx: no such ONNX file" in err
    args = [*base, "--ranges", str(exported.ranges_path), "--onnx", str(exported.onnx_path), "--steps", "0"]
    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error, before anything is loaded
        main(args)
    assert exit_info.value.code == 2
    assert "argument --steps: '0': expected a whole number >= 1" in capsys.readouterr().err
