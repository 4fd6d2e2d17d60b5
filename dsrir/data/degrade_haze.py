"""Haze families, light to dense, homogeneous and not, for training and held-out evaluation.

All follow the atmospheric scattering model (McCartney 1976; Narasimhan and Nayar, "Vision and the Atmosphere",
IJCV 2002) with which RESIDE (Li et al., "Benchmarking Single-Image Dehazing and Beyond", TIP 2019) synthesised its
training sets: I = J t + A (1 - t), t = exp(-beta d). RESIDE's outdoor set (OTS) draws A from 0.8..1 and beta from
0.04..0.2 with depth estimated from each photo. Here:

* depth: no depth is available offline, so d mixes three smooth cues with drawn weights (``ramp``: far at the top,
  as the ground plane recedes; ``luminance``: blurred brightness, as sky and distant scenery are bright;
  ``field``: a random smooth field, for scenes that fit neither), stretched to span ``near``..1 and multiplied by
  HAZE_DEPTH_SCALE, so the farthest pixel has t = exp(-10 beta) as in the v3 generator and OTS's beta keeps its
  meaning (0.04: t = 0.67, 0.2: t = 0.14);
* airlight: level ``airlight`` (fraction of white) and a colour cast of relative size ``tint`` towards hue
  ``tint_hue`` (degrees; 0 red, 120 green, 240 blue): the airlight takes the colour of the light the haze
  scatters (Narasimhan and Nayar's dichromatic model), grey only under an overcast white sky;
* non-homogeneous haze: NH-HAZE (Ancuti, Ancuti and Timofte, CVPR Workshops 2020) recorded real haze that is
  patchy, denser in some places than others at the same depth; it is synthesised as beta varying over the image,
  beta * (1 + patchiness * (2 g - 1)) with g another random smooth field in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import cv2
import numpy as np

from dsrir.data.degrade import HAZE_DEPTH_SCALE, blurred_luminance
from dsrir.data.family import Family, Uniform

# A random smooth field is uniform noise on a grid of FIELD_CELLS + 1 points across the long side, interpolated.
FIELD_CELLS = 4
_CUES = ("ramp", "luminance", "field")


def smooth_field(shape: tuple[int, int], rng: np.random.Generator, cells: int = FIELD_CELLS) -> np.ndarray:
    """A random smooth float32 field of ``shape`` stretched to [0, 1] (a few blobs across the image)."""
    height, width = shape
    long_side = max(height, width)
    grid = (max(2, round(cells * height / long_side) + 1), max(2, round(cells * width / long_side) + 1))
    coarse = rng.random(grid, dtype=np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return _stretch(field)


def _stretch(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-6:
        return np.zeros_like(values, dtype=np.float32)
    return ((values - low) / (high - low)).astype(np.float32)


def haze_depth(image: np.ndarray, params: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    """Pseudo depth in [near, 1] from the weighted cues (see the module docstring); the field costs one draw."""
    height, width = image.shape[:2]
    cues = {
        "ramp": np.broadcast_to(np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None], (height, width)),
        "luminance": blurred_luminance(image),
        "field": smooth_field((height, width), rng),
    }
    weights = np.array([params[cue] for cue in _CUES], np.float32)
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(_CUES), 1 / len(_CUES), np.float32)
    mixed = sum(weight * cues[cue] for weight, cue in zip(weights, _CUES))
    near = np.float32(params["near"])
    return near + (1 - near) * _stretch(np.asarray(mixed, np.float32))


def haze_transmission(image: np.ndarray, params: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    """t = exp(-beta(x) * HAZE_DEPTH_SCALE * d(x)) as float32 H x W; beta(x) is constant unless ``patchiness``."""
    depth = haze_depth(image, params, rng)
    density = np.float32(params["beta"] * HAZE_DEPTH_SCALE) * depth
    if params["patchiness"] > 0:
        patches = smooth_field(depth.shape, rng)
        density *= 1 + np.float32(params["patchiness"]) * (2 * patches - 1)
    return np.exp(-density).astype(np.float32)


def haze_airlight(params: Mapping[str, float]) -> np.ndarray:
    """RGB airlight in [0, 1]: ``airlight`` cast by ``tint`` towards ``tint_hue`` (the channel offsets sum to 0)."""
    hue = math.radians(params["tint_hue"])
    offsets = [math.cos(hue - math.radians(120 * channel)) for channel in range(3)]
    colour = [params["airlight"] * (1 + params["tint"] * offset) for offset in offsets]
    return np.clip(np.array(colour, np.float32), 0.0, 1.0)


def synthesise_haze(
    image: np.ndarray, params: Mapping[str, float], rng: np.random.Generator, reference_height: int | None = None
) -> np.ndarray:
    """I = J t + A (1 - t) with ``params`` of a haze family; RGB uint8 in and out (haze needs no reference size)."""
    transmission = haze_transmission(image, params, rng)[..., None]
    airlight = haze_airlight(params) * np.float32(255.0)
    hazy = image.astype(np.float32) * transmission + airlight * (1 - transmission)
    return np.clip(np.rint(hazy), 0, 255).astype(np.uint8)


def _haze_family(name: str, beta: Uniform, patchiness: Uniform) -> Family:
    ranges = {
        "beta": beta,
        "airlight": Uniform(0.6, 1.0),
        "tint": Uniform(0.0, 0.12),
        "tint_hue": Uniform(0.0, 360.0),
        "near": Uniform(0.0, 0.4),
        "ramp": Uniform(0.0, 1.0),
        "luminance": Uniform(0.0, 1.0),
        "field": Uniform(0.0, 1.0),
        "patchiness": patchiness,
    }
    return Family(name, "haze", tuple(ranges.items()), synthesise_haze)


# Parameter order is part of what a seed reproduces: keep it, append new parameters at the end.
HAZE_FAMILIES = (
    # Light haze, below and into OTS's range: the farthest pixel keeps 37..82 % of the scene.
    _haze_family("haze-light", beta=Uniform(0.02, 0.10), patchiness=Uniform(0.0, 0.0)),
    # Dense haze beyond OTS's range (as in Dense-HAZE, Ancuti et al., ICIP 2019): 5..37 % at the far end.
    _haze_family("haze-dense", beta=Uniform(0.10, 0.30), patchiness=Uniform(0.0, 0.0)),
    # NH-HAZE-like: patchy density, beta varying by up to +-90 % over the image.
    _haze_family("haze-nonhomogeneous", beta=Uniform(0.04, 0.20), patchiness=Uniform(0.4, 0.9)),
)
