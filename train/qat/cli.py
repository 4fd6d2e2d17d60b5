"""``python -m train.qat``: quantisation-aware fine-tuning of a trained DSRIR, then its INT8 Q/DQ ONNX graph.

Starts from a checkpoint and the calibration ranges of its FP32 export, and fine-tunes towards the checkpoint's own
FP32 outputs (``--loss distill``, :mod:`dsrir.losses.distill`; or a training loss on the ground truth) while every INT8
convolution sees the rounding of the deployed graph (:mod:`train.qat.fake_quant`), so the weights (and, by default, the
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
import itertools
import json
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from torch import nn
from tqdm import tqdm

from calibration.ranges import ConvSite, Ranges, conv_sites
from dsrir.atomic import write_text_atomic
from dsrir.checkpoint import load_model
from dsrir.cli import command, positive_float, positive_int
from dsrir.cli_help import DefaultsHelpFormatter
from dsrir.errors import DSRIRError
from dsrir.losses import LOSSES, DistillationL1Loss, build_loss
from dsrir.modes import DEFAULT_MODE, recorded_mode
from dsrir.onnx_file import load_onnx
from dsrir.trt.version import DEFAULT_TARGET, parse_version
from export.onnx.build import ExportFailure
from train.arguments import add_data_arguments, check_data_config, data_config
from train.config import TrainConfig
from train.data import build_data, endless_batches
from train.distributed import resolve_device
from train.qat.fake_quant import FakeQuantConv2d, learned_ranges, quantize_model
from train.qat.outputs import CHECKPOINT_NAME, QDQParity, export_qat, save_checkpoint
from train.qat.tuning import build_optimizer, fine_tune

SUMMARY_NAME = "qat_summary.json"
DISTILL = "distill"  # --loss: L1 to the FP32 checkpoint's outputs (dsrir.losses.distill)
LOSS_WINDOW = 10  # steps averaged for the start and end loss: one batch's loss is too noisy to compare


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
    add_data_arguments(parser, "data (as python -m train)")
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


def check_args(args: argparse.Namespace) -> None:
    """What can be refused before minutes of fine-tuning, not after."""
    parse_version(args.target_trt, "--target-trt")


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
    cfg = data_config(args, mode, patch_size=(args.patch_size,), batch_size=(args.batch_size,))
    if problem := check_data_config(cfg):
        raise DSRIRError(problem)
    data = build_data(cfg)
    batches = itertools.islice(
        endless_batches(data, args.batch_size, args.seed, args.workers, pin_memory=device.type == "cuda"), args.steps
    )
    criterion = (DistillationL1Loss(teacher) if teacher is not None else build_loss(args.loss, args.vgg19_weights)).to(
        device
    )
    optimizer = build_optimizer(model, args.learning_rate, args.scale_learning_rate)
    tqdm.write(
        f"QAT of {preset} ({quantized} INT8 convs, {args.scales} ranges) on {data.description}; device {device}; "
        f"output in {output_dir}"
    )
    losses, stopped = fine_tune(model, criterion, optimizer, batches, device, args.progress, total=args.steps)
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
