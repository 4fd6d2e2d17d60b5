"""``--fit``: what to do with a frame a backend cannot take whole (pad, resize, tile or refuse), as pure arithmetic.

An engine takes only the shapes its optimisation profile allows; a frame beyond it is resized, tiled (with
:mod:`dsrir.tiling`, the same tiles and blending as ``python -m dsrir.restore``) or refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsrir.errors import DSRIRError
from dsrir.tiling import TilePlan, auto_overlap, plan_tiles, round_up

FIT_MODES = ("resize", "tile", "error")


@dataclass(frozen=True)
class Profile:
    """Spatial limits of one optimisation profile: (H, W) at min/opt/max; None where unlimited (ONNX Runtime)."""

    min_hw: tuple[int, int] = (1, 1)
    opt_hw: tuple[int, int] | None = None
    max_hw: tuple[int, int] | None = None


@dataclass(frozen=True)
class FitPlan:
    """How a frame of ``frame_hw`` meets the network: ``direct`` (padded only), ``resize`` to ``size`` and back,
    or ``tile`` by ``tiling`` (tiles of ``size``), blended."""

    mode: str
    size: tuple[int, int]
    tiling: TilePlan | None = None


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


def fit_frame(
    hw: tuple[int, int], multiple: int, profile: Profile | None, mode: str, memory_tile: tuple[int, int] | None = None
) -> FitPlan:
    """What to do with a frame the profile may not take (``--fit``); DSRIRError for ``error`` or a bad mode.

    ``memory_tile`` is the largest tile ``--max-memory`` allows (:func:`dsrir.memory_budget.tile_for_budget`), None
    when the whole frame fits the budget. A frame over the budget only is tiled, as the offline Restorer does,
    unless ``--fit resize`` asks for a smaller frame instead; ``error`` is for what no tiling of memory can fix."""
    if mode not in FIT_MODES:
        raise DSRIRError(f"--fit {mode!r}: expected one of {', '.join(FIT_MODES)}")
    over_profile = not fits(hw, multiple, profile)
    if not over_profile and memory_tile is None:
        return FitPlan("direct", hw)
    box = memory_tile or (hw[0], hw[1])
    if over_profile:
        assert profile is not None and profile.max_hw is not None
        if mode == "error":
            raise DSRIRError(
                f"a {hw[1]}x{hw[0]} frame is larger than the engine's profile maximum {profile.max_hw[1]}x"
                f"{profile.max_hw[0]}: pass --fit resize or --fit tile, or rebuild the engine with larger --max-shape"
            )
        max_h, max_w = _floor_multiple(profile.max_hw[0], multiple), _floor_multiple(profile.max_hw[1], multiple)
        box = (min(box[0], max_h), min(box[1], max_w))
    if mode == "resize":
        scale = min(box[0] / hw[0], box[1] / hw[1])
        size = (max(1, min(box[0], int(hw[0] * scale))), max(1, min(box[1], int(hw[1] * scale))))
        return FitPlan("resize", size)
    tiling = plan_tiles(hw, box, auto_overlap(box))
    return FitPlan("tile", tiling.tile_hw, tiling)
