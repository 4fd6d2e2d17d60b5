"""``python -m dsrir.evaluate``: PSNR/SSIM per task on the standard test sets or a synthetic set.

Protocols (see ``dsrir.metrics``): ``paper`` scores rain on the Y channel as the official code
does (its numbers are comparable with the paper's table); ``rgb`` scores every task on RGB as
PromptIR-lineage papers do. Both centre-crop images to multiples of 8 like the official test.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from dsrir.atomic import write_text_atomic
from dsrir.cli import command, positive_int
from dsrir.cli_help import DefaultsHelpFormatter
from dsrir.data.degradations import CLEAN_LABEL
from dsrir.data.eval_sets import EvalSet, center_crop_to_multiple, denoise_set, rain100l_set, sots_set, synthetic_sets
from dsrir.errors import DSRIRError
from dsrir.imageio import write_image
from dsrir.modes import DEFAULT_MODE

if TYPE_CHECKING:
    from dsrir.model.restorer import Restorer

# PyTorch and scikit-image (the train extra) are imported where they are used: on the lean runtime install this
# command says which extra to install instead of failing at import with a traceback.

MODE_TASKS = {
    "all_in_one": ("noise15", "noise25", "noise50", "rain", "haze"),
    "noise": ("noise15", "noise25", "noise50"),
    "rain": ("rain",),
    "haze": ("haze",),
}


@dataclass
class TaskResult:
    """Mean scores of one task; ``input_*`` score the degraded input itself, the baseline to beat (NaN for
    ``clean``: the input is the target, there is nothing to beat)."""

    task: str
    psnr: float
    ssim: float
    count: int
    input_psnr: float
    input_ssim: float


def evaluate_sets(
    restorer: Restorer,
    sets: Sequence[EvalSet],
    protocol: str,
    save_dir: Path | None = None,
    progress: bool = True,
) -> list[TaskResult]:
    """Restore every sample and average PSNR/SSIM per task (grouped by each sample's task)."""
    from dsrir.metrics import score

    no_input = (float("nan"), float("nan"))
    scores: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    for eval_set in sets:
        for sample in tqdm(eval_set, desc=f"eval {eval_set.task}", disable=not progress, leave=False):
            degraded = center_crop_to_multiple(sample.degraded, 8)
            target = center_crop_to_multiple(sample.target, 8)
            restored = restorer(degraded)
            inputs = no_input if sample.task == CLEAN_LABEL else score(degraded, target, sample.task, protocol)
            scores[sample.task].append((*score(restored, target, sample.task, protocol), *inputs))
            if save_dir is not None:
                write_image(save_dir / sample.task / f"{Path(sample.name).stem}.png", restored)
    results = []
    for task, values in scores.items():
        psnr, ssim, input_psnr, input_ssim = (float(v) for v in np.mean(np.array(values), axis=0))
        results.append(TaskResult(task, psnr, ssim, len(values), input_psnr, input_ssim))
    return results


def average(results: Sequence[TaskResult]) -> TaskResult:
    """Mean over the restoration tasks (not images), as the paper's 'average' column. ``clean`` (no input score) is
    left out: its PSNR is unbounded (an untouched frame scores infinity) and would decide the best checkpoint alone."""
    restored = [r for r in results if math.isfinite(r.input_psnr)] or list(results)

    def mean(field: str) -> float:
        return float(np.mean([getattr(r, field) for r in restored]))

    return TaskResult(
        "average", mean("psnr"), mean("ssim"), sum(r.count for r in restored), mean("input_psnr"), mean("input_ssim")
    )


def format_table(results: Sequence[TaskResult], title: str = "") -> str:
    rows = [*results, average(results)] if results else []
    lines = [title] if title else []
    lines.append(
        f"{'task':<10} {'images':>6} {'input PSNR':>10} {'PSNR':>7} {'gain':>6} {'input SSIM':>10} {'SSIM':>7}"
    )
    rule = "-" * len(lines[-1])
    lines.append(rule)
    for r in rows:
        if r.task == "average":
            lines.append(rule)
        scored_input = math.isfinite(r.input_psnr)
        input_psnr, gain = (f"{r.input_psnr:.2f}", f"{r.psnr - r.input_psnr:+.2f}") if scored_input else ("-", "-")
        input_ssim = f"{r.input_ssim:.4f}" if scored_input else "-"
        lines.append(
            f"{r.task:<10} {r.count:>6} {input_psnr:>10} {r.psnr:>7.2f} {gain:>6} {input_ssim:>10} {r.ssim:>7.4f}"
        )
    return "\n".join(lines)


def build_sets(args: argparse.Namespace) -> list[EvalSet]:
    tasks = MODE_TASKS[args.mode]
    if args.synthetic:
        return synthetic_sets(Path(args.synthetic), tasks=tasks, seed=args.seed)
    sets: list[EvalSet] = []
    wanted = {"noise": args.denoise_path, "rain": args.derain_path, "haze": args.dehaze_path}
    if any(t.startswith("noise") for t in tasks) and wanted["noise"]:
        sets += [denoise_set(Path(args.denoise_path), sigma, seed=args.seed) for sigma in (15, 25, 50)]
    if "rain" in tasks and wanted["rain"]:
        sets.append(rain100l_set(Path(args.derain_path)))
    if "haze" in tasks and wanted["haze"]:
        sets.append(sots_set(Path(args.dehaze_path)))
    if not sets:
        raise DSRIRError(
            f"nothing to evaluate for --mode {args.mode}: give --synthetic CLEAN_DIR or the test-set paths "
            "(--denoise-path, --derain-path, --dehaze-path)"
        )
    return sets


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from dsrir.metrics import PROTOCOLS

    parser = argparse.ArgumentParser(
        prog="python -m dsrir.evaluate",
        description="Evaluate a DSRIR checkpoint: PSNR/SSIM per task, printed as a table and saved as JSON.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--checkpoint", required=True, help="official .pth or project .safetensors weights")
    parser.add_argument("--mode", choices=list(MODE_TASKS), default=DEFAULT_MODE, help="which tasks to score")
    parser.add_argument("--denoise-path", help="folder of clean test images (BSD68, Urban100); noise is added")
    parser.add_argument("--derain-path", help="Rain100L test folder with input/ and target/")
    parser.add_argument("--dehaze-path", help="SOTS outdoor folder with input/ and target/")
    parser.add_argument("--synthetic", metavar="CLEAN_DIR", help="score synthetic degradations of these clean photos")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="paper", help="paper: rain on Y; rgb: all on RGB")
    parser.add_argument("--save-images", metavar="DIR", help="write restored images under DIR/<task>/")
    parser.add_argument("--output", default="evaluation.json", help="where to write the results as JSON")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--tile", type=positive_int, default=None, help="restore in tiles of this size (pixels)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic noise/rain/haze")
    return parser.parse_args(argv)


@command(memory_hint="restore in tiles (--tile 512)")
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from dsrir.checkpoint import load_model, pick_device
    from dsrir.model.restorer import Restorer

    device = pick_device(args.device)
    model, weights = load_model(args.checkpoint, device)
    sets = build_sets(args)
    restorer = Restorer(model, device=device, tile=args.tile)
    save_dir = Path(args.save_images) if args.save_images else None
    results = evaluate_sets(restorer, sets, args.protocol, save_dir=save_dir)
    title = f"{args.checkpoint} (preset {weights.preset or 'custom'}, protocol {args.protocol})"
    print(format_table(results, title))
    report = {
        "checkpoint": str(args.checkpoint),
        "preset": weights.preset,
        "protocol": args.protocol,
        "tasks": [asdict(r) for r in results],
        "average": asdict(average(results)),
    }
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
