"""Paired crop and flip/rotation augmentation, applied identically to target and degraded, and uint8 -> tensor."""

from __future__ import annotations

import cv2
import numpy as np
import torch


def pad_to_size(image: np.ndarray, size: int) -> np.ndarray:
    """Reflect-pad (BORDER_REFLECT_101) so both sides are at least ``size``; small photos stay usable."""
    height, width = image.shape[:2]
    pad_h, pad_w = max(0, size - height), max(0, size - width)
    if not pad_h and not pad_w:
        return image
    top, left = pad_h // 2, pad_w // 2
    return cv2.copyMakeBorder(image, top, pad_h - top, left, pad_w - left, cv2.BORDER_REFLECT_101)


def random_crop_pair(
    target: np.ndarray, degraded: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The same random ``size`` x ``size`` window of both images (reflect-padded first if smaller)."""
    assert target.shape == degraded.shape, f"pair shapes differ: {target.shape} vs {degraded.shape}"
    target, degraded = pad_to_size(target, size), pad_to_size(degraded, size)
    height, width = target.shape[:2]
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    window = (slice(top, top + size), slice(left, left + size))
    return target[window], degraded[window]


def augment_image(image: np.ndarray, variant: int) -> np.ndarray:
    """One of the 8 dihedral variants: rotate by 90 degrees ``variant % 4`` times, then mirror if ``variant >= 4``."""
    if not 0 <= variant < 8:
        raise ValueError(f"augment variant {variant} out of range; expected 0..7")
    image = np.rot90(image, variant % 4)
    if variant >= 4:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


def augment_pair(target: np.ndarray, degraded: np.ndarray, variant: int) -> tuple[np.ndarray, np.ndarray]:
    """The same flip/rotation ``variant`` (0..7, 0 = identity) of both images, as contiguous arrays."""
    return augment_image(target, variant), augment_image(degraded, variant)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 -> 3 x H x W float32 in [0, 1]."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 uint8 image, got {image.dtype} {image.shape}")
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)
