"""``python -m train``: the paper's training stage (also under ``torchrun`` for several GPUs)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from dsrir.atomic import write_text_atomic
from dsrir.cli import command, hidden_alias, non_negative_float, non_negative_int, positive_float, positive_int
from dsrir.cli_help import DefaultsHelpFormatter
from dsrir.errors import DSRIRError
from dsrir.losses import LOSSES
from dsrir.model.config import PRESETS
from train.arguments import add_data_arguments, check_data_config
from train.config import TrainConfig
from train.distributed import init_distributed, shutdown
from train.trainer import Trainer, TrainSummary


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
    add_data_arguments(parser, mode_default=defaults.mode)

    model = parser.add_argument_group("model and optimisation")
    model.add_argument("--preset", choices=list(PRESETS), default=defaults.preset, help="architecture")
    model.add_argument("--epochs", type=positive_int, default=defaults.epochs, help="total epochs")
    model.add_argument(
        "--epoch-chg",
        type=positive_int,
        nargs="+",
        default=list(defaults.epoch_chg),
        help="last epoch of each progressive stage",
    )
    model.add_argument(
        "--patch-size", type=positive_int, nargs="+", default=list(defaults.patch_size), help="patch per stage"
    )
    model.add_argument(
        "--batch-size", type=positive_int, nargs="+", default=list(defaults.batch_size), help="batch per stage"
    )
    model.add_argument(
        "--learning-rate", type=positive_float, default=defaults.learning_rate, help="AdamW base learning rate"
    )
    model.add_argument(
        "--min-lr", type=non_negative_float, default=defaults.min_lr, help="learning rate at the end of the cosine"
    )
    model.add_argument(
        "--warmup-epochs", type=non_negative_int, default=defaults.warmup_epochs, help="linear warm-up epochs"
    )
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
    model.add_argument(
        "--ema-decay",
        type=non_negative_float,
        default=defaults.ema_decay,
        help="keep an exponential moving average of the weights (BasicSR's ema_decay), averaging the last "
        "~1/(1-decay) steps, or the last tenth of a shorter run (TensorFlow's warm-up); validation, model_best.pth "
        "and weights read from the checkpoints use it; 0: off",
    )
    model.add_argument("--seed", type=int, default=defaults.seed, help="seed of initialisation and data order")

    run = parser.add_argument_group("run")
    run.add_argument("--device", default=defaults.device, help="auto, cpu, cuda or cuda:N")
    run.add_argument(
        "--session", default=defaults.session, help="run name: checkpoints go to OUTPUT_DIR/MODE/models/SESSION"
    )
    run.add_argument(
        "--output-dir",
        dest="save_dir",
        metavar="OUTPUT_DIR",
        type=Path,
        default=defaults.save_dir,
        help="experiments folder: checkpoints in OUTPUT_DIR/MODE/models/SESSION, validation results in "
        "OUTPUT_DIR/MODE/results/SESSION",
    )
    hidden_alias(run, "--save-dir", "save_dir", type=Path)
    run.add_argument("--val-epochs", type=positive_int, default=defaults.val_epochs, help="validate every N epochs")
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
    run.add_argument(
        "--max-steps", type=positive_int, help="stop after this many optimiser steps in total (checkpoint kept)"
    )
    run.add_argument(
        "--max-minutes",
        type=positive_float,
        help="stop after this much training time in this run (checkpoint kept; --resume continues): bounded GPU slots",
    )
    run.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = vars(args).copy()
    for key in ("epoch_chg", "patch_size", "batch_size", "task_mix", "degradations", "hold_out"):
        values[key] = tuple(values[key])
    return TrainConfig(**values)


@command(
    interrupted="interrupted before training started; once it runs, Ctrl-C saves model_latest.pth",
    memory_hint="lower --batch-size or --patch-size",
)
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.init is not None and args.resume is not None:
        parser.error("--init starts a new run and --resume continues one: give only one")
    cfg = config_from_args(args)
    if problem := check_data_config(cfg):
        parser.error(problem)
    if not 0 <= cfg.ema_decay < 1:
        parser.error(f"--ema-decay {cfg.ema_decay:g}: expected 0 (off) or a decay below 1, e.g. 0.999")
    ctx = init_distributed(cfg.device)
    try:
        trainer = Trainer(cfg, ctx)
        if trainer.start_epoch > cfg.epochs:
            raise DSRIRError(
                f"nothing to train: the checkpoint resumed from already completed {trainer.start_epoch - 1} "
                f"epoch(s) of --epochs {cfg.epochs}; raise --epochs to train further"
            )
        summary = trainer.run()
    finally:
        shutdown(ctx)
    if ctx.is_main:
        rows = summary_rows(summary, cfg)
        print("\n".join(f"{k:<22} {v}" for k, v in rows))
        write_text_atomic(cfg.results_dir / "train_summary.json", json.dumps(dict(rows), indent=2) + "\n")
    return 0


def summary_rows(summary: TrainSummary, cfg: TrainConfig) -> list[tuple[str, str]]:
    """The end-of-run table; a checkpoint is named, and --resume suggested, only when one was written."""
    best = "n/a" if summary.best_psnr is None else f"{summary.best_psnr:.2f} dB"
    saved = summary.last_checkpoint.is_file()
    rows = [
        ("epochs completed", f"{summary.epochs_completed}/{cfg.epochs}"),
        ("optimiser steps", str(summary.global_step)),
        ("best validation PSNR", best),
        ("time", f"{summary.seconds:.1f} s"),
        ("latest checkpoint", str(summary.last_checkpoint) if saved else "none written (no step was trained)"),
    ]
    if summary.stopped_early and saved:
        rows.append(("resume with", "python -m train ... --resume" + (" (without --init)" if cfg.init else "")))
    return rows


if __name__ == "__main__":
    sys.exit(main())
