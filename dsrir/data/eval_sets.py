"""Evaluation and validation samples: the standard test-set layouts and deterministic synthetic ones.

An ``EvalSet`` knows where its images are and loads them only when indexed, so a large test set costs no memory
until it is scored. Every synthetic degradation is seeded per image from (seed, task, file name), so scores do not
change with listing order, worker count or which other images are in the folder.

Synthetic labels: ``noise<sigma>`` (the official test noise), ``rain`` and ``haze`` (the v3 generator at fixed
mid-range settings, the labels of every table before the families), and any family label of
``dsrir.data.degradations`` (``rain-heavy``, ``haze-dense:beta=0.2..0.3``): parameters drawn per image from the
family's ranges and kept in ``EvalSample.params``; ``clean``: the photo itself, undegraded (what the network does
to a clean frame; the input's own PSNR is then infinite).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

import numpy as np

from dsrir.data.degradations import (
    CLEAN_LABEL,
    DEFAULT_DEGRADATIONS,
    NAMED_FAMILIES,
    NOISE_LABEL,
    DegradationSet,
    label_family,
)
from dsrir.data.degrade import RAIN_DENSITY_RANGE, RAIN_LENGTH_RANGE, RAIN_WEIGHT_RANGE, add_haze, add_rain
from dsrir.data.pairs import TASKS, Pair
from dsrir.errors import DSRIRError
from dsrir.imageio import list_images, read_image

DEFAULT_EVAL_TASKS = ("noise15", "noise25", "noise50", "rain", "haze")
VALIDATION_SIGMAS = (15, 25, 50)
SYNTHETIC_VALIDATION_SIGMA = 25
SYNTHETIC_HAZE_AIRLIGHT = 0.9


@dataclass
class EvalSample:
    """One scored image: RGB uint8 ``degraded`` and ``target`` of the same shape; ``task`` is its label and
    ``params`` what a family drew for it."""

    name: str
    task: str
    degraded: np.ndarray
    target: np.ndarray
    params: dict[str, float] = field(default_factory=dict)


def center_crop_to_multiple(image: np.ndarray, multiple: int = 8) -> np.ndarray:
    """The official evaluation crop: centred, dropping ``h % multiple`` rows and ``w % multiple`` columns."""
    height, width = image.shape[:2]
    return _center_window(image, height - height % multiple, width - width % multiple)


def _center_window(image: np.ndarray, height: int, width: int) -> np.ndarray:
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return image[top : top + height, left : left + width]


def _validation_crop(image: np.ndarray, crop: int | None, path: Path) -> np.ndarray:
    """Centre crop to at most ``crop`` x ``crop`` and to multiples of 8 (the network's size constraint)."""
    if crop is None:
        return image
    height, width = (min(side, crop) // 8 * 8 for side in image.shape[:2])
    if not height or not width:
        raise DSRIRError(f"{path}: image is {image.shape[1]}x{image.shape[0]}; validation needs at least 8x8")
    return _center_window(image, height, width)


def _image_rng(seed: int, key: int, name: str) -> np.random.Generator:
    """A generator fixed by (seed, key, file name) alone; crc32 because Python's str hash changes per process."""
    return np.random.default_rng([seed, key, zlib.crc32(name.encode("utf-8"))])


def _photo_to_degrade(
    path: Path, crop: int | None, seed: int, label: str
) -> tuple[np.ndarray, int, np.random.Generator]:
    """A clean photo cropped for validation, its full height (streaks are sized for the whole photo even when it is
    cropped) and the image's generator for the synthetic degradation ``label``."""
    clean = read_image(path)
    reference_height = clean.shape[0]
    rng = _image_rng(seed, zlib.crc32(label.encode("utf-8")), path.name)
    return _validation_crop(clean, crop, path), reference_height, rng


def official_test_noise(clean: np.ndarray, sigma: int, rng: np.random.Generator) -> np.ndarray:
    """The official test noise, kept exactly: ``np.clip(clean + randn * sigma, 0, 255).astype(np.uint8)``.

    The cast truncates (training rounds instead); scores stay comparable with the published numbers.
    """
    return np.clip(clean + rng.standard_normal(clean.shape) * sigma, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class _NoisyImage:
    path: Path
    sigma: int
    seed: int
    crop: int | None = None

    def load(self) -> EvalSample:
        clean = _validation_crop(read_image(self.path), self.crop, self.path)
        noisy = official_test_noise(clean, self.sigma, _image_rng(self.seed, self.sigma, self.path.name))
        return EvalSample(self.path.name, f"noise{self.sigma}", noisy, clean)


@dataclass(frozen=True)
class _FilePair:
    task: str
    degraded: Path
    target: Path
    crop: int | None = None

    def load(self) -> EvalSample:
        degraded, target = read_image(self.degraded), read_image(self.target)
        if degraded.shape != target.shape:
            raise DSRIRError(
                f"{self.degraded}: degraded image is {degraded.shape[1]}x{degraded.shape[0]} but its target "
                f"{self.target} is {target.shape[1]}x{target.shape[0]}; a pair must have the same size"
            )
        degraded = _validation_crop(degraded, self.crop, self.degraded)
        target = _validation_crop(target, self.crop, self.target)
        return EvalSample(self.degraded.name, self.task, degraded, target)


@dataclass(frozen=True)
class _SyntheticImage:
    """Rain at mid-range density, length and weight (angle drawn), or haze with A = 0.9 and beta drawn."""

    path: Path
    task: str
    seed: int
    crop: int | None = None

    def load(self) -> EvalSample:
        clean, reference_height, rng = _photo_to_degrade(self.path, self.crop, self.seed, self.task)
        if self.task == "rain":
            degraded = add_rain(
                clean,
                rng,
                density=float(np.mean(RAIN_DENSITY_RANGE)),
                length=float(np.mean(RAIN_LENGTH_RANGE)),
                weight=float(np.mean(RAIN_WEIGHT_RANGE)),
                reference_height=reference_height,
            )
        else:
            degraded = add_haze(clean, rng, airlight=SYNTHETIC_HAZE_AIRLIGHT)
        return EvalSample(self.path.name, self.task, degraded, clean)


@dataclass(frozen=True)
class _FamilyImage:
    """A family's degradation with parameters drawn for this image (streaks sized for the whole photo)."""

    path: Path
    label: str
    seed: int
    crop: int | None = None

    def load(self) -> EvalSample:
        clean, reference_height, rng = _photo_to_degrade(self.path, self.crop, self.seed, self.label)
        degraded, params = label_family(self.label).apply(clean, rng, reference_height)
        return EvalSample(self.path.name, self.label, degraded, clean, params)


@dataclass(frozen=True)
class _CleanImage:
    """The photo undegraded: input and target are the same image."""

    path: Path
    crop: int | None = None

    def load(self) -> EvalSample:
        clean = _validation_crop(read_image(self.path), self.crop, self.path)
        return EvalSample(self.path.name, CLEAN_LABEL, clean.copy(), clean)


_Item = _NoisyImage | _FilePair | _SyntheticImage | _FamilyImage | _CleanImage


class EvalSet(Sequence[EvalSample]):
    """A lazily loaded sequence of samples; ``task`` is the label shared by all of them, or "mixed"."""

    def __init__(self, task: str, items: Sequence[_Item]) -> None:
        self.task = task
        self._items = list(items)

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> EvalSample: ...

    @overload
    def __getitem__(self, index: slice) -> EvalSet: ...

    def __getitem__(self, index: int | slice) -> EvalSample | EvalSet:
        if isinstance(index, slice):
            return EvalSet(self.task, self._items[index])
        return self._items[index].load()

    def __repr__(self) -> str:
        return f"EvalSet(task={self.task!r}, {len(self)} samples)"


def _images_in(folder: str | os.PathLike[str], what: str) -> list[Path]:
    images = list_images(folder)
    if not images:
        raise DSRIRError(f"{folder}: no images found; expected {what} directly inside")
    return images


def denoise_set(folder: str | os.PathLike[str], sigma: int, seed: int = 0) -> EvalSet:
    """BSD68 / Urban100: clean images directly in ``folder``, official test noise of ``sigma`` added per image."""
    if sigma < 0:
        raise DSRIRError(f"noise sigma {sigma} is negative")
    paths = _images_in(folder, "clean images (BSD68 / Urban100 layout)")
    return EvalSet(f"noise{sigma}", [_NoisyImage(path, sigma, seed) for path in paths])


def _subfolders(folder: str | os.PathLike[str], layout: str) -> tuple[Path, Path]:
    inputs, targets = Path(folder) / "input", Path(folder) / "target"
    for sub in (inputs, targets):
        if not sub.is_dir():
            raise DSRIRError(f"{sub}: folder not found; expected {layout}")
    return inputs, targets


def rain100l_set(folder: str | os.PathLike[str]) -> EvalSet:
    """Rain100L test: ``folder/input/X`` scored against ``folder/target/X``."""
    layout = "input/ and target/ with the same file names (Rain100L test layout)"
    inputs, targets = _subfolders(folder, layout)
    items = []
    for degraded in _images_in(inputs, "rainy images"):
        target = targets / degraded.name
        if not target.is_file():
            raise DSRIRError(f"{target}: target for {degraded} not found; expected {layout}")
        items.append(_FilePair("rain", degraded, target))
    return EvalSet("rain", items)


def sots_set(folder: str | os.PathLike[str]) -> EvalSet:
    """SOTS outdoor: ``folder/input/0001_0.8_0.2.jpg`` scored against ``folder/target/0001.png`` (or ``.jpg``)."""
    inputs, targets = _subfolders(folder, "input/ID_A_BETA.jpg and target/ID.png (SOTS layout)")
    items = []
    for degraded in _images_in(inputs, "hazy images"):
        image_id = degraded.stem.split("_", 1)[0]
        candidates = [targets / f"{image_id}{suffix}" for suffix in (".png", ".jpg")]
        target = next((path for path in candidates if path.is_file()), None)
        if target is None:
            raise DSRIRError(f"{candidates[0]}: target for {degraded} not found (also tried {candidates[1].name})")
        items.append(_FilePair("haze", degraded, target))
    return EvalSet("haze", items)


def _clean_paths(clean_dir_or_paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(clean_dir_or_paths, (str, os.PathLike)):
        return _images_in(clean_dir_or_paths, "clean images")
    paths = [Path(path) for path in clean_dir_or_paths]
    if not paths:
        raise DSRIRError("no clean images given")
    return paths


def _synthetic_item(path: Path, label: str, seed: int, crop: int | None = None) -> _Item:
    match = NOISE_LABEL.fullmatch(label)
    if match:
        return _NoisyImage(path, int(match.group(1)), seed, crop)
    if label in ("rain", "haze"):
        return _SyntheticImage(path, label, seed, crop)
    if label == CLEAN_LABEL:
        return _CleanImage(path, crop)
    if label.split(":")[0] in NAMED_FAMILIES:
        label_family(label)  # a bad narrowing is reported now, not when the image is loaded
        return _FamilyImage(path, label, seed, crop)
    raise DSRIRError(
        f"unknown evaluation task {label!r}; expected noise<sigma> (e.g. noise25), rain, haze, {CLEAN_LABEL} or a "
        f"degradation family ({', '.join(NAMED_FAMILIES)})"
    )


def synthetic_sets(
    clean_dir_or_paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    tasks: Sequence[str] = DEFAULT_EVAL_TASKS,
    seed: int = 0,
    crop: int | None = None,
) -> list[EvalSet]:
    """One set per task label, built from clean photos; noise matches :func:`denoise_set` on the same files.

    ``crop``: centre-crop the clean photo to at most this side before degrading (haze sees the crop's own depth).
    """
    paths = _clean_paths(clean_dir_or_paths)
    return [EvalSet(label, [_synthetic_item(path, label, seed, crop) for path in paths]) for label in tasks]


def _check_crop(crop: int) -> None:
    if crop < 8:
        raise DSRIRError(f"validation crop {crop} is smaller than 8")


def pair_validation_set(pairs: Sequence[Pair], crop: int, seed: int = 0) -> EvalSet:
    """Held-out CSV pairs, each once; clean-only rows get test noise with sigma cycling 15, 25, 50."""
    _check_crop(crop)
    items: list[_Item] = []
    clean_count = 0
    for pair in dict.fromkeys(pairs):  # the official CSV repeats rain pairs; score each once
        if pair.degraded is None:
            sigma = VALIDATION_SIGMAS[clean_count % len(VALIDATION_SIGMAS)]
            items.append(_NoisyImage(pair.target, sigma, seed, crop))
            clean_count += 1
        else:
            items.append(_FilePair(pair.task, pair.degraded, pair.target, crop))
    return EvalSet("mixed", items)


def synthetic_validation_set(
    paths: Sequence[str | os.PathLike[str]],
    tasks: Sequence[str],
    crop: int,
    seed: int = 0,
    degradations: DegradationSet = DEFAULT_DEGRADATIONS,
    clean: bool = False,
) -> EvalSet:
    """Every image under every task (noise at sigma 25; rain and haze as each family of ``degradations`` that
    training draws from, or the v3 labels), centre-cropped, degraded deterministically; with ``clean``, each
    image undegraded too (for training that leaves some samples clean: it learns to leave such frames alone).

    No paths give an empty set (no validation), as :func:`pair_validation_set` does for no pairs.
    """
    _check_crop(crop)
    unknown = [task for task in tasks if task not in TASKS]
    if unknown or not tasks:
        raise DSRIRError(f"unknown or no tasks {list(tasks)}; expected some of {', '.join(TASKS)}")
    labels = degradations.validation_labels(tasks, SYNTHETIC_VALIDATION_SIGMA) + ([CLEAN_LABEL] if clean else [])
    items = [_synthetic_item(Path(path), label, seed, crop) for path in paths for label in labels]
    return EvalSet("mixed", items)
