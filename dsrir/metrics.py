"""PSNR/SSIM scoring under the two evaluation protocols that DSRIR papers mix.

"paper" reproduces the official test script: rain (every rain label: ``rain``, ``rain-heavy`` ...) is scored on
the BT.601 Y channel, and its Y SSIM is a column-wise 1-D SSIM (skimage is told the last axis of the 2-D Y image
holds channels). "rgb" scores every task on RGB, as PromptIR-lineage papers do. Identical images give PSNR = inf.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dsrir.data.degradations import label_task
from dsrir.errors import DSRIRError

PROTOCOLS = ("paper", "rgb")
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0


def _as_unit_float(image: np.ndarray) -> np.ndarray:
    """uint8 -> [0, 1]; floats are taken as already in [0, 1]. Always H x W x 3 float64."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"expected an H x W x 3 image, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    return array.astype(np.float64)


def _pair(restored: np.ndarray, target: np.ndarray, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Both images clipped to [0, 1] (as the official script does before scoring), optionally as Y."""
    if np.shape(restored) != np.shape(target):
        raise ValueError(f"shape mismatch: restored {np.shape(restored)} vs target {np.shape(target)}")
    a = np.clip(_as_unit_float(restored), 0.0, 1.0)
    b = np.clip(_as_unit_float(target), 0.0, 1.0)
    return (rgb_to_y(a), rgb_to_y(b)) if y_channel else (a, b)


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """BT.601 luma as MATLAB's rgb2ycbcr (studio range 16-235), returned on a [0, 1] scale."""
    return _as_unit_float(image) @ _Y_WEIGHTS + 16.0 / 255.0


def psnr(restored: np.ndarray, target: np.ndarray, y_channel: bool = False) -> float:
    """PSNR in dB with data range 1; inf for identical images."""
    a, b = _pair(restored, target, y_channel)
    if np.array_equal(a, b):  # a clean frame scored against itself; skimage would divide by zero to get there
        return math.inf
    return float(peak_signal_noise_ratio(b, a, data_range=1.0))


def ssim(restored: np.ndarray, target: np.ndarray, y_channel: bool = False, official_y_quirk: bool = False) -> float:
    """SSIM with data range 1 (RGB: per-channel mean). ``official_y_quirk`` only matters with ``y_channel``."""
    a, b = _pair(restored, target, y_channel)
    if y_channel and not official_y_quirk:
        return float(structural_similarity(b, a, data_range=1.0))
    # RGB, or the official Y quirk: on a 2-D image channel_axis=-1 makes every column a separate 1-D signal.
    return float(structural_similarity(b, a, data_range=1.0, channel_axis=-1))


def score(restored: np.ndarray, target: np.ndarray, task: str, protocol: str) -> tuple[float, float]:
    """(PSNR, SSIM) for one image pair under ``protocol``; ``task`` is a task or an evaluation label."""
    if protocol not in PROTOCOLS:
        raise DSRIRError(f"unknown --protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    on_y = protocol == "paper" and label_task(task) == "rain"
    return psnr(restored, target, y_channel=on_y), ssim(restored, target, y_channel=on_y, official_y_quirk=on_y)
