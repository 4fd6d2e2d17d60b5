"""One tiling policy (dsrir.tiling) offline and live: tiles cover the image with equal windows, ramps blend them, and
the same image restored in tiles by the Restorer (PyTorch) and by the runtime (ONNX Runtime, ``--fit tile``) comes
out with the same pixels, up to rounding."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dsrir.checkpoint import load_model
from dsrir.memory_budget import FIXED_BYTES, FRAME_BYTES_PER_PIXEL, activation_bytes_per_pixel, tile_for_budget
from dsrir.model import Restorer
from dsrir.restore import main as restore_main
from dsrir.tiling import TileBlender, auto_overlap, edge_ramp, plan_tiles, tile_starts
from runtime.backends import Backend, open_backend
from runtime.fit import Profile
from runtime.frames import FrameRunner
from runtime.video import main as video_main
from tests.conftest import natural_like_image
from tests.paths import SHIPPED_CHECKPOINT, SHIPPED_ONNX


def assert_same_pixels_up_to_rounding(offline: np.ndarray, live: np.ndarray) -> None:
    """PyTorch and ONNX Runtime compute the same float image with different kernels, and which kernels depends on
    the CPU (AVX-512 machines round differently from AVX2 ones in the last bits), so a value on a rounding boundary
    may land one grey level apart. A different tiling (tile size, overlap, blend) moves whole bands, and by more."""
    difference = np.abs(offline.astype(int) - live.astype(int))
    differing = np.count_nonzero(difference)
    assert difference.max() <= 1, f"{differing} values differ, by up to {difference.max()}"
    assert differing <= 0.005 * difference.size, f"{differing} of {difference.size} values differ by one"


def test_tile_starts_cover_the_length_with_equal_windows() -> None:
    assert tile_starts(100, 64, 16) == (0, 36)
    assert tile_starts(64, 64, 16) == (0,) and tile_starts(40, 64, 16) == (0,)
    starts = tile_starts(1000, 256, 32)
    assert starts[0] == 0 and starts[-1] == 1000 - 256
    assert all(b - a <= 256 - 32 for a, b in zip(starts, starts[1:]))


def test_plan_tiles_covers_the_image_and_keeps_short_sides_whole() -> None:
    plan = plan_tiles((100, 30), (48, 48), 12)
    assert plan.tile_hw == (48, 30) and plan.tops == (0, 36, 52) and plan.lefts == (0,) and len(plan) == 3
    covered = np.zeros(plan.image_hw, int)
    for top, left in plan.boxes():
        covered[top : top + 48, left : left + 30] += 1
    assert covered.min() >= 1
    assert auto_overlap((48, 64)) == 12 and auto_overlap((512, 640)) == 32 and auto_overlap((512, 512), 8) == 8


def test_ramps_rise_only_towards_neighbours() -> None:
    assert np.array_equal(edge_ramp(0, 8, 8, 4), np.ones(8, np.float32))  # alone: flat
    first, last = edge_ramp(0, 8, 12, 4), edge_ramp(4, 8, 12, 4)
    assert first[0] == 1 and first[-1] == 0.25 and last[0] == 0.25 and last[-1] == 1
    assert (first > 0).all() and (last > 0).all()


def test_blending_reproduces_an_image_all_tiles_agree_on() -> None:
    """Weights sum to one everywhere: tiles that are crops of one image blend back to exactly that image."""
    image = np.random.default_rng(0).random((2, 3, 50, 70), dtype=np.float32)
    plan = plan_tiles((50, 70), (24, 32), 8)
    blender = TileBlender(plan, (2, 3))
    for top, left in plan.boxes():
        blender.add(top, left, image[..., top : top + 24, left : left + 32])
    np.testing.assert_allclose(blender.result(), image, rtol=1e-6)


def test_offline_and_live_tiles_give_the_same_pixels() -> None:
    rgb = natural_like_image(60, 84, seed=5)  # neither side a multiple of 8: tiles at the edges are padded
    tile, overlap = 48, 12  # the runtime's overlap for 48-pixel tiles: a quarter of the tile
    model, _ = load_model(SHIPPED_CHECKPOINT, "cpu")
    offline = Restorer(model, tile=tile, tile_overlap=overlap)(rgb)
    backend = open_backend(SHIPPED_ONNX, "onnxruntime")
    backend.profile = Profile(max_hw=(tile, tile))  # an engine that takes at most 48 x 48: --fit tile
    live = cv2.cvtColor(FrameRunner(backend, "tile").run(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)), cv2.COLOR_BGR2RGB)
    assert_same_pixels_up_to_rounding(offline, live)


def test_dsrir_restore_and_runtime_video_tile_one_photo_alike(tmp_path: Path) -> None:
    """The same budget gives the same tiles offline and live: ``python -m dsrir.restore --max-memory`` and
    ``python -m runtime.video --fit tile --max-memory`` on an image folder write the same pixels."""
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "photo.png"), cv2.cvtColor(natural_like_image(60, 84, seed=6), cv2.COLOR_RGB2BGR))
    per_pixel = activation_bytes_per_pixel(72)  # the shipped weights' widest convolution, in both files
    budget = FIXED_BYTES + FRAME_BYTES_PER_PIXEL * 60 * 84 + per_pixel * 50 * 50
    assert tile_for_budget(budget, (60, 84), per_pixel, 8) == (48, 48)  # 6 tiles
    offline, live = tmp_path / "offline", tmp_path / "live"
    argv = [str(photos), "-o", str(offline), "--checkpoint", str(SHIPPED_CHECKPOINT), "--device", "cpu"]
    assert restore_main([*argv, "--max-memory", str(budget)]) == 0
    argv = ["--input", str(photos), "--output", f"{live}/", "--model", str(SHIPPED_ONNX), "--fit", "tile"]
    assert video_main([*argv, "--max-memory", str(budget), "--no-progress"]) == 0
    assert_same_pixels_up_to_rounding(cv2.imread(str(offline / "photo.png")), cv2.imread(str(live / "photo.png")))


class Uint8Identity(Backend):
    """A uint8-I/O backend (BGR N x H x W x 3 in and out, as the frame-I/O graphs) that takes at most 32 x 40."""

    name, precision, io, size_multiple, description, max_batch = "fake", "int8", "uint8", 8, "fake", None
    profile, activation_bytes_per_pixel = Profile((8, 8), (32, 32), (32, 40)), None

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return batch.copy()

    def close(self) -> None:
        pass


def test_uint8_frame_io_tiles_blend_back_to_the_frame() -> None:
    frame = cv2.cvtColor(natural_like_image(70, 90, seed=3), cv2.COLOR_RGB2BGR)
    assert np.array_equal(FrameRunner(Uint8Identity(), "tile").run(frame), frame)  # type: ignore[arg-type]
