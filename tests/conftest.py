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
    blurred = cv2.GaussianBlur(image, (0, 0), 1.0)
    return np.clip(blurred * 255 + 0.5, 0, 255).astype(np.uint8)


def read_video(path: Path) -> list[np.ndarray]:
    """Every frame OpenCV decodes from ``path`` (BGR uint8), to check what a writer produced."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


@pytest.fixture(scope="session")
def clean_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of six small 'clean photos' (PNG), sizes not multiples of 8."""
    folder = tmp_path_factory.mktemp("clean")
    for i in range(6):
        image = natural_like_image(52 + 4 * i, 70 + 2 * i, seed=i)
        cv2.imwrite(str(folder / f"photo_{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder with relative paths (exact command strings), caches under it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path


def briefly_trained_denoiser(steps: int = 40, sigma: float = 25.0) -> torch.nn.Module:
    """dsrir-xs after ``steps`` Adam steps on 40x40 noisy crops of natural-like images: enough to gain several dB
    over sigma-25 noise, so comparisons of restored outputs (FP16 vs FP32, video PSNR) measure something."""
    from dsrir.model import DSRIR, PRESETS

    torch.manual_seed(0)
    model = DSRIR(PRESETS["dsrir-xs"])
    clean = np.stack([natural_like_image(64, 64, seed) for seed in range(6)]).astype(np.float32) / 255
    images = torch.from_numpy(clean).permute(0, 3, 1, 2)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        top, left = (int(v) for v in torch.randint(0, 64 - 40 + 1, (2,), generator=generator))
        target = images[torch.randint(0, len(images), (4,), generator=generator), :, top : top + 40, left : left + 40]
        noisy = (target + torch.randn(target.shape, generator=generator) * sigma / 255).clamp(0, 1)
        loss = (model.restore(noisy) - target).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()
