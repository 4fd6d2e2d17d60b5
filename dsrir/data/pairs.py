"""Training pairs from the official CSV files, and a deterministic hold-out split.

The official loader eats the first row as a header and trusts every path; here every row counts, only a literal
header row is skipped, and every problem is reported as ``file:line`` before training starts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from dsrir.errors import DSRIRError

TASKS = ("noise", "rain", "haze")

CLEAN_ONLY_SOURCES = ("BSD400", "WED")
_HEADER_WORDS = {"target", "degraded", "gt", "clean", "input", "lq", "hq"}
# "rain" but not the "rain" inside "train" (every official path has a train/ folder).
_RAIN = re.compile(r"(?<!t)rain", re.IGNORECASE)
_HAZE = re.compile(r"haz[ey]|reside", re.IGNORECASE)
_OTS = re.compile(r"(?<![A-Za-z])OTS(?![a-z])")

T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True)
class Pair:
    """One training row; ``degraded`` is None for clean-only rows, which get noise on the fly."""

    target: Path
    degraded: Path | None
    task: str


def read_pairs_csv(
    csv_path: str | os.PathLike[str], train_dir: str | os.PathLike[str], check_files: bool = True
) -> list[Pair]:
    """Parse ``target,degraded`` (or ``target | degraded``) rows, paths relative to ``train_dir``.

    With ``check_files`` every referenced image is checked up front, so a wrong ``--train-dir`` fails in a second
    instead of hours into an epoch.
    """
    csv_path, train_dir = Path(csv_path), Path(train_dir)
    rows = _read_rows(csv_path)
    pairs = [_row_to_pair(csv_path, lineno, target, degraded, train_dir) for lineno, target, degraded in rows]
    if not pairs:
        raise DSRIRError(f"{csv_path}: no pairs; expected lines of 'target,degraded'")
    if check_files:
        _check_files(csv_path, train_dir, [lineno for lineno, _, _ in rows], pairs)
    return pairs


def _read_rows(csv_path: Path) -> list[tuple[int, str, str]]:
    if not csv_path.is_file():
        raise DSRIRError(f"{csv_path}: CSV file not found")
    try:
        lines = csv_path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DSRIRError(f"{csv_path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    rows: list[tuple[int, str, str]] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split("|" if "|" in line else ",")]
        if len(fields) != 2 or not all(fields):
            raise DSRIRError(f"{csv_path}:{lineno}: expected 'target,degraded' (two image paths), got {line!r}")
        if not rows and {field.lower() for field in fields} <= _HEADER_WORDS:
            continue
        rows.append((lineno, fields[0].replace("\\", "/"), fields[1].replace("\\", "/")))
    return rows


def _row_to_pair(csv_path: Path, lineno: int, target: str, degraded: str, train_dir: Path) -> Pair:
    if target.split("/", 1)[0].upper() in CLEAN_ONLY_SOURCES:
        return Pair(train_dir / target, None, "noise")
    both = f"{target} {degraded}"
    if _RAIN.search(both):
        task = "rain"
    elif _HAZE.search(both) or _OTS.search(both):
        task = "haze"
    else:
        raise DSRIRError(
            f"{csv_path}:{lineno}: cannot tell the task of {target!r}; expected a target under BSD400/ or WED/ "
            "(noise), a path containing 'rain' (rain) or 'hazy'/'haze'/'Reside'/'OTS' (haze)"
        )
    return Pair(train_dir / target, train_dir / degraded, task)


def _check_files(csv_path: Path, train_dir: Path, linenos: list[int], pairs: list[Pair]) -> None:
    if not train_dir.is_dir():
        raise DSRIRError(f"{csv_path}: train dir {train_dir} is not a folder")
    exists: dict[Path, bool] = {}
    missing: list[tuple[int, Path]] = []
    for lineno, pair in zip(linenos, pairs):
        for path in (pair.target, pair.degraded):
            if path is None:
                continue
            if path not in exists:
                exists[path] = path.is_file()
            if not exists[path]:
                missing.append((lineno, path))
    if missing:
        lineno, path = missing[0]
        count = len({path for _, path in missing})
        raise DSRIRError(
            f"{csv_path}:{lineno}: image not found: {path} ({count} referenced image(s) missing in total; "
            f"is --train-dir {train_dir} right?)"
        )


def split_holdout(items: Sequence[T], fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """Split into (train, validation), both in the original order, the same for the same seed.

    Equal items (the official CSV repeats each Rain100L pair 25 times) always land on the same side, so validation
    never scores an image the network trained on.
    """
    if not 0.0 <= fraction < 1.0:
        raise DSRIRError(f"validation fraction {fraction} is out of range; expected 0 <= fraction < 1")
    distinct = list(dict.fromkeys(items))
    if fraction == 0 or len(distinct) < 2:
        return list(items), []
    count = min(len(distinct) - 1, max(1, round(len(distinct) * fraction)))
    order = np.random.default_rng(seed).permutation(len(distinct))
    held_out = {distinct[i] for i in order[:count]}
    train = [item for item in items if item not in held_out]
    validation = [item for item in items if item in held_out]
    return train, validation
