"""Make the shipped demo clip: a slow camera pan/zoom over a synthetic landscape with moving objects.

Everything is drawn from a fixed seed (no third-party images), so ``python -m runtime.make_demo`` rebuilds
the clip. It is stored clean; the pipeline and tests add noise, rain or haze themselves.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from dsrir.cli import command
from dsrir.cli_help import DefaultsHelpFormatter
from runtime.uri import demo_clip_path

WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 20, 4
CANVAS_W, CANVAS_H = 1280, 720
SEED = 20240601
MAX_BYTES = 2 * 1024 * 1024


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Band-limited noise in [-1, 1]: blurred white noise, the cheap stand-in for natural texture."""
    noise = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), scale)
    return noise / (np.abs(noise).max() + 1e-6)


def _ridge(rng: np.random.Generator, base: float, amplitude: float) -> np.ndarray:
    """A mountain skyline: a sum of sines with random phases (one height per column)."""
    x = np.arange(CANVAS_W, dtype=np.float32)
    height = np.full(CANVAS_W, base, np.float32)
    for period, weight in ((700, 1.0), (260, 0.45), (90, 0.2), (31, 0.08)):
        height += amplitude * weight * np.sin(2 * np.pi * x / period + rng.uniform(0, 2 * np.pi))
    return height


def landscape(rng: np.random.Generator) -> np.ndarray:
    """Sky gradient, sun, two mountain ranges, textured fields, a house and trees, in BGR float [0, 1]."""
    y = np.linspace(0, 1, CANVAS_H, dtype=np.float32)[:, None, None]
    image = (1 - y) * np.array([0.95, 0.75, 0.45], np.float32) + y * np.array([0.85, 0.85, 0.80], np.float32)
    image = np.broadcast_to(image, (CANVAS_H, CANVAS_W, 3)).copy()
    cv2.circle(image, (980, 150), 55, (0.75, 0.95, 1.0), -1, cv2.LINE_AA)
    clouds = np.clip(_smooth_noise(rng, (CANVAS_H, CANVAS_W), 25), 0, 1)[..., None] * (y < 0.45)
    image = image * (1 - 0.6 * clouds) + 0.6 * clouds
    rows = np.arange(CANVAS_H, dtype=np.float32)[:, None]
    texture = _smooth_noise(rng, (CANVAS_H, CANVAS_W), 2)[..., None]
    for base, amp, colour in ((300, 60, (0.55, 0.5, 0.45)), (400, 35, (0.25, 0.4, 0.3))):
        mask = (rows > _ridge(rng, base, amp)[None, :])[..., None]
        shade = np.array(colour, np.float32) * (1 + 0.15 * texture)
        image = np.where(mask, shade, image)
    field = (rows > 470)[..., None]
    stripes = _smooth_noise(rng, (1, CANVAS_W), 40)[..., None]
    grass = np.array([0.2, 0.55, 0.35], np.float32) * (1 + 0.3 * texture + 0.2 * stripes)
    image = np.where(field, grass, image)
    cv2.rectangle(image, (560, 400), (700, 500), (0.6, 0.75, 0.85), -1)
    cv2.fillPoly(image, [np.array([[545, 400], [630, 340], [715, 400]])], (0.2, 0.2, 0.55), cv2.LINE_AA)
    for wx in (580, 650):
        cv2.rectangle(image, (wx, 420), (wx + 30, 450), (0.35, 0.25, 0.15), -1)
    for tx in rng.integers(50, CANVAS_W - 50, 14):
        ty = int(rng.integers(470, 560))
        cv2.rectangle(image, (int(tx) - 4, ty - 10), (int(tx) + 4, ty + 25), (0.1, 0.2, 0.3), -1)
        cv2.circle(image, (int(tx), ty - 25), int(rng.integers(18, 30)), (0.15, 0.4 + rng.uniform(0, 0.15), 0.2), -1)
    return np.clip(image, 0, 1)


def render_frames(seed: int = SEED) -> list[np.ndarray]:
    """Pan left to right while zooming in slightly; a ball bounces and a car drives across."""
    rng = np.random.default_rng(seed)
    scene = (landscape(rng) * 255).astype(np.uint8)
    frames = []
    count = FPS * SECONDS
    for i in range(count):
        t = i / (count - 1)
        canvas = scene.copy()
        car_x = int(100 + 1000 * t)
        cv2.rectangle(canvas, (car_x, 530), (car_x + 90, 565), (40, 40, 200), -1, cv2.LINE_AA)
        cv2.rectangle(canvas, (car_x + 20, 510), (car_x + 65, 532), (60, 60, 160), -1, cv2.LINE_AA)
        for wheel in (car_x + 18, car_x + 72):
            cv2.circle(canvas, (wheel, 567), 10, (20, 20, 20), -1, cv2.LINE_AA)
        ball_x, ball_y = int(300 + 500 * t), int(560 - 120 * abs(np.sin(3 * np.pi * t)))
        cv2.circle(canvas, (ball_x, ball_y), 16, (0, 200, 255), -1, cv2.LINE_AA)
        zoom = 1.0 + 0.35 * t
        crop_w = 960 / zoom
        cx = crop_w / 2 + (CANVAS_W - crop_w) * (0.15 + 0.7 * t)
        cy = CANVAS_H / 2 + 40 * t
        scale = WIDTH / crop_w
        matrix = np.array([[scale, 0, WIDTH / 2 - scale * cx], [0, scale, HEIGHT / 2 - scale * cy]], np.float32)
        frames.append(cv2.warpAffine(canvas, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_AREA))
    return frames


def write_clip(path: Path, frames: list[np.ndarray]) -> None:
    """mp4v: reads back with the same frame count, size and fps, and stays far under 2 MB."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), float(FPS), (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise SystemExit(f"error: OpenCV cannot write mp4v to {path}")
    for frame in frames:
        writer.write(frame)
    writer.release()


@command()
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--output", type=Path, default=demo_clip_path(), help="where to write")
    args = parser.parse_args(argv)
    frames = render_frames()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_clip(args.output, frames)
    capture = cv2.VideoCapture(str(args.output))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    size = args.output.stat().st_size
    print(f"{args.output}: {len(frames)} frames {WIDTH}x{HEIGHT} @ {FPS} fps, {size / 1024:.0f} KiB, reads {count}")
    if size >= MAX_BYTES or count != len(frames):
        print("error: clip too large or frame count differs", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
