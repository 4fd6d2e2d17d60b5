"""Two ``benchmarks/quality.py`` reports side by side: did new weights gain, and where did they lose?

    python benchmarks/compare_quality.py v3.json v9.json --output v9-vs-v3.json

A shipping rule reads differences, not two tables: per task, the reference's and the candidate's mean PSNR, their
difference, and the photo the candidate loses most on (a mean can hide one photo dropping by decibels: clean frames
are judged photo by photo), beside the input and the best classical method. Refuses reports that were not scored on
the same synthetic set (crop, seed, protocol, photo names per task): their differences would mean nothing. The
machines they ran on are printed, since INT8/ONNX numerics differ between CPUs. Prints the table, the mean
difference over the compared tasks, and writes it all as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from any folder

from benchmarks.quality_report import DSRIR, INPUT, baseline_scores, photo_scores, read_report  # noqa: E402
from dsrir.atomic import write_text_atomic  # noqa: E402
from dsrir.cli_help import DefaultsHelpFormatter  # noqa: E402
from dsrir.errors import DSRIRError, error_line  # noqa: E402

SAME_SET = ("crop", "seed", "protocol")  # what must match for two reports to score the same inputs


@dataclass(frozen=True)
class TaskComparison:
    """One task of both reports: mean PSNR (dB) and where the candidate lost most."""

    task: str
    photos: int
    input: float | None
    reference: float
    candidate: float
    difference: float
    worst_photo: str
    worst_photo_difference: float
    best_baseline: str | None
    best_baseline_psnr: float | None


def compare_task(reference: Mapping[str, Any], candidate: Mapping[str, Any], task: str) -> TaskComparison:
    before, after = photo_scores(reference, task), photo_scores(candidate, task)
    if before.keys() != after.keys():
        differing = sorted(before.keys() ^ after.keys())
        named = ", ".join(differing[:3]) + (f" and {len(differing) - 3} more" if len(differing) > 3 else "")
        raise DSRIRError(f"task {task}: the reports scored different photos ({named} in one only): not comparable")
    if not before:
        raise DSRIRError(f"task {task}: no per-photo scores in the reports")
    worst = min(before, key=lambda name: after[name] - before[name])
    row_before, row_after = reference["summary"][task], candidate["summary"][task]
    baselines = baseline_scores(row_before)
    best = max(baselines, key=lambda name: baselines[name]) if baselines else None
    return TaskComparison(
        task=task,
        photos=len(before),
        input=row_before[INPUT]["psnr"] if INPUT in row_before else None,
        reference=row_before[DSRIR]["psnr"],
        candidate=row_after[DSRIR]["psnr"],
        difference=row_after[DSRIR]["psnr"] - row_before[DSRIR]["psnr"],
        worst_photo=worst,
        worst_photo_difference=after[worst] - before[worst],
        best_baseline=best,
        best_baseline_psnr=baselines[best] if best else None,
    )


def compare(
    reference: Mapping[str, Any], candidate: Mapping[str, Any], tasks: Sequence[str] | None
) -> list[TaskComparison]:
    """Task rows, in the reference's order; the reports must have been scored on the same synthetic set."""
    for key in SAME_SET:
        if reference[key] != candidate[key]:
            raise DSRIRError(f"the reports differ in {key} ({reference[key]} vs {candidate[key]}): not comparable")
    shared = [task for task in reference["summary"] if task in candidate["summary"]]
    if tasks:
        missing = [task for task in tasks if task not in shared]
        if missing:
            raise DSRIRError(f"--tasks {' '.join(missing)}: not in both reports (both have: {' '.join(shared)})")
        shared = list(tasks)
    if not shared:
        raise DSRIRError("the reports have no task in common")
    return [compare_task(reference, candidate, task) for task in shared]


def format_table(rows: Sequence[TaskComparison], names: tuple[str, str]) -> str:
    width = max(9, *(len(row.task) for row in rows))
    header = (
        f"{'task':<{width}} {'photos':>6} {'input':>7} {names[0][:10]:>10} {names[1][:10]:>10} {'diff':>7} "
        f"{'worst photo (diff)':>30} {'best baseline':>18}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        given = f"{row.input:7.2f}" if row.input is not None else f"{'-':>7}"
        worst = f"{row.worst_photo[:21]} ({row.worst_photo_difference:+.2f})"
        baseline = f"{row.best_baseline} {row.best_baseline_psnr:.2f}" if row.best_baseline else "-"
        lines.append(
            f"{row.task:<{width}} {row.photos:>6} {given} {row.reference:10.2f} {row.candidate:10.2f} "
            f"{row.difference:+7.2f} {worst:>30} {baseline:>18}"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/compare_quality.py",
        description="Differences in PSNR, task by task and photo by photo, between two benchmarks/quality.py "
        "reports of the same synthetic set.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("reference", type=Path, help="the report to compare against (e.g. the shipped default's)")
    parser.add_argument("candidate", type=Path, help="the report of the weights being judged")
    parser.add_argument("--tasks", nargs="+", help="tasks to compare, in this order (default: every shared one)")
    parser.add_argument("--output", type=Path, default=Path("comparison.json"), help="where to write the JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.output.resolve() in (args.reference.resolve(), args.candidate.resolve()):
            raise DSRIRError(f"--output {args.output} is one of the reports compared; give another path")
        reference, candidate = (read_report(path, ("images", *SAME_SET)) for path in (args.reference, args.candidate))
        rows = compare(reference, candidate, args.tasks)
    except DSRIRError as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return 2
    names = (args.reference.stem, args.candidate.stem)
    mean = sum(row.difference for row in rows) / len(rows)
    ahead = sum(row.difference > 0 for row in rows)
    for name, report in zip(names, (reference, candidate)):
        machine = report.get("machine", {}).get("cpu", "machine not recorded")
        print(f"{name}: {report.get('model', '?')} (weights: {report.get('weights', '?')}), scored on {machine}")
    print(f"crop {reference['crop']}, seed {reference['seed']}, protocol {reference['protocol']}; PSNR in dB")
    for name, report, other in ((names[0], reference, candidate), (names[1], candidate, reference)):
        alone = [task for task in report["summary"] if task not in other["summary"]]
        if alone:
            print(f"only in {name} (not compared): {' '.join(alone)}")
    print(format_table(rows, names))
    print(f"mean difference over {len(rows)} tasks: {mean:+.2f} dB; {names[1]} ahead on {ahead} of {len(rows)}")
    comparison = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "reference": str(args.reference),
        "candidate": str(args.candidate),
        "mean_difference": mean,
        "tasks": [asdict(row) for row in rows],
    }
    write_text_atomic(args.output, json.dumps(comparison, indent=2) + "\n")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
