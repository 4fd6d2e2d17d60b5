"""``python -m train``: the paper's training stage (also under ``torchrun`` for several GPUs)."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from dsrir.cli_help import DefaultsHelpFormatter
from dsrir.errors import DSRIRError, error_line
from dsrir.losses import LOSSES
from dsrir.model.config import PRESETS
from dsrir.modes import MODE_TASKS
from train.config import TrainConfig
from train.distributed import init_distributed, shutdown
from train.trainer import Trainer


def build_parser() -> argparse.ArgumentParser:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m train",
        description=(
            "Train DSRIR with the paper's protocol (loss L_unc + L_psnr + 0.2 L_pocl, AdamW, warm-up + cosine, "
            "progressive patches). Several GPUs: torchrun --nproc-per-node N -m train ..."
        ),
        formatter_class=DefaultsHelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument("--mode", choices=list(MODE_TASKS), default=defaults.mode, help="which degradations to learn")
    data.add_argument("--train-dir", type=Path, help="root the training CSV's paths are relative to")
    data.add_argument("--train-csv", type=Path, help="training pairs; default datasets/train/train_{mode}.csv")
    data.add_argument(
        "--synthetic",
        type=Path,
        metavar="CLEAN_DIR",
        help="train on synthetic noise/rain/haze made from a folder of clean photos instead of a CSV",
    )
    data.add_argument(
        "--task-mix",
        nargs="+",
        type=task_weight,
        default=[],
        metavar="TASK=N",
        help="with --synthetic: draw TASK N times as often as a task left at 1 (e.g. haze=2; the hardest task "
        "for a small network, weights/README.md)",
    )
    data.add_argument(
        "--samples-per-epoch",
        type=int,
        help="samples per epoch; default the CSV's pair count, or max(photos, 1000) with --synthetic",
    )
    data.add_argument(
        "--val-fraction",
        type=float,
        default=defaults.val_fraction,
        help="share of the training pairs/photos held out for validation (never the test sets)",
    )
    data.add_argument(
        "--val-size", type=int, default=defaults.val_size, help="validation images are centre-cropped to this"
    )
    data.add_argument("--workers", type=int, default=defaults.workers, help="data-loading processes")

    model = parser.add_argument_group("model and optimisation")
    model.add_argument("--preset", choices=list(PRESETS), default=defaults.preset, help="architecture")
    model.add_argument("--epochs", type=int, default=defaults.epochs, help="total epochs")
    model.add_argument(
        "--epoch-chg",
        type=int,
        nargs="+",
        default=list(defaults.epoch_chg),
        help="last epoch of each progressive stage",
    )
    model.add_argument("--patch-size", type=int, nargs="+", default=list(defaults.patch_size), help="patch per stage")
    model.add_argument("--batch-size", type=int, nargs="+", default=list(defaults.batch_size), help="batch per stage")
    model.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="AdamW base learning rate")
    model.add_argument("--min-lr", type=float, default=defaults.min_lr, help="learning rate at the end of the cosine")
    model.add_argument("--warmup-epochs", type=int, default=defaults.warmup_epochs, help="linear warm-up epochs")
    model.add_argument(
        "--vgg19-weights",
        type=Path,
        help="torchvision VGG19 weights for the contrastive loss; default the torch hub cache file "
        "vgg19-dcbb9e9d.pth; without either the term is disabled",
    )
    model.add_argument(
        "--loss",
        choices=LOSSES,
        default=defaults.loss,
        help="paper: the official objective; l1: plain L1 on the three stage outputs (AirNet/PromptIR), which lets "
        "an all-in-one run learn haze (weights/README.md)",
    )
    model.add_argument("--seed", type=int, default=defaults.seed, help="seed of initialisation and data order")

    run = parser.add_argument_group("run")
    run.add_argument("--device", default=defaults.device, help="auto, cpu, cuda or cuda:N")
    run.add_argument(
        "--session", default=defaults.session, help="run name: checkpoints go to SAVE_DIR/MODE/models/SESSION"
    )
    run.add_argument("--save-dir", type=Path, default=defaults.save_dir, help="experiments folder")
    run.add_argument("--val-epochs", type=int, default=defaults.val_epochs, help="validate every N epochs")
    run.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="CHECKPOINT",
        help="continue from the session's model_latest.pth, or from CHECKPOINT",
    )
    run.add_argument(
        "--init",
        type=Path,
        metavar="WEIGHTS",
        help="fine-tune: start from these weights (.pth or .safetensors) with a fresh optimiser and schedule",
    )
    run.add_argument("--max-steps", type=int, help="stop after this many optimiser steps in total (checkpoint kept)")
    run.add_argument(
        "--max-minutes",
        type=float,
        help="stop after this much training time in this run (checkpoint kept; --resume continues): bounded GPU slots",
    )
    run.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    return parser


def task_weight(text: str) -> tuple[str, int]:
    """``haze=2`` -> ("haze", 2): a whole repeat count, as a CSV repeats its rain rows."""
    task, _, weight = text.partition("=")
    if task not in MODE_TASKS["all_in_one"] or not weight.isdigit() or int(weight) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected TASK=N with TASK one of noise, rain, haze and N >= 1")
    return task, int(weight)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = vars(args).copy()
    for key in ("epoch_chg", "patch_size", "batch_size", "task_mix"):
        values[key] = tuple(values[key])
    return TrainConfig(**values)


def one_line_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> str:
    return f"warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.init is not None and args.resume is not None:
        parser.error("--init starts a new run and --resume continues one: give only one")
    cfg = config_from_args(args)
    if cfg.task_mix and cfg.synthetic is None:
        parser.error("--task-mix weighs the synthetic degradations: use it with --synthetic (a CSV sets its own mix)")
    if unknown := sorted({task for task, _ in cfg.task_mix} - set(cfg.tasks)):
        parser.error(f"--task-mix {' '.join(unknown)}: not a task of --mode {cfg.mode} ({', '.join(cfg.tasks)})")
    warnings.formatwarning = one_line_warning  # a CLI user needs the message, not the source line
    try:
        ctx = init_distributed(cfg.device)
        try:
            summary = Trainer(cfg, ctx).run()
        finally:
            shutdown(ctx)
    except DSRIRError as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return 2
    if ctx.is_main:
        best = "n/a" if summary.best_psnr is None else f"{summary.best_psnr:.2f} dB"
        rows = [
            ("epochs completed", f"{summary.epochs_completed}/{cfg.epochs}"),
            ("optimiser steps", str(summary.global_step)),
            ("best validation PSNR", best),
            ("time", f"{summary.seconds:.1f} s"),
            ("latest checkpoint", str(summary.last_checkpoint)),
        ]
        if summary.stopped_early:
            rows.append(("resume with", "python -m train ... --resume" + (" (without --init)" if cfg.init else "")))
        print("\n".join(f"{k:<22} {v}" for k, v in rows))
        summary_path = cfg.results_dir / "train_summary.json"
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        summary_path.write_text(json.dumps(dict(rows), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
