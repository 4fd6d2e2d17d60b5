"""One picture per benchmark task: input | ours | best baseline | clean, a few crops, one row per image.

Restoration is judged by eye first: a PSNR gain can hide a colour cast or washed-out texture, and a loss can
hide a result that looks better. Each crop is the window where the input differs most from the clean image (the
degradation at its worst) at 1:1 scale, and each panel carries the PSNR of its whole image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

GAP = 4
HEADER = 22
BACKGROUND = (40, 40, 40)
TEXT = (255, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass
class Panel:
    """One image of a row, RGB uint8 (None: the method does not apply), and its caption."""

    image: np.ndarray | None
    caption: str


def worst_window(degraded: np.ndarray, target: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` x ``size`` window with the largest squared difference."""
    error = np.mean((degraded.astype(np.float32) - target.astype(np.float32)) ** 2, axis=2)
    sums = cv2.integral(error, sdepth=cv2.CV_64F)
    windows = sums[size:, size:] - sums[:-size, size:] - sums[size:, :-size] + sums[:-size, :-size]
    top, left = np.unravel_index(int(np.argmax(windows)), windows.shape)
    return int(top), int(left)


def _label(canvas: np.ndarray, text: str, x: int, y: int) -> None:
    (width, height), baseline = cv2.getTextSize(text, FONT, 0.4, 1)
    cv2.rectangle(canvas, (x, y), (x + width + 6, y + height + baseline + 4), (0, 0, 0), -1)
    cv2.putText(canvas, text, (x + 3, y + height + 2), FONT, 0.4, TEXT, 1, cv2.LINE_AA)


def comparison_picture(columns: Sequence[str], rows: Sequence[Sequence[Panel]], crop: int) -> np.ndarray:
    """RGB uint8: a header of ``columns``, then per row the same window of each panel's image (the window where the
    first panel, the input, differs most from the last, the clean image)."""
    side = min([crop, *(min(row[0].image.shape[:2]) for row in rows if row[0].image is not None)])
    height = HEADER + len(rows) * (side + GAP) + GAP
    width = len(columns) * (side + GAP) + GAP
    canvas = np.full((height, width, 3), BACKGROUND, np.uint8)
    for index, name in enumerate(columns):
        cv2.putText(canvas, name, (GAP + index * (side + GAP), HEADER - 7), FONT, 0.45, TEXT, 1, cv2.LINE_AA)
    for row_index, row in enumerate(rows):
        degraded, target = row[0].image, row[-1].image
        if degraded is None or target is None:
            raise ValueError("a row needs its input (first panel) and its clean image (last panel)")
        top, left = worst_window(degraded, target, side)
        y = HEADER + row_index * (side + GAP)
        for index, panel in enumerate(row):
            x = GAP + index * (side + GAP)
            if panel.image is not None:
                canvas[y : y + side, x : x + side] = panel.image[top : top + side, left : left + side]
            else:
                canvas[y : y + side, x : x + side] = (90, 90, 90)
            _label(canvas, panel.caption, x, y)
    return canvas
