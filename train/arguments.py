"""The data options every training stage takes (``python -m train``, ``train.prune``, ``train.qat``): one spelling,
one help text, one check and one mapping onto :class:`train.config.TrainConfig`, so a fine-tuning stage reads its
data exactly as the training run it continues."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dsrir.cli import non_negative_int, positive_int, share
from dsrir.data.degradations import FAMILIES, NAMED_FAMILIES, V3_FAMILIES
from dsrir.errors import DSRIRError
from dsrir.modes import MODE_TASKS
from train.config import TrainConfig

DATA_FIELDS = (
    "synthetic",
    "train_csv",
    "train_dir",
    "task_mix",
    "degradations",
    "hold_out",
    "clean_fraction",
    "samples_per_epoch",
    "val_fraction",
    "val_size",
    "workers",
    "seed",
)


def task_weight(text: str) -> tuple[str, int]:
    """``haze=2`` -> ("haze", 2), ``haze-v3=3`` -> ("haze-v3", 3): a whole repeat count, as a CSV repeats its rain
    rows."""
    name, _, weight = text.partition("=")
    if name not in (*MODE_TASKS["all_in_one"], *NAMED_FAMILIES) or not weight.isdigit() or int(weight) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected TASK=N or FAMILY=N with TASK one of noise, rain, haze, FAMILY one of "
            f"{', '.join(NAMED_FAMILIES)} and N >= 1"
        )
    return name, int(weight)


def add_data_arguments(
    parser: argparse.ArgumentParser, title: str = "data", *, mode_default: str | None = None
) -> argparse._ArgumentGroup:
    """The data group; ``mode_default`` None means the checkpoint's mode (stages that start from one)."""
    defaults = TrainConfig()
    data = parser.add_argument_group(title)
    mode_help = (
        "which degradations to learn" if mode_default else "degradations; None: the checkpoint's, else all_in_one"
    )
    data.add_argument("--mode", choices=list(MODE_TASKS), default=mode_default, help=mode_help)
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
        "for a small network, weights/README.md); FAMILY=N draws a degradation family N times as often as the other "
        "families of its task (e.g. haze-v3=3)",
    )
    data.add_argument(
        "--degradations",
        nargs="+",
        default=list(defaults.degradations),
        metavar="SET",
        help=f"with --synthetic: families (each of {', '.join(FAMILIES)}; drawn per sample), v3 (the single "
        "generator that trained the weights up to v3, to reproduce them), and/or family names, a range narrowed as "
        "NAME:PARAM=LOW..HIGH (e.g. rain-slanted:tilt=35..45); the v3 generator's rain and haze as families, to mix "
        f"with the others: {', '.join(V3_FAMILIES)}",
    )
    data.add_argument(
        "--hold-out",
        nargs="+",
        default=[],
        metavar="FAMILY",
        help="with --synthetic: leave these families out of training, so benchmarks/quality.py can score what the "
        "model never saw (leave-one-out: one run per family)",
    )
    data.add_argument(
        "--clean-fraction",
        type=share,
        default=defaults.clean_fraction,
        metavar="P",
        help="with --synthetic: leave this share of the samples undegraded (input = target), so the network learns "
        "to leave clean frames alone (the weights up to v4 darken bright clean scenes as if removing haze)",
    )
    data.add_argument(
        "--samples-per-epoch",
        type=positive_int,
        help="samples per epoch; default the CSV's pair count, or max(photos, 1000) with --synthetic",
    )
    data.add_argument(
        "--val-fraction",
        type=float,
        default=defaults.val_fraction,
        help="share of the training pairs/photos held out for validation (never the test sets; the same --seed "
        "holds out the same ones in every stage)",
    )
    data.add_argument(
        "--val-size", type=positive_int, default=defaults.val_size, help="validation images are centre-cropped to this"
    )
    data.add_argument("--workers", type=non_negative_int, default=defaults.workers, help="data-loading processes")
    return data


def data_config(args: argparse.Namespace, mode: str, **training: Any) -> TrainConfig:
    """The stage's :class:`TrainConfig`: the data options from ``args``, the rest from ``training``."""
    values = {name: getattr(args, name) for name in DATA_FIELDS}
    for name in ("task_mix", "degradations", "hold_out"):
        values[name] = tuple(values[name])
    return TrainConfig(mode=mode, **values, **training)


def check_data_config(cfg: TrainConfig) -> str | None:
    """What is wrong with the data options, in one line for ``parser.error``; None when nothing is."""
    if cfg.task_mix and cfg.synthetic is None:
        return "--task-mix weighs the synthetic degradations: use it with --synthetic (a CSV sets its own mix)"
    if unknown := sorted({name for name, _ in cfg.task_mix} - set(cfg.tasks) - set(cfg.family_mix)):
        return f"--task-mix {' '.join(unknown)}: not a task of --mode {cfg.mode} ({', '.join(cfg.tasks)})"
    if cfg.synthetic is None and (cfg.hold_out or cfg.degradations != TrainConfig().degradations):
        return "--degradations and --hold-out choose synthetic degradations: use them with --synthetic"
    if cfg.clean_fraction and cfg.synthetic is None:
        return "--clean-fraction leaves synthetic samples clean: use it with --synthetic"
    try:
        cfg.degradation_set  # noqa: B018 (checked before anything starts)
    except DSRIRError as exc:
        return str(exc)
    return None
