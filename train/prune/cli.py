"""``python -m train.prune``: structured channel pruning to a FLOPs or parameter budget, then distillation.

    python -m train.prune --checkpoint model_best.pth --target-flops 0.5 --synthetic photos/ --steps 2000

Prunes whole channels with torch-pruning's dependency graph (L2 magnitude, channels in multiples of
``--round-to``; :mod:`train.prune.search`), searching the global ratio until the budget is met within 5 %,
then fine-tunes the pruned network against the unpruned one and the clean targets
(:mod:`train.prune.distill`). The result is an ordinary checkpoint whose config records every width, so
``dsrir.checkpoint.load_model``, evaluation, restoration and ``export.onnx`` take it with nothing else;
a JSON summary is written next to it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from dsrir.atomic import write_text_atomic
from dsrir.checkpoint import load_model, official_checkpoint, save_pth, save_safetensors
from dsrir.cli import command, non_negative_float, non_negative_int, positive_float, positive_int
from dsrir.cli_help import DefaultsHelpFormatter
from dsrir.errors import DSRIRError
from dsrir.losses import LOSSES, build_loss
from dsrir.model.arch import DSRIR
from dsrir.model.cost import REFERENCE_SIZE, SIZE_720P, count_flops, count_params
from dsrir.modes import DEFAULT_MODE, recorded_mode
from train.arguments import add_data_arguments, check_data_config, data_config
from train.data import TrainData, build_data, endless_batches
from train.distributed import resolve_device
from train.prune.distill import Distiller, DistillOptions, validation_psnr
from train.prune.search import Budget, PruneOptions, search

NORMS = {"l2": 2, "l1": 1}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train.prune",
        description=(
            "Prune DSRIR's channels to a FLOPs or parameter budget (torch-pruning dependency graph, magnitude "
            "importance), then fine-tune with distillation from the unpruned network."
        ),
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="the network to prune (.pth or .safetensors)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--target-flops",
        type=float,
        metavar="F",
        help=f"keep this fraction of the FLOPs (counted at {REFERENCE_SIZE[1]}x{REFERENCE_SIZE[0]}), e.g. 0.5",
    )
    target.add_argument("--target-params", type=float, metavar="P", help="keep this fraction of the parameters")
    parser.add_argument(
        "--output", type=Path, help="pruned checkpoint (.pth or .safetensors); default CHECKPOINT.flops50.pth etc."
    )

    pruning = parser.add_argument_group("pruning")
    pruning.add_argument("--importance", choices=list(NORMS), default="l2", help="channel magnitude norm")
    pruning.add_argument(
        "--round-to", type=positive_int, default=8, help="channel counts stay multiples of this (tensor cores like 8)"
    )
    pruning.add_argument(
        "--iterative-steps",
        type=positive_int,
        default=1,
        help="pruning steps per candidate, importance re-ranked between",
    )

    add_data_arguments(parser, "fine-tuning data (without any, the network is pruned but not fine-tuned)")

    tune = parser.add_argument_group("fine-tuning")
    tune.add_argument("--steps", type=non_negative_int, help="optimiser steps; default 1000 with data, 0 without")
    tune.add_argument("--batch-size", type=positive_int, default=8, help="patches per step")
    tune.add_argument("--patch-size", type=positive_int, default=128, help="training patch edge in pixels")
    tune.add_argument(
        "--learning-rate", type=positive_float, default=2e-4, help="AdamW rate, cosine-decayed over the steps"
    )
    tune.add_argument(
        "--distill-weight",
        type=non_negative_float,
        default=1.0,
        help="weight of L1(student, teacher) next to the --loss term",
    )
    tune.add_argument(
        "--loss", choices=LOSSES, default="paper", help="the objective against the clean target (as python -m train)"
    )
    tune.add_argument("--vgg19-weights", type=Path, help="VGG19 weights for the contrastive term (see python -m train)")
    tune.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (pruning itself runs on the CPU)")
    tune.add_argument("--seed", type=int, default=1234, help="seed of the data order and held-out split")
    tune.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    return parser


def budget_from_args(args: argparse.Namespace) -> Budget:
    if args.target_flops is not None:
        return Budget("flops", args.target_flops)
    return Budget("params", args.target_params)


def default_output(checkpoint: Path, budget: Budget) -> Path:
    """``model_best.pth`` -> ``model_best.flops50.pth``."""
    return checkpoint.with_name(f"{checkpoint.stem}.{budget.kind}{round(budget.fraction * 100)}.pth")


def cost(model: DSRIR) -> dict[str, Any]:
    return {
        "params": count_params(model),
        "gflops_256x256": count_flops(model, *REFERENCE_SIZE) / 1e9,
        "gflops_1280x720": count_flops(model, *SIZE_720P) / 1e9,
    }


def load_data(args: argparse.Namespace, mode: str) -> TrainData | None:
    if args.synthetic is None and args.train_dir is None and args.train_csv is None:
        return None
    cfg = data_config(args, mode, patch_size=(args.patch_size,), batch_size=(args.batch_size,))
    if problem := check_data_config(cfg):
        raise DSRIRError(problem)
    return build_data(cfg)


def check_args(args: argparse.Namespace) -> None:
    if args.output is not None and args.output.suffix not in (".pth", ".safetensors"):
        raise DSRIRError(f"--output {args.output}: expected a .pth or .safetensors file name")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Prune, fine-tune, save; returns the summary written as JSON."""
    budget = budget_from_args(args)
    check_args(args)
    device = resolve_device(args.device)
    teacher, weights = load_model(args.checkpoint)
    mode = args.mode or recorded_mode(weights.metadata) or DEFAULT_MODE
    data = load_data(args, mode)
    steps = args.steps if args.steps is not None else (1000 if data is not None else 0)
    if steps and data is None:
        raise DSRIRError(f"--steps {steps}: fine-tuning needs data (--synthetic CLEAN_DIR or --train-dir)")
    output = args.output or default_output(args.checkpoint, budget)

    print(f"pruning {args.checkpoint} to {budget.fraction} of its {budget.kind}", flush=True)
    options = PruneOptions(norm=NORMS[args.importance], round_to=args.round_to, iterative_steps=args.iterative_steps)
    found = search(teacher, budget, options, log=lambda line: print(f"  {line}", flush=True))
    student = found.model
    summary: dict[str, Any] = {
        "checkpoint": str(args.checkpoint),
        "output": str(output),
        "budget": {"kind": budget.kind, "target": budget.fraction, "achieved": found.fraction},
        "global_ratio": found.ratio,
        "candidates": [{"ratio": r, "fraction": f} for r, f in found.candidates],
        "pruning_seconds": found.seconds,
        "original": cost(teacher),
        "pruned": cost(student),
    }

    teacher.to(device)
    student.to(device)
    if data is not None:
        summary["original"]["validation_psnr"] = validation_psnr(teacher, data, device, args.progress)
        untuned = validation_psnr(student, data, device, args.progress)
        summary["pruned"]["validation_psnr_before_finetuning"] = untuned
        tuned = untuned
        if steps:
            summary["finetuning"] = fine_tune(args, student, teacher, data, steps, device)
            tuned = validation_psnr(student, data, device, args.progress)
        summary["pruned"]["validation_psnr"] = tuned

    save(student.cpu().eval(), output, mode)
    write_text_atomic(output.with_suffix(".json"), json.dumps(summary, indent=2) + "\n")
    print(format_summary(summary))
    return summary


def fine_tune(
    args: argparse.Namespace, student: DSRIR, teacher: DSRIR, data: TrainData, steps: int, device: torch.device
) -> dict[str, Any]:
    """Distil for ``steps`` steps (fewer if interrupted); returns the summary's ``finetuning`` entry."""
    options = DistillOptions(
        steps=steps, learning_rate=args.learning_rate, distill_weight=args.distill_weight, progress=args.progress
    )
    criterion = build_loss(args.loss, args.vgg19_weights).to(device)
    started = time.perf_counter()
    result = Distiller(student, teacher, criterion, options, device).run(
        endless_batches(data, args.batch_size, args.seed, args.workers)
    )
    return {
        "steps": result.steps_done,
        "interrupted": result.interrupted,
        "last_loss": result.last_terms,
        "seconds": time.perf_counter() - started,
    }


def save(model: DSRIR, output: Path, mode: str) -> None:
    """The official checkpoint format (epoch 0, no optimiser) or safetensors; the config carries the widths."""
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".safetensors":
        save_safetensors(output, model, None, {"mode": mode})
    else:
        save_pth(output, official_checkpoint(model, None, epoch=0, mode=mode))


def format_summary(summary: dict[str, Any]) -> str:
    before, after = summary["original"], summary["pruned"]
    budget = summary["budget"]

    def psnr(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    rows = [
        ("parameters", f"{before['params']:,}", f"{after['params']:,}"),
        ("GFLOPs at 256x256", f"{before['gflops_256x256']:.2f}", f"{after['gflops_256x256']:.2f}"),
        ("GFLOPs at 1280x720", f"{before['gflops_1280x720']:.1f}", f"{after['gflops_1280x720']:.1f}"),
    ]
    if "validation_psnr" in before:
        rows.append(("validation PSNR (dB)", psnr(before["validation_psnr"]), psnr(after["validation_psnr"])))
        rows.append(("  right after pruning", "", psnr(after["validation_psnr_before_finetuning"])))
    lines = [f"{'':<22} {'original':>12} {'pruned':>12}"]
    lines += [f"{name:<22} {a:>12} {b:>12}" for name, a, b in rows]
    tried = len(summary["candidates"])
    lines.append(
        f"{budget['kind']}: {budget['achieved']:.3f} of the original (target {budget['target']}), global ratio "
        f"{summary['global_ratio']:.3f}, {tried} candidate(s) in {summary['pruning_seconds']:.1f} s"
    )
    tuned = summary.get("finetuning")
    lines.append(
        "not fine-tuned"
        if tuned is None
        else f"fine-tuned {tuned['steps']} step(s) in {tuned['seconds']:.1f} s"
        + (" (interrupted)" if tuned["interrupted"] else "")
    )
    lines.append(f"checkpoint {summary['output']}")
    return "\n".join(lines)


@command(memory_hint="lower --batch-size or --patch-size")
def main(argv: Sequence[str] | None = None) -> int:
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
