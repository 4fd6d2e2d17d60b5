"""Calibration sets: frames at the deployment size from images, a video, or synthetically degraded clean photos.

INT8 ranges are only as good as the frames they are measured on, so a set is described by a manifest (source
files with their sha256, frame plan, size, crop, seed) whose hash decides whether earlier ranges can be reused.
Frames are produced lazily, one ``1 x 3 x H x W`` float32 RGB array in [0, 1] at a time (what the float-I/O ONNX
takes), so a long set never sits in memory; iterating again reproduces it exactly.

Ranges depend on what a frame shows, not on how large it is, while calibration time grows with the pixels run: so
a set can calibrate on crops. Every frame is read and degraded at the deployment size (rain streak length and haze
depth look as they will in deployment), then a seeded random window, aligned to 8 pixels, is cut out of it.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dsrir.atomic import write_text_atomic
from dsrir.cli import frame_size
from dsrir.data.degrade import degrade
from dsrir.digest import file_sha256, sha256_hex
from dsrir.errors import DSRIRError, error_line
from dsrir.imageio import is_image_file, list_images, read_image
from dsrir.sizes import round_up

MANIFEST_FORMAT = 2  # 2: crop window and per-frame crop positions
SOURCE_KINDS = ("images", "video", "synthetic")
TASKS = ("noise", "rain", "haze")  # the synthetic mix, in equal shares
DEFAULT_SIZE = (640, 360)  # W x H
DEFAULT_COUNT = 48
DEFAULT_CROP = (256, 256)  # W x H, what the CLI calibrates on by default; None: whole frames
CROP_ALIGN = 8  # crop sides and positions: multiples of every DSRIR preset's size multiple
CROP_STREAM = 0xC0  # third word of frame k's crop seed [seed, k, CROP_STREAM]; [seed, k] degrades it


@dataclass(frozen=True)
class FramePlan:
    """Where frame k comes from: source file index, frame index inside a video, synthetic degradation."""

    source: int
    frame: int | None = None
    task: str | None = None
    at: tuple[int, int] | None = None  # x, y of the crop window's top-left corner in the deployment-size frame


@dataclass(frozen=True)
class CalibrationSet:
    kind: str
    sources: list[Path]
    source_sha256: list[str]
    size: tuple[int, int]  # W x H
    seed: int
    plan: list[FramePlan]
    crop: tuple[int, int] | None = None  # W x H window cut from each frame; None: whole frames
    skipped: tuple[str, ...] = ()  # "path: why" of each unreadable image left out

    @property
    def frame_size(self) -> tuple[int, int]:
        """W x H of the frames the model runs on: the crop window, else the deployment size."""
        return self.crop if self.crop is not None else self.size

    def __len__(self) -> int:
        return len(self.plan)

    def __iter__(self) -> Iterator[np.ndarray]:
        """The frames in plan order, as ``1 x 3 x H x W`` float32 RGB in [0, 1]."""
        images = _video_frames(self) if self.kind == "video" else _image_frames(self)
        for image, frame in zip(images, self.plan):
            if self.crop is not None and frame.at is not None:
                (x, y), (width, height) = frame.at, self.crop
                image = image[y : y + height, x : x + width]
            yield to_nchw(image)

    def manifest(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "kind": self.kind,
            "size": list(self.size),
            "crop": list(self.crop) if self.crop is not None else None,
            "count": len(self.plan),
            "seed": self.seed,
            "sources": [{"path": str(p), "sha256": h} for p, h in zip(self.sources, self.source_sha256)],
            "frames": [
                {"source": f.source, "frame": f.frame, "task": f.task, "at": list(f.at) if f.at else None}
                for f in self.plan
            ],
            "skipped": list(self.skipped),
        }

    @property
    def manifest_sha256(self) -> str:
        """The identity of the frames: the manifest with file contents (hashes) in place of paths."""
        identity = self.manifest()
        identity["sources"] = list(self.source_sha256)
        return sha256_hex(json.dumps(identity, sort_keys=True).encode())

    def write_manifest(self, path: str | os.PathLike[str]) -> None:
        manifest = {**self.manifest(), "manifest_sha256": self.manifest_sha256}
        write_text_atomic(path, json.dumps(manifest, indent=1) + "\n")


def parse_size(text: str) -> tuple[int, int]:
    """``640x360`` -> (640, 360), W x H."""
    try:
        return frame_size(text, "640x360")
    except argparse.ArgumentTypeError as exc:
        raise DSRIRError(f"--size {exc}") from None


def parse_crop(text: str) -> tuple[int, int] | None:
    """``256x256`` -> (256, 256), W x H; ``none`` (or ``full``) -> None, whole frames."""
    if text.strip().lower() in ("none", "full"):
        return None
    try:
        width, height = frame_size(text, "256x256")
    except argparse.ArgumentTypeError as exc:
        raise DSRIRError(f"--crop {exc}, or none for whole frames") from None
    if width % CROP_ALIGN or height % CROP_ALIGN:
        raise DSRIRError(
            f"--crop {text}: width and height must be multiples of {CROP_ALIGN}, e.g. "
            f"{round_up(width, CROP_ALIGN)}x{round_up(height, CROP_ALIGN)}"
        )
    return width, height


def fit_crop(crop: tuple[int, int] | None, size: tuple[int, int]) -> tuple[int, int] | None:
    """The crop window inside ``size`` frames: each side at most the frame's; None when it covers the whole frame."""
    if crop is None:
        return None
    window = (min(crop[0], size[0]), min(crop[1], size[1]))
    return None if window == size else window


def check_size(size: tuple[int, int], multiple: int) -> None:
    """The graph only runs at H and W multiples of the model's size multiple (8 for every DSRIR preset)."""
    if size[0] % multiple or size[1] % multiple:
        raise DSRIRError(
            f"--size {size[0]}x{size[1]}: width and height must be multiples of {multiple} (the model's size "
            f"multiple), e.g. {round_up(size[0], multiple)}x{round_up(size[1], multiple)}"
        )


def build_calibration_set(
    kind: str,
    location: str,
    count: int = DEFAULT_COUNT,
    size: tuple[int, int] = DEFAULT_SIZE,
    seed: int = 0,
    crop: tuple[int, int] | None = None,
    strict: bool = False,
) -> CalibrationSet:
    """Plan ``count`` frames from ``--images DIR|GLOB``, ``--video FILE`` or ``--synthetic CLEAN_DIR``.

    Images and video frames are used as they are (at most one frame per image; video frames sampled evenly);
    synthetic frames cycle through the clean photos in a seeded order, each degraded by noise, rain and haze in
    turn, with its own seeded generator. With ``crop`` (W x H, multiples of 8; clamped to ``size``) each frame, made
    at ``size`` as without it, is cut to a window at a seeded random position aligned to 8 pixels.
    """
    if count < 1:
        raise DSRIRError(f"--count {count}: expected at least 1 frame")
    if crop is not None and (crop[0] % CROP_ALIGN or crop[1] % CROP_ALIGN or min(crop) < 1):
        raise DSRIRError(f"--crop {crop[0]}x{crop[1]}: width and height must be positive multiples of {CROP_ALIGN}")
    window = fit_crop(crop, size)
    if kind == "video":
        source = Path(location)
        plan = [FramePlan(0, frame=i) for i in _evenly(_video_length(source), count)]
        return CalibrationSet(
            kind, [source], [file_sha256(source)], size, seed, _place(plan, window, size, seed), window
        )
    skipped: tuple[str, ...] = ()
    if kind == "images":
        sources, skipped = _readable(_image_files(location, "--images"), "--images", location, strict)
        plan = [FramePlan(i) for i in _evenly(len(sources), count)]
    elif kind == "synthetic":
        sources, skipped = _readable(_image_files(location, "--synthetic"), "--synthetic", location, strict)
        order = np.random.default_rng(seed).permutation(len(sources))
        plan = [
            FramePlan(int(order[(k // len(TASKS)) % len(sources)]), task=TASKS[k % len(TASKS)]) for k in range(count)
        ]
    else:
        raise ValueError(f"unknown calibration source {kind!r}; expected one of {', '.join(SOURCE_KINDS)}")
    hashes = [file_sha256(p) for p in sources]
    return CalibrationSet(kind, sources, hashes, size, seed, _place(plan, window, size, seed), window, skipped)


def _readable(files: list[Path], flag: str, location: str, strict: bool) -> tuple[list[Path], tuple[str, ...]]:
    """The files that decode, and "path: why" for each that does not (``strict``: the first one is the error).
    Checked before calibrating, so one bad photo neither ends a long run midway nor silently shifts the frames."""
    readable, skipped = [], []
    for path in files:
        try:
            read_image(path)
        except DSRIRError as exc:
            if strict:
                raise
            skipped.append(error_line(exc))
            continue
        readable.append(path)
    if not readable:
        raise DSRIRError(f"{flag} {location}: none of its {len(files)} image files is readable ({skipped[0]})")
    return readable, tuple(skipped)


def _place(plan: list[FramePlan], window: tuple[int, int] | None, size: tuple[int, int], seed: int) -> list[FramePlan]:
    """Give every frame a crop position: uniform over the 8-pixel-aligned positions that keep the window inside."""
    if window is None:
        return plan
    placed = []
    for k, frame in enumerate(plan):
        rng = np.random.default_rng([seed, k, CROP_STREAM])
        x, y = (CROP_ALIGN * int(rng.integers(0, (full - side) // CROP_ALIGN + 1)) for full, side in zip(size, window))
        placed.append(dataclasses.replace(frame, at=(x, y)))
    return placed


def _evenly(available: int, count: int) -> list[int]:
    """``min(count, available)`` distinct indices spread evenly over ``range(available)``, centred in their share."""
    n = min(count, available)
    return [(2 * k + 1) * available // (2 * n) for k in range(n)]


def _image_files(location: str, flag: str) -> list[Path]:
    if os.path.isdir(location):
        files = list_images(location)
    else:
        files = sorted(Path(p) for p in glob.glob(location) if os.path.isfile(p) and is_image_file(p))
    if not files:
        raise DSRIRError(f"{flag} {location}: no image files (a folder or a glob of .png/.jpg/... files)")
    return files


def _open_video(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise DSRIRError(f"--video {path}: file not found")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DSRIRError(f"--video {path}: OpenCV cannot open it as a video")
    return capture


def _video_length(path: Path) -> int:
    """Frames in the video: the container's count when it has one, else counted by decoding."""
    capture = _open_video(path)
    try:
        length = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if length <= 0:
            length = 0
            while capture.grab():
                length += 1
    finally:
        capture.release()
    if length == 0:
        raise DSRIRError(f"--video {path}: no decodable frames")
    return length


def _video_frames(dataset: CalibrationSet) -> Iterator[np.ndarray]:
    """Decode sequentially (seeking is unreliable in many containers) and keep the planned frames."""
    wanted = [f.frame for f in dataset.plan if f.frame is not None]
    capture = _open_video(dataset.sources[0])
    try:
        index = 0
        for target in wanted:
            while index < target and capture.grab():
                index += 1
            ok, frame = capture.read()
            if not ok:
                raise DSRIRError(f"--video {dataset.sources[0]}: frame {target} could not be decoded")
            index += 1
            yield fit_frame(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), dataset.size)
    finally:
        capture.release()


def _image_frames(dataset: CalibrationSet) -> Iterator[np.ndarray]:
    for k, frame in enumerate(dataset.plan):
        image = fit_frame(read_image(dataset.sources[frame.source]), dataset.size)
        if frame.task is not None:
            image, _ = degrade(image, frame.task, np.random.default_rng([dataset.seed, k]))
        yield image


def fit_frame(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale an RGB image to cover ``size`` (W x H) keeping its aspect, then take the centred crop."""
    width, height = size
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    new_w, new_h = max(width, round(w * scale)), max(height, round(h * scale))
    if (new_w, new_h) != (w, h):
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        image = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(image[top : top + height, left : left + width])


def to_nchw(image: np.ndarray) -> np.ndarray:
    """H x W x 3 RGB uint8 -> 1 x 3 x H x W float32 in [0, 1], the float-I/O graphs' input."""
    return (image.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()
