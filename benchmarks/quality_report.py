"""What a row of a ``quality.py`` report's summary holds, for the scripts that read the JSON back.

A row maps method keys to scores, beside the input's score and the "training" verdict (a
``dsrir.data.family.Coverage``): every other key is a classical method (NLM, CBM3D, DCP). One home for that rule,
so a new column in the report cannot be mistaken for a baseline by one reader and not by another.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

INPUT = "input"
DSRIR = "dsrir"
TRAINING = "training"
NOT_BASELINES = (INPUT, DSRIR, TRAINING)


def baseline_scores(row: Mapping[str, Any]) -> dict[str, float]:
    """Mean PSNR of each classical method in one task's row."""
    return {name: scores["psnr"] for name, scores in row.items() if name not in NOT_BASELINES}
