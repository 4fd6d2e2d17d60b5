"""Shared fixtures: small generated photos-like images so tests never need real datasets."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

torch.set_num_threads(2)


def natural_like_image(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth, textured RGB uint8 image (gradients, blobs and edges) standing in for a photo."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        fx, fy = rng.uniform(0.5, 3.0, size=2)
        image[..., c] = 0.5 + 0.25 * np.sin(2 * np.pi * (fx * xx / width + fy * yy / height + rng.uniform()))
    for _ in range(6):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(4, max(5, min(height, width) / 3))
        colour = rng.uniform(0, 1, size=3)
        mask = ((xx - cx) ** 2 + (yy - cy) ** 2) < r**2
        image[mask] = 0.6 * image[mask] + 0.4 * colour
    image = cv2.GaussianBlur(image, (0, 0), 1.0)
    return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def clean_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of six small 'clean photos' (PNG), sizes not multiples of 8."""
    folder = tmp_path_factory.mktemp("clean")
    for i in range(6):
        image = natural_like_image(52 + 4 * i, 70 + 2 * i, seed=i)
        cv2.imwrite(str(folder / f"photo_{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return folder
