"""Image files in: photos come upright (EXIF orientation applied), every other layout as stored."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest

from dsrir.imageio import read_image, read_image_raw
from dsrir.restore import main as restore_main
from tests.paths import SHIPPED_CHECKPOINT

ROTATE_90_CW = 6  # EXIF Orientation: the stored image must be turned 90 degrees clockwise to stand upright


def jpeg_with_orientation(path: Path, pixels: np.ndarray, orientation: int) -> None:
    """A JPEG of ``pixels`` (RGB) whose EXIF says ``orientation``, as a phone held sideways writes it."""
    image = pytest.importorskip("PIL.Image")
    exif = image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.fromarray(pixels).save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    path.write_bytes(buffer.getvalue())


def stored_pixels() -> np.ndarray:
    """16 wide, 8 high: white on the left half, black on the right (a shape a rotation cannot hide)."""
    pixels = np.zeros((8, 16, 3), np.uint8)
    pixels[:, :8] = 255
    return pixels


def test_a_jpeg_with_exif_orientation_is_read_upright(tmp_path: Path) -> None:
    photo = tmp_path / "sideways.jpg"
    jpeg_with_orientation(photo, stored_pixels(), ROTATE_90_CW)
    for image in (read_image_raw(photo), read_image(photo)):
        assert image.shape == (16, 8, 3)  # turned: 8 wide, 16 high
        assert image[:8].mean() > 200 and image[8:].mean() < 50  # the white half is now on top


def test_restore_writes_a_sideways_photo_upright(tmp_path: Path) -> None:
    photo = tmp_path / "in" / "sideways.jpg"
    photo.parent.mkdir()
    jpeg_with_orientation(photo, stored_pixels(), ROTATE_90_CW)
    out = tmp_path / "out"
    assert restore_main([str(photo), "-o", str(out), "--checkpoint", str(SHIPPED_CHECKPOINT), "--device", "cpu"]) == 0
    restored = read_image_raw(out / "sideways.jpg")
    assert restored.shape == (16, 8, 3)
    assert restored[:8].mean() > restored[8:].mean() + 100


def test_jpegs_without_orientation_read_as_before(tmp_path: Path) -> None:
    photo = tmp_path / "plain.jpg"
    jpeg_with_orientation(photo, stored_pixels(), 1)
    assert read_image_raw(photo).shape == (8, 16, 3)
    gray = tmp_path / "gray.jpg"
    assert cv2.imwrite(str(gray), np.arange(8 * 16, dtype=np.uint8).reshape(8, 16))
    assert read_image_raw(gray).shape == (8, 16)  # still one channel
    rgba = tmp_path / "alpha.png"
    assert cv2.imwrite(str(rgba), np.full((8, 16, 4), 200, np.uint8))
    assert read_image_raw(rgba).shape == (8, 16, 4)  # other formats keep their alpha
