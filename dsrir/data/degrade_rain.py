"""Rain families, light (Rain100L-like) to heavy (Rain100H-like), for training and held-out evaluation.

The synthesis follows the rain model of Yang et al., "Deep Joint Rain Detection and Removal from a Single Image"
(CVPR 2017), which made Rain100L (one layer of streaks) and Rain100H (streaks in several directions):
O = alpha * (B + sum_k S_k) + (1 - alpha) * A, where B is the clean image, S_k a layer of streaks sharing one
direction, and alpha < 1 the veil that the many distant, unresolved drops of heavy rain spread over the scene
like fog, towards the atmospheric light A.

Streak appearance follows Garg and Nayar ("Vision and Rain", IJCV 2007; "Photorealistic Rendering of Rain
Streaks", SIGGRAPH 2006): a falling drop refracts light from a wide field of view, so it is brighter than what it
covers and nearly colourless; it moves far during the exposure, so it is imaged as a motion-blurred, semi-
transparent streak along its image-plane velocity (tilted by wind); nearer drops give longer, wider and brighter
streaks than farther ones. Here each layer is sparse seeds of random strength smeared along a line of
``length`` at ``tilt`` degrees from vertical, widened to ``width`` pixels (full width at half maximum) and added
at ``brightness`` (a fraction of white). The first layer has the drawn parameters; each further layer is a
farther one (length, width and brightness times U[0.5, 1]) turned by U[-spread, spread] degrees.

Lengths and widths are in pixels of a 1080-line image, scaled by ``reference_height / 1080`` (default: the image
height), so a crop gets the streaks its whole photo would get. Training's flip/rotation augmentation later turns a
tilt t into 90 - t as well, so a tilt range held out of training must be closed under that mirror: rain-slanted's
streaks stay within 30..60 degrees, the others within 0..25.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import cv2
import numpy as np

from dsrir.data.degrade import RAIN_REFERENCE_HEIGHT, line_kernel
from dsrir.data.family import Family, Uniform

# A farther layer's length, width and brightness are the first layer's times U[FARTHER_LAYER_SCALE].
FARTHER_LAYER_SCALE = (0.5, 1.0)
SEED_STRENGTH = (0.5, 1.0)


def streak_kernel(length: float, width: float, tilt: float) -> np.ndarray:
    """A line of ``length`` pixels at ``tilt`` degrees from vertical (positive: leaning right at the top),
    ``width`` pixels wide at half maximum, peak 1."""
    kernel = line_kernel(length, 90.0 - tilt)
    # The anti-aliased line is about one pixel wide; a Gaussian of the remaining width widens it.
    sigma = math.sqrt(max(width * width - 1.0, 0.0)) / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    if sigma < 0.25:
        return kernel
    pad = math.ceil(3 * sigma)
    kernel = cv2.copyMakeBorder(kernel, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    kernel = cv2.GaussianBlur(kernel, (0, 0), sigma)
    return kernel / kernel.max()


def streak_layer(
    shape: tuple[int, int],
    rng: np.random.Generator,
    density: float,
    length: float,
    width: float,
    tilt: float,
    brightness: float,
) -> np.ndarray:
    """One layer of parallel streaks as float32 H x W in [0, brightness]; ``density`` is the expected fraction of
    pixels on a streak's centre line, lengths and widths are in pixels of this image."""
    kernel = streak_kernel(length, width, tilt)
    margin = kernel.shape[0] // 2
    height, width_px = shape
    # Seeds on a canvas larger by the streak reach, so streaks enter the image from outside as they would in a crop.
    canvas = (height + 2 * margin, width_px + 2 * margin)
    seeds = np.zeros(canvas, np.float32)
    starts = np.flatnonzero(rng.random(canvas, dtype=np.float32) < density / max(length, 1.0))
    seeds.flat[starts] = rng.uniform(*SEED_STRENGTH, size=starts.size)
    streaks = cv2.filter2D(seeds, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    streaks = streaks[margin : margin + height, margin : margin + width_px]
    return np.minimum(streaks, 1.0) * np.float32(brightness)


def signed_tilt(params: Mapping[str, float]) -> float:
    """The first layer's tilt from vertical in degrees, negative when ``mirror`` is set (leaning left)."""
    return -params["tilt"] if params["mirror"] else params["tilt"]


def synthesise_rain(
    image: np.ndarray, params: Mapping[str, float], rng: np.random.Generator, reference_height: int | None = None
) -> np.ndarray:
    """Yang et al.'s model with ``params`` of a rain family (see the module docstring); RGB uint8 in and out."""
    height, width = image.shape[:2]
    scale = (reference_height or height) / RAIN_REFERENCE_HEIGHT
    rain = np.zeros((height, width), np.float32)
    for layer in range(int(params["layers"])):
        farther = 1.0 if layer == 0 else float(rng.uniform(*FARTHER_LAYER_SCALE))
        turn = 0.0 if layer == 0 else float(rng.uniform(-params["spread"], params["spread"]))
        rain += streak_layer(
            (height, width),
            rng,
            params["density"],
            max(3.0, params["length"] * farther * scale),
            max(1.0, params["width"] * farther * scale),
            signed_tilt(params) + turn,
            params["brightness"] * farther,
        )
    rainy = image.astype(np.float32) + np.minimum(rain, 1.0)[..., None] * np.float32(255.0)
    alpha = np.float32(1.0 - params["veil"])
    rainy = alpha * rainy + (1.0 - alpha) * np.float32(params["veil_light"] * 255.0)
    return np.clip(np.rint(rainy), 0, 255).astype(np.uint8)


def _rain_family(name: str, **ranges: Uniform) -> Family:
    return Family(name, "rain", tuple(ranges.items()), synthesise_rain)


# Parameter order is part of what a seed reproduces: keep it, append new parameters at the end.
RAIN_FAMILIES = (
    # Rain100L-like: one sparse layer of thin streaks near vertical, no veil.
    _rain_family(
        "rain-light",
        layers=Uniform(1, 1, integer=True),
        density=Uniform(0.005, 0.03),
        length=Uniform(20.0, 80.0),
        width=Uniform(1.0, 2.5),
        tilt=Uniform(0.0, 20.0),
        mirror=Uniform(0, 1, integer=True),
        spread=Uniform(0.0, 0.0),
        brightness=Uniform(0.3, 0.8),
        veil=Uniform(0.0, 0.0),
        veil_light=Uniform(0.7, 1.0),
    ),
    # Rain100H-like: two to five dense layers in different directions (within 25 degrees of vertical), long wide
    # bright streaks, and the veil of heavy rain.
    _rain_family(
        "rain-heavy",
        layers=Uniform(2, 5, integer=True),
        density=Uniform(0.01, 0.04),
        length=Uniform(40.0, 160.0),
        width=Uniform(1.5, 4.0),
        tilt=Uniform(0.0, 15.0),
        mirror=Uniform(0, 1, integer=True),
        spread=Uniform(0.0, 10.0),
        brightness=Uniform(0.4, 0.9),
        veil=Uniform(0.05, 0.35),
        veil_light=Uniform(0.7, 1.0),
    ),
    # Wind-driven rain: one to three layers well off vertical (30..60 degrees), a light veil at most.
    _rain_family(
        "rain-slanted",
        layers=Uniform(1, 3, integer=True),
        density=Uniform(0.01, 0.05),
        length=Uniform(30.0, 120.0),
        width=Uniform(1.0, 4.0),
        tilt=Uniform(35.0, 55.0),
        mirror=Uniform(0, 1, integer=True),
        spread=Uniform(0.0, 5.0),
        brightness=Uniform(0.4, 0.9),
        veil=Uniform(0.0, 0.2),
        veil_light=Uniform(0.7, 1.0),
    ),
)
