"""Image files in and out, as RGB uint8 arrays, with errors that name the file.

OpenCV reads and writes (it is already a dependency for video). A photo is read upright: a JPEG's EXIF
orientation is applied, as the video runtime's image folders already were. A write encodes in memory first, then goes
through ``dsrir.atomic.write_bytes_atomic``: every byte counted, nothing published on failure, one error naming
the file and the cause.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from dsrir.atomic import write_bytes_atomic
from dsrir.errors import DSRIRError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
JPEG_SIGNATURE = b"\xff\xd8\xff"
# IMREAD_UNCHANGED keeps alpha and 16 bits but ignores EXIF orientation; a JPEG has no alpha, so it is read with
# the flags that keep its depth and channels and do apply the orientation.
JPEG_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


def is_image_file(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DSRIRError(f"{folder}: not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


def _decode(path: Path) -> np.ndarray:
    """Decode upright, with OpenCV's own log muted: a missing or corrupt file gets our one-line error instead."""
    if not path.is_file():
        raise DSRIRError(f"{path}: image file not found")
    data = np.fromfile(path, dtype=np.uint8)
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    flags = JPEG_FLAGS if data[:3].tobytes() == JPEG_SIGNATURE else cv2.IMREAD_UNCHANGED
    try:
        image = cv2.imdecode(data, flags) if data.size else None
    finally:
        cv2.utils.logging.setLogLevel(level)
    if image is None:
        raise DSRIRError(f"{path}: not a readable image (corrupt or unsupported format)")
    return image


def read_image(path: str | os.PathLike[str], min_size: int = 1) -> np.ndarray:
    """Read any image OpenCV understands as H x W x 3 RGB uint8.

    Grayscale is replicated, alpha dropped, 16-bit scaled to 8-bit. ``min_size`` rejects
    images smaller than that on either side with a clear error.
    """
    path = Path(path)
    image = _decode(path)
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise DSRIRError(f"{path}: unsupported pixel type {image.dtype}; expected 8- or 16-bit")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    h, w = image.shape[:2]
    if h < min_size or w < min_size:
        raise DSRIRError(f"{path}: image is {w}x{h}, smaller than the required {min_size}x{min_size}")
    return image


def read_image_raw(path: str | os.PathLike[str]) -> np.ndarray:
    """Read keeping channels and bit depth (gray, RGB, RGBA; 8 or 16 bit), colour as RGB(A)."""
    path = Path(path)
    image = _decode(path)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write an RGB(A) or grayscale array atomically; the format follows the extension."""
    path = Path(path)
    if not is_image_file(path):
        raise DSRIRError(f"{path}: unsupported image extension; use one of {', '.join(IMAGE_EXTENSIONS)}")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode(path.suffix.lower(), image)
    if not ok:
        raise DSRIRError(f"{path}: OpenCV could not encode this image")
    write_bytes_atomic(path, encoded)
