"""``python -m train.qat``: quantisation-aware fine-tuning of a trained DSRIR, then its INT8 Q/DQ ONNX graph.

Starts from a checkpoint and the calibration ranges of its FP32 export, and fine-tunes towards the checkpoint's own
FP32 outputs (``--loss distill``, :mod:`dsrir.losses.distill`; or a training loss on the ground truth) while every INT8
convolution sees the rounding of the deployed graph (:mod:`train.fake_quant`), so the weights (and, by default, the
activation ranges) adapt to INT8 instead of merely being measured. Writes, in ``--output-dir``:

* ``model_qat.pth``: the fine-tuned weights in the official format (plus preset, config, mode, QAT steps and the
  learned ranges keyed by the ``--onnx`` graph's tensors), loadable by every other command;
* ``model_qat_fp32.onnx``: their FP32 export (decomposed), and ``ranges_qat.json``, the learned ranges keyed by
  its tensor names (for TensorRT 8.x calibration caches);
* ``model_qat_qdq.onnx``: that graph with Q/DQ nodes (:func:`calibration.qdq.insert_qdq`, the placement of
  ``python -m calibration``'s ``model_qdq.onnx``, so either feeds ``export.build_engine``), for ``--target-trt``:
  FP16 around the INT8 layers for TensorRT 10/11, FP32 for 8.x; its parity with the fake-quant model is checked
  on the FP32 flavour, which rounds exactly as the fake quantisers do;
* ``qat_summary.json``: what the summary table prints.

The fine-tuning runs in float32 (no autocast): the fake quantisers must round exactly as the INT8 graph does.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import signal
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import cast

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from calibration.qdq import high_precision_for, insert_qdq
from calibration.ranges import ConvSite, Ranges, conv_sites, is_quantized_module
from dsrir.atomic import write_text_atomic
from dsrir.checkpoint import LoadedWeights, load_model, official_checkpoint, save_pth
from dsrir.cli import command, non_negative_int, positive_float, positive_int
from dsrir.cli_help import DefaultsHelpFormatter
from dsrir.digest import file_sha256
from dsrir.errors import DSRIRError
from dsrir.graph.save import save_onnx
from dsrir.graph.session import cpu_session
from dsrir.losses import LOSSES, DistillationL1Loss, build_loss
from dsrir.model.arch import DSRIR
from dsrir.modes import DEFAULT_MODE, MODE_TASKS, recorded_mode
from dsrir.onnx_file import load_onnx
from dsrir.trt.version import DEFAULT_TARGET, parse_version
from export.onnx.build import ExportFailure, ExportOptions, build_onnx
from train.config import TrainConfig
from train.data import build_data, train_loader
from train.distributed import resolve_device
from train.fake_quant import FakeQuantConv2d, learned_ranges, quantize_model, strip_fake_quant
from train.sampler import EpochSampler

CHECKPOINT_NAME = "model_qat.pth"
FP32_NAME = "model_qat_fp32.onnx"
QDQ_NAME = "model_qat_qdq.onnx"
RANGES_NAME = "ranges_qat.json"
SUMMARY_NAME = "qat_summary.json"
DISTILL = "distill"  # --loss: L1 to the FP32 checkpoint's outputs (dsrir.losses.distill)
LOSS_WINDOW = 10  # steps averaged for the start and end loss: one batch's loss is too noisy to compare
PARITY_SHAPE = (1, 3, 64, 96)  # a multiple of 8: the graph and the model see the same pixels, no padding


@dataclass(frozen=True)
class QDQParity:
    """The Q/DQ graph in ONNX Runtime against the fake-quantised model on one random input."""

    operands: int  # quantised Conv inputs and weights whose DequantizeLinear equals the fake quantiser, bit for bit
    output_max_abs: float  # final image, [0, 1] units

    def describe(self) -> str:
        size = "x".join(map(str, PARITY_SHAPE))
        return f"{self.operands} Conv operands bit-exact; output max abs {self.output_max_abs:.2e} at {size}"


@dataclass
class QATSummary:
    steps: int
    requested_steps: int
    stopped_early: bool
    loss_start: float
    loss_end: float
    seconds: float
    parity: QDQParity
    files: dict[str, Path]


def build_parser() -> argparse.ArgumentParser:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m train.qat",
        description=(
            "Quantisation-aware fine-tuning: fine-tune a checkpoint (paper or L1 loss) through INT8 fake "
            "quantisation initialised from its calibration ranges, then write the FP32 and Q/DQ ONNX graphs and "
            "the learned ranges."
        ),
        formatter_class=DefaultsHelpFormatter,
    )
    inputs = parser.add_argument_group("inputs")
    inputs.add_argument("--checkpoint", type=Path, required=True, help="trained weights (.pth or .safetensors)")
    inputs.add_argument("--ranges", type=Path, required=True, help="calibration ranges JSON of --onnx")
    inputs.add_argument(
        "--onnx", type=Path, required=True, help="the FP32 export the ranges were calibrated on (its tensor names)"
    )
    inputs.add_argument(
        "--target-trt",
        metavar="VERSION",
        default=DEFAULT_TARGET,
        help="TensorRT release the Q/DQ graph is for: 10+ gets FP16 around the INT8 layers (strongly typed), 8.x FP32",
    )
    data = parser.add_argument_group("data (as python -m train)")
    data.add_argument("--synthetic", type=Path, metavar="CLEAN_DIR", help="clean photos, degraded on the fly")
    data.add_argument("--train-csv", type=Path, help="training pairs; default datasets/train/train_{mode}.csv")
    data.add_argument("--train-dir", type=Path, help="root the training CSV's paths are relative to")
    data.add_argument(
        "--mode", choices=list(MODE_TASKS), help="which degradations; None: the checkpoint's mode, else all_in_one"
    )
    data.add_argument(
        "--val-fraction",
        type=float,
        default=defaults.val_fraction,
        help="share held out as in training (same --seed: the same photos/pairs stay unseen)",
    )
    data.add_argument("--workers", type=non_negative_int, default=defaults.workers, help="data-loading processes")
    tuning = parser.add_argument_group("fine-tuning")
    tuning.add_argument("--steps", type=positive_int, default=2000, help="optimiser steps")
    tuning.add_argument("--batch-size", type=positive_int, default=defaults.batch_size[0], help="patches per step")
    tuning.add_argument("--patch-size", type=positive_int, default=defaults.patch_size[0], help="training patch side")
    tuning.add_argument("--learning-rate", type=positive_float, default=1e-5, help="AdamW learning rate of the weights")
    tuning.add_argument(
        "--scales",
        choices=("learnable", "fixed"),
        default="learnable",
        help="learn the activation ranges (LSQ gradient) or keep the calibrated ones",
    )
    tuning.add_argument(
        "--scale-learning-rate",
        type=positive_float,
        default=1e-3,
        help="Adam learning rate of the ranges' log gains (about the relative change per step)",
    )
    tuning.add_argument(
        "--loss",
        choices=(DISTILL, *LOSSES),
        default=DISTILL,
        help=f"{DISTILL}: L1 to the FP32 checkpoint's own outputs on the same input (recovers the FP32 network; "
        "the weights do not drift per task); paper or l1: the training objective on the ground truth (as python -m "
        "train), which also keeps training the network",
    )
    tuning.add_argument("--vgg19-weights", type=Path, help="VGG19 weights for the contrastive term (as train)")
    tuning.add_argument("--seed", type=int, default=defaults.seed, help="data order and held-out split")
    run = parser.add_argument_group("run")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    run.add_argument(
        "--output-dir", type=Path, help="where the files go; None: CHECKPOINT_STEM_qat beside the checkpoint"
    )
    run.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser


# --------------------------------------------------------------------------------------------- inputs
def check_graph_weights(graph: onnx.ModelProto, sites: dict[str, ConvSite], model: nn.Module, path: Path) -> None:
    """Refuse a graph of another architecture; warn when it holds other weights (its ranges may not fit)."""
    initializers = {init.name: init for init in graph.graph.initializer}
    differs = []
    for site in sites.values():
        try:
            conv = model.get_submodule(site.module)
        except AttributeError:
            raise DSRIRError(f"--onnx {path}: has a Conv for {site.module!r}, which the checkpoint lacks") from None
        ours = conv.weight.detach().cpu().numpy() if isinstance(conv, nn.Conv2d) else None
        theirs = numpy_helper.to_array(initializers[site.weight])
        if ours is None or theirs.shape != ours.shape:
            raise DSRIRError(
                f"--onnx {path}: {site.weight} is {theirs.shape}, the checkpoint's {site.module} does not match: "
                "export --onnx from this checkpoint"
            )
        if not np.allclose(theirs, ours, rtol=1e-5, atol=1e-7):
            differs.append(site.module)
    if differs:
        warnings.warn(
            f"--onnx {path} holds other weights than --checkpoint ({len(differs)} convs, e.g. {differs[0]}): "
            "its ranges may not fit these weights",
            stacklevel=2,
        )


def train_config(args: argparse.Namespace, mode: str) -> TrainConfig:
    """The training pipeline's options for one epoch of ``steps`` batches at one patch size."""
    return TrainConfig(
        mode=mode,
        patch_size=(args.patch_size,),
        batch_size=(args.batch_size,),
        synthetic=args.synthetic,
        train_csv=args.train_csv,
        train_dir=args.train_dir,
        samples_per_epoch=args.steps * args.batch_size,
        val_fraction=args.val_fraction,
        workers=args.workers,
        seed=args.seed,
    )


def build_loader(cfg: TrainConfig, device: torch.device) -> tuple[DataLoader, str]:
    data = build_data(cfg)
    dataset = data.train
    dataset.set_epoch(1)  # type: ignore[attr-defined]
    sampler = EpochSampler(data.samples_per_epoch, cfg.seed, epoch=1, batch_size=cfg.batch_size[0])
    loader = train_loader(dataset, cfg.batch_size[0], sampler, cfg.workers, pin_memory=device.type == "cuda")
    return loader, data.description


# --------------------------------------------------------------------------------------------- fine-tuning
def build_optimizer(model: nn.Module, learning_rate: float, scale_learning_rate: float) -> torch.optim.AdamW:
    """AdamW as in training for the weights; the ranges' log gains get their own rate and no weight decay."""
    gains = [p for name, p in model.named_parameters() if name.endswith("input_range.log_gain") and p.requires_grad]
    gain_ids = {id(p) for p in gains}
    weights = [p for p in model.parameters() if p.requires_grad and id(p) not in gain_ids]
    groups: list[dict] = [{"params": weights, "lr": learning_rate, "weight_decay": TrainConfig.weight_decay}]
    if gains:
        groups.append({"params": gains, "lr": scale_learning_rate, "weight_decay": 0.0})
    return torch.optim.AdamW(groups, betas=(0.9, 0.999))


def qat_step(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    degraded: torch.Tensor,
    target: torch.Tensor,
) -> dict[str, float]:
    """One optimiser step on the training loss through the fake quantisers; returns the loss terms."""
    restored, variances = model(degraded)
    total, terms = criterion(restored, variances, target, degraded)
    if not math.isfinite(terms["total"]):
        raise DSRIRError(f"loss is {terms['total']}: lower --learning-rate or --scale-learning-rate")
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    return terms


class StopRequest:
    """Set by SIGINT/SIGTERM: the loop finishes its step, then the checkpoint and graphs are written."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.requested = True
        tqdm.write(f"received {signal.Signals(signum).name}: finishing this step, then saving and exporting")


def fine_tune(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: Iterable[dict[str, torch.Tensor]],
    device: torch.device,
    progress: bool,
) -> tuple[list[float], bool]:
    """Train through ``loader`` once; returns the total loss of every step and whether a signal cut it short."""
    stop = StopRequest()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    losses: list[float] = []
    model.train()
    try:
        with tqdm(loader, desc="QAT", disable=not progress, dynamic_ncols=True) as bar:
            for batch in bar:
                degraded = batch["degraded"].to(device, non_blocking=True)
                target = batch["target"].to(device, non_blocking=True)
                terms = qat_step(model, criterion, optimizer, degraded, target)
                losses.append(terms["total"])
                bar.set_postfix({name: f"{value:.4g}" for name, value in terms.items()})
                if stop.requested:
                    break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return losses, stop.requested


# --------------------------------------------------------------------------------------------- outputs
def save_checkpoint(path: Path, model: DSRIR, weights: LoadedWeights, mode: str, steps: int, ranges: Ranges) -> None:
    """The official format of the plain network, plus the QAT steps and ranges (keyed by ``--onnx``'s tensors)."""
    plain = strip_fake_quant(copy.deepcopy(model)).cpu()
    epoch = int(weights.metadata.get("epoch", 0))
    checkpoint = official_checkpoint(
        plain, weights.preset, epoch, mode=mode, qat_steps=steps, qat_ranges=dataclasses.asdict(ranges)
    )
    save_pth(path, checkpoint)


def probe_outputs(graph: onnx.ModelProto, names: Sequence[str]) -> onnx.ModelProto:
    """A copy of ``graph`` that also returns the tensors ``names`` (to compare intermediate values)."""
    probed = onnx.ModelProto()
    probed.CopyFrom(graph)
    existing = {out.name for out in probed.graph.output}
    probed.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names if n not in existing)
    return probed


def check_qdq(qdq: onnx.ModelProto, sites: dict[str, ConvSite], model: DSRIR) -> QDQParity:
    """Run the Q/DQ graph and the fake-quantised model on one random input and compare them.

    Every quantised Conv's two DequantizeLinear outputs must equal the fake quantisers applied to the graph's own
    float tensors, bit for bit: the same scales, rounding and saturation, whatever happened upstream. The final
    image is only reported: ONNX Runtime and PyTorch sum convolutions in different orders, the float32 difference
    occasionally lands on a rounding boundary and flips one INT8 step, and such flips propagate downstream.
    """
    convs = {node.name: node for node in qdq.graph.node}
    probes = {s.module: (s.input, *convs[s.node].input[:2]) for s in sites.values() if is_quantized_module(s.module)}
    names = list(dict.fromkeys(name for probe in probes.values() for name in probe))
    output = qdq.graph.output[0].name
    image = np.random.default_rng(0).random(PARITY_SHAPE, dtype=np.float32)
    sess = cpu_session(probe_outputs(qdq, names))
    values = dict(zip([output, *names], sess.run([output, *names], {sess.get_inputs()[0].name: image})))
    with torch.no_grad():
        for module, (raw, dequantized_input, dequantized_weight) in probes.items():
            conv = cast(FakeQuantConv2d, model.get_submodule(module))  # learned_ranges checked it is
            want_input = conv.quantize_input(torch.from_numpy(values[raw])).numpy()
            if not np.array_equal(values[dequantized_input], want_input):
                raise ExportFailure(f"the Q/DQ graph quantises the input of {module} unlike the fake-quantised model")
            if not np.array_equal(values[dequantized_weight], conv.quantized_weight().numpy()):
                raise ExportFailure(f"the Q/DQ graph quantises the weight of {module} unlike the fake-quantised model")
        restored = model.restore(torch.from_numpy(image)).numpy()
    return QDQParity(2 * len(probes), float(np.abs(values[output] - restored).max()))


def export_qat(
    model: DSRIR,
    preset: str,
    mode: str,
    base: Ranges,
    output_dir: Path,
    settings: dict[str, object],
    target: tuple[int, ...] | None = None,
) -> tuple[QDQParity, dict[str, Path]]:
    """FP32 export of the fine-tuned weights, the learned ranges mapped onto it, Q/DQ insertion, parity, writes.

    Tensor names may differ between exports, so the ranges travel through module paths (``learned_ranges`` on
    the new graph's ``conv_sites``), never by the ``--onnx`` graph's tensor names.
    """
    model = model.cpu().eval()
    plain = strip_fake_quant(copy.deepcopy(model))
    fp32 = build_onnx(plain, preset, mode, ExportOptions(target_trt=target)).model  # opset and rewrites of the target
    sites = conv_sites(fp32)
    ranges = learned_ranges(model, sites, base)
    parity = check_qdq(insert_qdq(fp32, ranges), sites, model)  # FP32 flavour: rounds as the fake quantisers
    qdq = insert_qdq(fp32, ranges, high_precision_for(target or parse_version(DEFAULT_TARGET)))
    fp32_path, ranges_path, qdq_path = output_dir / FP32_NAME, output_dir / RANGES_NAME, output_dir / QDQ_NAME
    save_onnx(fp32, fp32_path)
    digest = file_sha256(fp32_path)
    dataclasses.replace(ranges, model_sha256=digest, settings={**ranges.settings, **settings}).save(ranges_path)
    save_onnx(qdq, qdq_path)
    return parity, {"FP32 graph": fp32_path, "ranges": ranges_path, "Q/DQ graph": qdq_path}


def check_args(args: argparse.Namespace) -> None:
    parse_version(args.target_trt, "--target-trt")  # before minutes of fine-tuning, not after


def run(args: argparse.Namespace) -> QATSummary:
    started = time.time()
    check_args(args)
    model, weights = load_model(args.checkpoint)
    base = Ranges.load(args.ranges, "--ranges")
    graph = load_onnx(args.onnx, "--onnx")
    sites = conv_sites(graph)
    check_graph_weights(graph, sites, model, args.onnx)
    mode = args.mode or recorded_mode(weights.metadata) or DEFAULT_MODE
    preset = weights.preset or "custom"
    output_dir = args.output_dir or args.checkpoint.with_name(f"{args.checkpoint.stem}_qat")
    device = resolve_device(args.device)

    teacher = copy.deepcopy(model) if args.loss == DISTILL else None  # the FP32 network, before fake quantisers
    quantize_model(model, base, sites, learnable_scales=args.scales == "learnable").to(device)
    quantized = sum(isinstance(m, FakeQuantConv2d) for m in model.modules())
    loader, description = build_loader(train_config(args, mode), device)
    criterion = (DistillationL1Loss(teacher) if teacher is not None else build_loss(args.loss, args.vgg19_weights)).to(
        device
    )
    optimizer = build_optimizer(model, args.learning_rate, args.scale_learning_rate)
    tqdm.write(
        f"QAT of {preset} ({quantized} INT8 convs, {args.scales} ranges) on {description}; device {device}; "
        f"output in {output_dir}"
    )
    losses, stopped = fine_tune(model, criterion, optimizer, loader, device, args.progress)
    if not losses:
        raise DSRIRError("stopped before the first step: nothing to save")

    checkpoint = output_dir / CHECKPOINT_NAME
    ranges = dataclasses.replace(learned_ranges(model, sites, base), model_sha256=base.model_sha256)
    save_checkpoint(checkpoint, model, weights, mode, len(losses), ranges)
    settings = {"steps": len(losses), "loss": args.loss, "scales": args.scales, "learning_rate": args.learning_rate}
    target = parse_version(args.target_trt, "--target-trt")
    parity, files = export_qat(model, preset, mode, base, output_dir, settings, target)
    window = loss_window(len(losses))
    return QATSummary(
        steps=len(losses),
        requested_steps=args.steps,
        stopped_early=stopped,
        loss_start=float(np.mean(losses[:window])),
        loss_end=float(np.mean(losses[-window:])),
        seconds=time.time() - started,
        parity=parity,
        files={"checkpoint": checkpoint, **files},
    )


def loss_window(steps: int) -> int:
    """Steps averaged for the start and end loss; short runs compare disjoint halves, not the same steps."""
    return max(1, min(LOSS_WINDOW, steps // 2))


def summary_rows(summary: QATSummary) -> list[tuple[str, str]]:
    window = loss_window(summary.steps)
    rows = [
        ("steps", f"{summary.steps}/{summary.requested_steps}" + (" (stopped early)" if summary.stopped_early else "")),
        (f"loss, first {window} steps", f"{summary.loss_start:.4f}"),
        (f"loss, last {window} steps", f"{summary.loss_end:.4f}"),
        ("Q/DQ vs fake-quant", summary.parity.describe()),
        ("time", f"{summary.seconds:.1f} s"),
    ]
    return rows + [(name, str(path)) for name, path in summary.files.items()]


@command(failed=(ExportFailure,), memory_hint="lower --batch-size or --patch-size")
def main(argv: Sequence[str] | None = None) -> int:
    summary = run(build_parser().parse_args(argv))
    rows = summary_rows(summary)
    print("\n".join(f"{k:<22} {v}" for k, v in rows))
    path = summary.files["checkpoint"].parent / SUMMARY_NAME
    payload = {
        "steps": summary.steps,
        "requested_steps": summary.requested_steps,
        "stopped_early": summary.stopped_early,
        "loss_start": summary.loss_start,
        "loss_end": summary.loss_end,
        "loss_window": loss_window(summary.steps),
        "qdq_operands_bit_exact": summary.parity.operands,
        "qdq_output_max_abs": summary.parity.output_max_abs,
        "seconds": summary.seconds,
        "files": {name: str(p) for name, p in summary.files.items()},
    }
    write_text_atomic(path, json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
