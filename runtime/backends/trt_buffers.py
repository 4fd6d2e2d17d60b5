"""Pure sizing for the TensorRT backend: profile fit, tiles and buffer sizes, testable without TensorRT or a GPU.

An engine takes only the shapes its optimisation profile allows; deciding what to do with a frame outside it
(pad up, resize, tile, refuse) and how big each host/device buffer must be is arithmetic, kept here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dsrir.errors import DSRIRError
from dsrir.sizes import round_up

FIT_MODES = ("resize", "tile", "error")
LAYOUTS = ("nchw", "nhwc")
TILE_OVERLAP = 16


@dataclass(frozen=True)
class Profile:
    """Spatial limits of one optimisation profile: (H, W) at min/opt/max; None where unlimited (ONNX Runtime)."""

    min_hw: tuple[int, int] = (1, 1)
    opt_hw: tuple[int, int] | None = None
    max_hw: tuple[int, int] | None = None


@dataclass(frozen=True)
class FitPlan:
    """How a frame of ``frame_hw`` meets the network: ``direct`` (padded only), ``resize`` to ``size`` and back,
    or ``tile`` into ``tiles`` (top, left) boxes of ``size`` each, stitched."""

    mode: str
    size: tuple[int, int]
    tiles: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class BufferPlan:
    """Shapes and byte counts of the input and output bindings for one batch of frames."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_bytes: int
    output_bytes: int


def padded_hw(hw: tuple[int, int], multiple: int, profile: Profile | None = None) -> tuple[int, int]:
    """The network size for a frame: up to ``multiple``, and at least the profile's minimum."""
    low = profile.min_hw if profile else (1, 1)
    return (
        round_up(max(hw[0], low[0]), multiple),
        round_up(max(hw[1], low[1]), multiple),
    )


def fits(hw: tuple[int, int], multiple: int, profile: Profile | None) -> bool:
    if profile is None or profile.max_hw is None:
        return True
    h, w = padded_hw(hw, multiple, profile)
    return h <= profile.max_hw[0] and w <= profile.max_hw[1]


def _floor_multiple(value: int, multiple: int) -> int:
    return max(multiple, value // multiple * multiple)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of equal ``tile``-long windows covering ``length`` with at least ``overlap`` shared; the last
    window is pulled back inside the frame so every tile has the same size (one buffer plan for all)."""
    if tile >= length:
        return [0]
    step = max(1, tile - overlap)
    count = math.ceil((length - tile) / step) + 1
    starts = [min(i * step, length - tile) for i in range(count)]
    return sorted(set(starts))


def fit_frame(hw: tuple[int, int], multiple: int, profile: Profile | None, mode: str) -> FitPlan:
    """What to do with a frame the profile may not take (``--fit``); DSRIRError for ``error`` or a bad mode."""
    if mode not in FIT_MODES:
        raise DSRIRError(f"--fit {mode!r}: expected one of {', '.join(FIT_MODES)}")
    if fits(hw, multiple, profile):
        return FitPlan("direct", hw)
    assert profile is not None and profile.max_hw is not None
    max_h, max_w = _floor_multiple(profile.max_hw[0], multiple), _floor_multiple(profile.max_hw[1], multiple)
    if mode == "error":
        raise DSRIRError(
            f"a {hw[1]}x{hw[0]} frame is larger than the engine's profile maximum {profile.max_hw[1]}x"
            f"{profile.max_hw[0]}: pass --fit resize or --fit tile, or rebuild the engine with larger --max-shape"
        )
    if mode == "resize":
        scale = min(max_h / hw[0], max_w / hw[1])
        size = (max(1, min(max_h, int(hw[0] * scale))), max(1, min(max_w, int(hw[1] * scale))))
        return FitPlan("resize", size)
    tile = (min(max_h, hw[0]), min(max_w, hw[1]))
    overlap = min(TILE_OVERLAP, tile[0] // 4, tile[1] // 4)
    tops, lefts = tile_starts(hw[0], tile[0], overlap), tile_starts(hw[1], tile[1], overlap)
    return FitPlan("tile", tile, tuple((top, left) for top in tops for left in lefts))


def plan_buffers(
    hw: tuple[int, int],
    dtype: np.dtype | type,
    layout: str,
    batch: int = 1,
    output_dtype: np.dtype | type | None = None,
) -> BufferPlan:
    """Binding shapes and sizes for a network-sized (padded) ``hw``; size buffers with the profile maximum so a
    later, smaller frame reuses them. ``output_dtype`` defaults to the input's (the engine says each)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}: expected one of {LAYOUTS}")
    shape = (batch, 3, hw[0], hw[1]) if layout == "nchw" else (batch, hw[0], hw[1], 3)
    count = int(np.prod(shape))
    out_itemsize = np.dtype(output_dtype if output_dtype is not None else dtype).itemsize
    return BufferPlan(shape, shape, count * np.dtype(dtype).itemsize, count * out_itemsize)


def profile_candidates(slot: int, profiles: int) -> list[int]:
    """Optimisation profiles to try for execution context ``slot`` whose engine has ``profiles`` profiles.

    Profile 0 first: every context shares it on TensorRT 10+, and on 8.6 when the engine was built with
    ``PreviewFeature.PROFILE_SHARING_0806``. Otherwise (8.5, or 8.6 without sharing) a profile serves one context
    at a time (NvInferRuntime.h at v8.6.1, ``createExecutionContext``/``getOptimizationProfile``), so the slot's
    own profile comes next when the engine has one per slot.
    """
    return [0] + ([slot] if 0 < slot < profiles else [])


def needs_realloc(current: BufferPlan | None, wanted: BufferPlan) -> bool:
    """True when the allocated buffers are too small for ``wanted`` (bigger ones are reused)."""
    return current is None or wanted.input_bytes > current.input_bytes or wanted.output_bytes > current.output_bytes


def profile_from_shapes(
    min_shape: tuple[int, ...], opt_shape: tuple[int, ...], max_shape: tuple[int, ...], layout: str
) -> Profile:
    """A Profile from TensorRT's (min, opt, max) input shapes in ``layout``."""
    first = 2 if layout == "nchw" else 1

    def pick(shape: tuple[int, ...]) -> tuple[int, int]:
        return int(shape[first]), int(shape[first + 1])

    return Profile(pick(min_shape), pick(opt_shape), pick(max_shape))
