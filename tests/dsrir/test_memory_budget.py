"""``--max-memory``: sizes parse, the tile follows from the budget (dsrir.memory_budget), and the Restorer and the
runtime both tile a frame whose activations would not fit; the runtime also splits batches to fit."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from dsrir.errors import DSRIRError
from dsrir.memory_budget import (
    FIXED_BYTES,
    FRAME_BYTES_PER_PIXEL,
    activation_bytes_per_pixel,
    images_per_inference,
    size_argument,
    tile_for_budget,
)
from runtime.backends import Backend
from runtime.fit import Profile, fit_frame
from runtime.frames import FrameRunner

SHIPPED = activation_bytes_per_pixel(72)  # the shipped edge weights: widest convolution 72 channels


def test_sizes_parse_in_decimal_and_binary_units() -> None:
    assert size_argument("3GB") == 3 * 10**9 and size_argument("512MB") == 512 * 10**6
    assert size_argument("2.5GiB") == int(2.5 * 2**30) and size_argument(" 3 gb ") == 3 * 10**9
    assert size_argument("700000000") == 7 * 10**8 and size_argument("1KiB") == 1024
    for bad in ("3XB", "-1GB", "0", "", "GB", "3 G B"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected a positive size such as 3GB"):
            size_argument(bad)


def test_a_photo_that_fits_is_restored_whole() -> None:
    assert tile_for_budget(3 * 10**9, (720, 1280), SHIPPED, 8) is None


def test_the_default_budget_tiles_large_photos_and_stays_inside_it() -> None:
    budget = 3 * 10**9
    for hw in ((4000, 4000), (4000, 6000), (1080, 1920)):
        tile = tile_for_budget(budget, hw, SHIPPED, 8)
        assert tile is not None and tile[0] % 8 == 0 and tile[1] % 8 == 0 and min(tile) >= 32
        planned = FIXED_BYTES + FRAME_BYTES_PER_PIXEL * hw[0] * hw[1] + SHIPPED * tile[0] * tile[1]
        assert planned <= budget
        bigger = (tile[0] + 8) * (tile[1] + 8)
        assert FIXED_BYTES + FRAME_BYTES_PER_PIXEL * hw[0] * hw[1] + SHIPPED * bigger > budget  # the largest that fits
    assert tile_for_budget(budget, (4000, 4000), SHIPPED, 8) == (912, 912)


def test_a_short_side_is_taken_whole_and_the_long_side_gets_the_rest() -> None:
    tile = tile_for_budget(2 * 10**9, (200, 20000), SHIPPED, 8)
    assert tile is not None and tile[0] == 200 and tile[1] > 952 and tile[1] % 8 == 0
    tall = tile_for_budget(2 * 10**9, (20000, 197), SHIPPED, 8)
    assert tall is not None and tall[1] == 200 and tall[0] > 952  # the short side padded to the size multiple


def test_several_images_at_once_share_the_budget() -> None:
    one, two = (
        tile_for_budget(3 * 10**9, (2000, 2000), SHIPPED, 8),
        tile_for_budget(3 * 10**9, (2000, 2000), SHIPPED, 8, 2),
    )
    assert one is not None and two is not None and two[0] < one[0]
    assert images_per_inference(3 * 10**9, (360, 640), 4, SHIPPED, 8) == 4
    assert images_per_inference(3 * 10**9, (1080, 1920), 4, SHIPPED, 8) == 1  # even one does not fit: 1, tiled
    assert images_per_inference(3 * 10**9, (540, 960), 4, SHIPPED, 8) == 2


def test_a_budget_too_small_for_any_tile_is_one_line_naming_the_flag() -> None:
    with pytest.raises(DSRIRError, match=r"--max-memory 600 MB: too little for a 6000x4000 image; it needs at least"):
        tile_for_budget(600 * 10**6, (4000, 6000), SHIPPED, 8)


def test_fit_frame_tiles_a_frame_over_the_budget_unless_resize_is_asked() -> None:
    tiled = fit_frame((4000, 6000), 8, None, "error", (760, 760))
    assert tiled.mode == "tile" and tiled.tiling is not None and tiled.size == (760, 760) and tiled.tiling.overlap == 32
    resized = fit_frame((4000, 6000), 8, None, "resize", (760, 760))
    assert resized.mode == "resize" and resized.size[1] <= 760 and resized.size[0] <= 760
    both = fit_frame((4000, 6000), 8, Profile(max_hw=(512, 1024)), "tile", (760, 760))
    assert both.size == (512, 760)  # the smaller of the profile and the budget on each side
    with pytest.raises(DSRIRError, match="profile maximum"):
        fit_frame((4000, 6000), 8, Profile(max_hw=(512, 1024)), "error", (760, 760))
    assert fit_frame((4000, 6000), 8, None, "error", None).mode == "direct"


class Identity(Backend):
    """A float-I/O backend that costs ``activation_bytes_per_pixel`` and records the batch and tile sizes it sees."""

    name, precision, io, size_multiple, profile, description, max_batch = "fake", "fp32", "float", 8, None, "fake", None
    activation_bytes_per_pixel = SHIPPED

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.shapes.append(batch.shape)
        return batch.copy()

    def close(self) -> None:
        pass


def test_the_runtime_tiles_and_splits_batches_by_the_budget() -> None:
    frames = [np.random.default_rng(i).integers(0, 256, (120, 200, 3), np.uint8) for i in range(4)]
    whole = FIXED_BYTES + FRAME_BYTES_PER_PIXEL * 120 * 200 + SHIPPED * 120 * 200
    backend = Identity()
    out = FrameRunner(backend, "error", max_memory=whole - SHIPPED * 64 * 120).run(frames[0])
    assert np.array_equal(out, frames[0]) and len(backend.shapes) > 1  # tiles of an identity blend back exactly
    assert all(shape[2:] == backend.shapes[0][2:] for shape in backend.shapes)  # equal tiles
    backend = Identity()
    two = FIXED_BYTES + FRAME_BYTES_PER_PIXEL * 120 * 200 * 4 + 2 * SHIPPED * 120 * 200
    results = FrameRunner(backend, "error", max_memory=two).run_batch(frames)
    assert [shape[0] for shape in backend.shapes] == [2, 2]
    assert all(np.array_equal(a, b) for a, b in zip(results, frames))
    backend = Identity()
    FrameRunner(backend, "error").run_batch(frames)  # no budget: one inference
    assert [shape[0] for shape in backend.shapes] == [4]
