"""How a training run's quality moved, checkpoint by checkpoint: its EMA weights against its raw weights.

    python benchmarks/trajectory.py experiments/all_in_one/models/xs-p50-v4 --photos photos/val --crop 256

Every numbered checkpoint of a session (``model_<epoch>.pth``, then ``model_latest.pth`` when it is further on; or
the ``.pth`` files given) is scored twice: its EMA weights (what validation picks and every weight file ships) and
the raw weights the optimiser holds, on the synthetic set ``benchmarks/quality.py`` builds for the same photos,
tasks, crop and seed, with its PSNR/SSIM protocol. ``held-out`` stands for the families the session's training
never drew from. Prints one table (PSNR per task, the mean over tasks), writes every number as JSON and draws PSNR
against training step, one panel per task (EMA solid, raw dashed, the input dotted) beside it as PNG: whether the
average settles the swings between neighbouring checkpoints is read off the picture. A checkpoint that cannot be
read is skipped and named. The picture needs matplotlib (``pip install matplotlib``).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from benchmarks.quality import (  # noqa: E402
    add_eval_set_arguments,
    expand_tasks,
    machine_info,
    recorded_training,
    trained_on,
)
from dsrir.atomic import write_bytes_atomic, write_text_atomic  # noqa: E402
from dsrir.checkpoint import WhichWeights, load_model, pick_device, read_weights  # noqa: E402
from dsrir.cli_help import DefaultsHelpFormatter  # noqa: E402
from dsrir.data.eval_sets import EvalSet, synthetic_sets  # noqa: E402
from dsrir.errors import DSRIRError, error_line  # noqa: E402
from dsrir.evaluate import average, evaluate_sets  # noqa: E402
from dsrir.model.restorer import Restorer  # noqa: E402

NUMBERED = re.compile(r"model_(\d+)\.pth")
WEIGHTS: tuple[WhichWeights, ...] = ("ema", "raw")
MATPLOTLIB_MISSING = "the trajectory picture needs matplotlib: pip install matplotlib"


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    epoch: int
    step: int
    has_ema: bool


def session_checkpoints(paths: Sequence[Path]) -> tuple[list[Checkpoint], list[str]]:
    """The checkpoints to score, in training order, and one line per file that could not be read.

    A folder gives its ``model_<epoch>.pth`` files and ``model_latest.pth`` when that is past the last of them
    (``model_best.pth`` is a copy of a numbered one)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            numbered = sorted(
                (p for p in path.glob("model_*.pth") if NUMBERED.fullmatch(p.name)),
                key=lambda p: int(NUMBERED.fullmatch(p.name).group(1)),  # type: ignore[union-attr]
            )
            latest = path / "model_latest.pth"
            found = numbered + ([latest] if latest.is_file() else [])
            if not found:
                raise DSRIRError(f"{path}: no model_<epoch>.pth or model_latest.pth checkpoints in this folder")
            files += found
        else:
            files.append(path)
    checkpoints, skipped = [], []
    for path in files:
        try:
            meta = read_weights(path).metadata
        except DSRIRError as exc:
            skipped.append(error_line(exc))
            continue
        if "global_step" not in meta:
            skipped.append(f"{path}: not a training checkpoint (it records no global_step)")
            continue
        has_ema = meta["weights"] == "ema"
        checkpoints.append(Checkpoint(path, int(meta.get("epoch", 0)), int(meta["global_step"]), has_ema))
    unique: dict[int, Checkpoint] = {}
    for checkpoint in checkpoints:  # model_latest.pth repeats the last numbered one when the run ended on it
        unique.setdefault(checkpoint.step, checkpoint)
    return sorted(unique.values(), key=lambda c: c.step), skipped


def score_checkpoint(
    checkpoint: Checkpoint, which: WhichWeights, sets: Sequence[EvalSet], protocol: str, device: str
) -> dict[str, Any]:
    """One point of the trajectory: PSNR/SSIM per task and their mean over tasks."""
    model, _ = load_model(checkpoint.path, device, which)
    results = evaluate_sets(Restorer(model, device), sets, protocol, progress=False)
    return {
        "checkpoint": str(checkpoint.path),
        "epoch": checkpoint.epoch,
        "step": checkpoint.step,
        "weights": which,
        "average_psnr": average(results).psnr,
        "tasks": {r.task: {"psnr": r.psnr, "ssim": r.ssim, "count": r.count} for r in results},
        # a clean frame's input is its target (infinite PSNR): it has no input score
        "input": {r.task: r.input_psnr for r in results if math.isfinite(r.input_psnr)},
    }


def format_table(points: Sequence[dict[str, Any]], tasks: Sequence[str]) -> str:
    """A row per checkpoint and weight set: PSNR per task and the mean; the input's PSNR first."""
    width = max(10, *(len(task) for task in tasks))
    header = f"{'step':>6} {'epoch':>5} {'weights':>7} " + " ".join(f"{t:>{width}}" for t in tasks) + f" {'mean':>7}"
    lines = [header, "-" * len(header)]
    given = points[0]["input"]
    cells = " ".join(f"{given[t]:>{width}.2f}" if t in given else f"{'-':>{width}}" for t in tasks)
    lines.append(f"{'':>6} {'':>5} {'input':>7} {cells} {sum(given.values()) / len(given):>7.2f}" if given else "")
    for point in points:
        cells = " ".join(f"{point['tasks'][t]['psnr']:>{width}.2f}" for t in tasks)
        lines.append(
            f"{point['step']:>6} {point['epoch']:>5} {point['weights']:>7} {cells} {point['average_psnr']:>7.2f}"
        )
    return "\n".join(lines)


def draw(points: Sequence[dict[str, Any]], tasks: Sequence[str], title: str) -> bytes:
    """PSNR against step, a panel per task (and one for the mean): EMA solid, raw dashed, input dotted."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    panels = [*tasks, "mean"]
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    for axis, panel in zip(axes.flat, panels):
        for which, style in (("ema", "-o"), ("raw", "--s")):
            line = [p for p in points if p["weights"] == which]
            if line:
                values = [p["average_psnr"] if panel == "mean" else p["tasks"][panel]["psnr"] for p in line]
                label = {"ema": "EMA", "raw": "raw"}[which]
                axis.plot([p["step"] for p in line], values, style, markersize=3, label=label)
        given = points[0]["input"]
        level = sum(given.values()) / len(given) if panel == "mean" and given else given.get(panel)
        if level is not None:  # none for clean frames, whose input is the target
            axis.axhline(level, color="grey", linestyle=":", label="input")
        axis.set_title(panel, fontsize=9)
        axis.set_xlabel("step", fontsize=8)
        axis.set_ylabel("PSNR (dB)", fontsize=8)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(panels) :]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/trajectory.py",
        description="PSNR of a training session's checkpoints, EMA weights against raw weights, as a table, JSON "
        "and a plot.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument(
        "checkpoints", nargs="+", type=Path, help="a session's checkpoint folder, or .pth files in training order"
    )
    add_eval_set_arguments(parser, crop=256)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--output", type=Path, default=Path("trajectory.json"), help="where to write the JSON (the plot goes beside it)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        try:
            import matplotlib  # noqa: F401  (fail before the long part, not after it)
        except ImportError:
            raise DSRIRError(MATPLOTLIB_MISSING) from None
        if args.crop < 8:
            raise DSRIRError(f"--crop {args.crop} is smaller than 8")
        checkpoints, skipped = session_checkpoints(args.checkpoints)
        for line in skipped:
            print(f"skipped: {line}", file=sys.stderr)
        if not checkpoints:
            raise DSRIRError("no readable training checkpoint among the inputs")
        training = trained_on(recorded_training(checkpoints[-1].path), None)
        tasks = expand_tasks(args.tasks, training.degradations)
        sets = synthetic_sets(args.photos, tasks=tasks, seed=args.seed, crop=args.crop)
        device = pick_device(args.device)
        jobs = [(c, w) for c in checkpoints for w in WEIGHTS if w == "raw" or c.has_ema]
        points = [
            score_checkpoint(checkpoint, which, sets, args.protocol, device)
            for checkpoint, which in tqdm(jobs, desc="checkpoints x weights", disable=args.no_progress)
        ]
        picture = args.output.with_suffix(".png")
        write_bytes_atomic(
            picture, draw(points, tasks, f"{args.checkpoints[0].name} ({args.photos}, crop {args.crop})")
        )
    except DSRIRError as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return 2
    print(f"trained on: {training.describe()}")
    print(f"photos {args.photos}, crop {args.crop}, seed {args.seed}, protocol {args.protocol}")
    print(format_table(points, tasks))
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "checkpoints": [str(c.path) for c in checkpoints],
        "skipped": skipped,
        "photos": str(args.photos),
        "crop": args.crop,
        "seed": args.seed,
        "protocol": args.protocol,
        "tasks": tasks,
        "trained_on": training.degradations.spec,
        "machine": machine_info(),
        "points": points,
        "picture": picture.name,
    }
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.output}; plot: {picture}")
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
