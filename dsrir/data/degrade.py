"""Synthetic degradations (Gaussian noise, Rain100L-like streaks, OTS-like haze) on RGB uint8 images.

This is the ``v3`` generator, which trained the shipped weights up to v3 and stays unchanged so those runs
reproduce (``python -m train --degradations v3``); new training draws from the families of
``dsrir.data.degradations``, which reuse its noise, streak line and luminance cue.

Real rain and haze training pairs cannot be obtained offline, so they are synthesised from clean photos. Every
function takes its randomness from the ``np.random.Generator`` it is given, so a seeded generator reproduces the
image exactly. Costs stay at a few milliseconds for a 256 x 256 crop.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

NOISE_SIGMA_MAX = 55
AIRLIGHTS = (0.8, 0.85, 0.9, 0.95, 1.0)
BETAS = (0.04, 0.06, 0.08, 0.1, 0.12, 0.16, 0.2)
# Depth (in [0, 1]) is multiplied by this before t = exp(-beta * d): the far end then has t = 0.67 at beta 0.04
# (light haze) and t = 0.14 at beta 0.2 (heavy haze), the span of RESIDE OTS.
HAZE_DEPTH_SCALE = 10.0
RAIN_REFERENCE_HEIGHT = 1080
RAIN_LENGTH_RANGE = (20.0, 60.0)
RAIN_ANGLE_RANGE = (80.0, 100.0)
RAIN_DENSITY_RANGE = (0.01, 0.04)
RAIN_WEIGHT_RANGE = (0.35, 0.65)


def add_gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Training noise as in the official loader: uint8 image + N(0, sigma), clipped to [0, 255].

    The official loader truncates to uint8, which darkens every noisy pixel by half a level on average; this rounds
    instead so the network is not taught a brightness shift. (Evaluation keeps the official truncation.)
    """
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    noisy = image.astype(np.float32) + noise * np.float32(sigma)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def add_rain(
    image: np.ndarray,
    rng: np.random.Generator,
    density: float | None = None,
    length: float | None = None,
    angle: float | None = None,
    weight: float | None = None,
    reference_height: int | None = None,
) -> np.ndarray:
    """One light layer of rain streaks (Rain100L-like): sparse noise motion-blurred along ``angle``.

    ``density`` is roughly the fraction of pixels covered by streaks, ``length`` the streak length in pixels of a
    1080-line image (scaled by ``reference_height / 1080``; ``reference_height`` defaults to the image height, so a
    crop of a large photo gets the streaks the whole photo would get), ``angle`` in degrees from horizontal
    (90 = vertical), ``weight`` the streak brightness as a fraction of white. Unset parameters are drawn from ``rng``.
    """
    drawn = _draw_rain_params(rng) if None in (density, length, angle, weight) else {}
    density = drawn["density"] if density is None else density
    length = drawn["length"] if length is None else length
    angle = drawn["angle"] if angle is None else angle
    weight = drawn["weight"] if weight is None else weight
    height, width = image.shape[:2]
    scale = (reference_height or height) / RAIN_REFERENCE_HEIGHT
    streak_length = max(3.0, length * scale)
    kernel = line_kernel(streak_length, angle)
    margin = kernel.shape[0] // 2
    # Seeds on a canvas larger by the streak reach, so streaks enter the image from outside as they would in a crop.
    canvas = (height + 2 * margin, width + 2 * margin)
    seeds = np.zeros(canvas, np.float32)
    starts = np.flatnonzero(rng.random(canvas, dtype=np.float32) < density / streak_length)
    seeds.flat[starts] = rng.uniform(0.6, 1.0, size=starts.size)
    streaks = cv2.filter2D(seeds, -1, kernel, borderType=cv2.BORDER_CONSTANT)[margin:-margin, margin:-margin]
    streaks = cv2.GaussianBlur(streaks, (0, 0), 0.6)
    rain = np.minimum(streaks, 1.0) * np.float32(weight * 255.0)
    return np.clip(np.rint(image.astype(np.float32) + rain[..., None]), 0, 255).astype(np.uint8)


def _draw_rain_params(rng: np.random.Generator) -> dict[str, float]:
    return {
        "density": float(rng.uniform(*RAIN_DENSITY_RANGE)),
        "length": float(rng.uniform(*RAIN_LENGTH_RANGE)),
        "angle": float(rng.uniform(*RAIN_ANGLE_RANGE)),
        "weight": float(rng.uniform(*RAIN_WEIGHT_RANGE)),
    }


def line_kernel(length: float, angle: float) -> np.ndarray:
    """An anti-aliased line of ``length`` pixels through the centre of an odd square, peak 1 (not normalised)."""
    size = 2 * math.ceil(length / 2) + 1
    kernel = np.zeros((size, size), np.float32)
    centre = size // 2
    dx, dy = math.cos(math.radians(angle)) * length / 2, -math.sin(math.radians(angle)) * length / 2
    shift = 4  # sub-pixel end points
    points = [(round((centre + s * dx) * (1 << shift)), round((centre + s * dy) * (1 << shift))) for s in (-1, 1)]
    cv2.line(kernel, points[0], points[1], 1.0, 1, cv2.LINE_AA, shift)
    return kernel


def synthetic_depth(image: np.ndarray) -> np.ndarray:
    """Smooth pseudo depth in [0, 1], standing in for the estimated depth RESIDE uses (unavailable here).

    A vertical ramp (far at the top, as in most outdoor photos) plus heavily blurred luminance (bright regions such
    as sky tend to be far), offset so that even the nearest pixels get a little haze, as in OTS.
    """
    ramp = np.linspace(1.0, 0.0, image.shape[0], dtype=np.float32)[:, None]
    return np.clip(0.2 + 0.55 * ramp + 0.25 * blurred_luminance(image), 0.0, 1.0).astype(np.float32)


def blurred_luminance(image: np.ndarray) -> np.ndarray:
    """Luminance in [0, 1] blurred to a few dozen cells across the long side: a depth cue, not an image."""
    height, width = image.shape[:2]
    luminance = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    # Blur at low resolution: the same smooth result at a fraction of the cost of a wide Gaussian.
    small_size = (max(1, round(width * 32 / max(height, width))), max(1, round(height * 32 / max(height, width))))
    small = cv2.GaussianBlur(cv2.resize(luminance, small_size, interpolation=cv2.INTER_AREA), (0, 0), 3.0)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def add_haze(
    image: np.ndarray,
    rng: np.random.Generator,
    airlight: float | None = None,
    beta: float | None = None,
    depth: np.ndarray | None = None,
) -> np.ndarray:
    """Atmospheric scattering I = J t + A (1 - t), t = exp(-beta * HAZE_DEPTH_SCALE * depth), as RESIDE OTS.

    ``airlight`` (fraction of white) and ``beta`` are drawn from the OTS values when unset; ``depth`` defaults to
    :func:`synthetic_depth`.
    """
    airlight = float(rng.choice(AIRLIGHTS)) if airlight is None else airlight
    beta = float(rng.choice(BETAS)) if beta is None else beta
    depth = synthetic_depth(image) if depth is None else depth
    if depth.shape != image.shape[:2]:
        raise ValueError(f"depth is {depth.shape}, expected {image.shape[:2]}")
    transmission = np.exp(-beta * HAZE_DEPTH_SCALE * depth.astype(np.float32))[..., None]
    hazy = image.astype(np.float32) * transmission + np.float32(airlight * 255.0) * (1.0 - transmission)
    return np.clip(np.rint(hazy), 0, 255).astype(np.uint8)


def degrade(
    image: np.ndarray, task: str, rng: np.random.Generator, reference_height: int | None = None
) -> tuple[np.ndarray, dict[str, float]]:
    """Apply a random ``task`` degradation with the training ranges; return the image and the parameters used."""
    if task == "noise":
        sigma = int(rng.integers(0, NOISE_SIGMA_MAX + 1))
        return add_gaussian_noise(image, sigma, rng), {"sigma": sigma}
    if task == "rain":
        params = _draw_rain_params(rng)
        return add_rain(image, rng, reference_height=reference_height, **params), params
    if task == "haze":
        airlight, beta = float(rng.choice(AIRLIGHTS)), float(rng.choice(BETAS))
        return add_haze(image, rng, airlight=airlight, beta=beta), {"airlight": airlight, "beta": beta}
    raise ValueError(f"unknown task {task!r}; expected one of noise, rain, haze")
