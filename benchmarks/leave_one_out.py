"""Leave-one-out across the degradation families: one table from the ``quality.py`` reports of the held-out runs.

    python -m train --synthetic photos/train ... --hold-out rain-slanted --session loo-rain-slanted   # one per family
    python benchmarks/quality.py --model .../loo-rain-slanted/model_latest.pth --output loo/rain-slanted.json
    python benchmarks/leave_one_out.py loo/*.json --seen loo/all-families.json

Generalisation is what a family nobody trained on scores, so each report contributes its "held out" rows only
(``quality.py`` marks them from the degradation set the weights record). The bar is issue 17's: a gain of at least
``--gain`` dB over the input and above the classical method a user would otherwise run (non-local means for noise,
the dark channel prior for haze; CBM3D is shown but not required, it is the goal beyond). ``--seen`` adds a run that
trained on every family, at the same length: the gap to it separates what holding a family out costs from what
the run could not learn at all. Prints one table and writes it as JSON; a report that cannot be read, or that
holds nothing out, is skipped and named.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from benchmarks.quality_report import DSRIR, INPUT, TRAINING, baseline_scores, read_report  # noqa: E402
from dsrir.atomic import write_text_atomic  # noqa: E402
from dsrir.cli_help import DefaultsHelpFormatter  # noqa: E402
from dsrir.data.family import Coverage  # noqa: E402
from dsrir.errors import DSRIRError, error_line  # noqa: E402

# The classical methods the bar requires beating (quality.py's method keys); CBM3D is reported, not required.
REQUIRED_BASELINES = ("nlm", "dcp")


@dataclass(frozen=True)
class HeldOutRow:
    """One family that one run never trained on, and how the run did on it."""

    task: str
    report: str
    model: str
    input_psnr: float
    held_out_psnr: float
    seen_psnr: float | None
    baselines: dict[str, float]
    weights: str = "ema"  # which weights of a checkpoint the report scored (reports before --weights: the EMA)

    @property
    def gain(self) -> float:
        return self.held_out_psnr - self.input_psnr

    def passes(self, gain: float) -> bool:
        beaten = all(self.held_out_psnr > self.baselines[name] for name in REQUIRED_BASELINES if name in self.baselines)
        return self.gain >= gain and beaten


def held_out_rows(path: Path, report: dict[str, Any], seen: dict[str, Any] | None) -> list[HeldOutRow]:
    """The report's held-out tasks that have an input score (a clean frame's is unbounded, not a gain)."""
    rows = []
    for task, methods in report["summary"].items():
        if methods.get(TRAINING) != Coverage.HELD_OUT or INPUT not in methods:
            continue
        control_methods = (seen or {}).get("summary", {}).get(task, {})
        control = control_methods.get(DSRIR) if control_methods.get(TRAINING) == Coverage.SEEN else None
        rows.append(
            HeldOutRow(
                task=task,
                report=str(path),
                model=str(report.get("model", "?")),
                input_psnr=methods[INPUT]["psnr"],
                held_out_psnr=methods[DSRIR]["psnr"],
                seen_psnr=control["psnr"] if control else None,
                baselines=baseline_scores(methods),
                weights=str(report.get("weights", "ema")),
            )
        )
    return rows


def format_table(rows: Sequence[HeldOutRow], gain: float) -> str:
    """Markdown, one row per held-out family and run."""
    lines = [
        "| family held out | run | weights | input | held out | seen (control) | gain | baselines "
        f"| bar (+{gain:g} dB, > NLM/DCP) |",
        "|---|---|---|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        seen = f"{row.seen_psnr:.2f}" if row.seen_psnr is not None else "-"
        baselines = ", ".join(f"{name} {value:.2f}" for name, value in row.baselines.items()) or "-"
        verdict = "passes" if row.passes(gain) else "fails"
        lines.append(
            f"| {row.task} | {Path(row.report).stem} | {row.weights} | {row.input_psnr:.2f} | "
            f"{row.held_out_psnr:.2f} | {seen} | {row.gain:+.2f} | {baselines} | {verdict} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument("reports", nargs="+", type=Path, help="quality.py JSON reports, one per held-out run")
    parser.add_argument(
        "--seen", type=Path, help="quality.py report of the same run with every family seen (its 'seen' rows count)"
    )
    parser.add_argument("--gain", type=float, default=3.0, help="dB over the input a held-out family must gain")
    parser.add_argument("--output", type=Path, default=Path("leave_one_out.json"), help="where the table is saved")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        seen = read_report(args.seen) if args.seen else None
    except DSRIRError as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return 2
    rows: list[HeldOutRow] = []
    for path in args.reports:
        try:
            found = held_out_rows(path, read_report(path), seen)
        except DSRIRError as exc:
            print(f"skipped: {error_line(exc)}", file=sys.stderr)
            continue
        if not found:
            print(f"skipped: {path}: its model held no family out (no 'held out' row)", file=sys.stderr)
        rows += found
    if not rows:
        print("error: no held-out family in any report; train with --hold-out FAMILY and score it", file=sys.stderr)
        return 2
    print(format_table(rows, args.gain))
    passed = sum(row.passes(args.gain) for row in rows)
    print(f"{passed} of {len(rows)} held-out families pass the bar (+{args.gain:g} dB over the input, > NLM/DCP)")
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "gain_db": args.gain,
        "required_baselines": list(REQUIRED_BASELINES),
        "seen": str(args.seen) if args.seen else None,
        "rows": [{**asdict(row), "gain": row.gain, "passes": row.passes(args.gain)} for row in rows],
    }
    write_text_atomic(args.output, json.dumps(result, indent=2) + "\n")
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
