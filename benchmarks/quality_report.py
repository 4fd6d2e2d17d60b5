"""Reading a ``quality.py`` report back, and what a row of its summary holds, for the scripts that compare reports.

A row maps method keys to scores, beside the input's score and the "training" verdict (a
``dsrir.data.family.Coverage``): every other key is a classical method (NLM, CBM3D, DCP). One home for that rule,
so a new column in the report cannot be mistaken for a baseline by one reader and not by another.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dsrir.errors import DSRIRError

INPUT = "input"
DSRIR = "dsrir"
TRAINING = "training"
NOT_BASELINES = (INPUT, DSRIR, TRAINING)


def read_report(path: Path, keys: Sequence[str] = ()) -> dict[str, Any]:
    """A ``quality.py`` report holding a summary and ``keys``, or a one-line error naming the file and what was
    expected."""
    try:
        report = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DSRIRError(f"{path}: not a readable quality.py report ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(report, dict) or not isinstance(report.get("summary"), dict):
        raise DSRIRError(f"{path}: no 'summary' object; expected a report written by benchmarks/quality.py")
    missing = [key for key in keys if key not in report]
    if missing:
        expected = "expected a report written by benchmarks/quality.py"
        raise DSRIRError(f"{path}: no {', '.join(map(repr, missing))}; {expected}")
    return report


def photo_scores(report: Mapping[str, Any], task: str) -> dict[str, float]:
    """The report's DSRIR PSNR per photo for one task."""
    return {row["image"]: row[DSRIR]["psnr"] for row in report["images"] if row["task"] == task}


def baseline_scores(row: Mapping[str, Any]) -> dict[str, float]:
    """Mean PSNR of each classical method in one task's row."""
    return {name: scores["psnr"] for name, scores in row.items() if name not in NOT_BASELINES}
