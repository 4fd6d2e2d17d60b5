"""Training datasets: CSV pairs (paper protocol) or clean photos with synthetic degradations.

Each sample's randomness comes only from ``np.random.default_rng([seed, epoch, index])``, so a sample is the same
whatever the worker count or order, and a resumed run sees exactly the batches it would have seen. An epoch may be
longer than the dataset (``train.sampler.EpochSampler``): index ``i`` reads item ``i % len`` but seeds with ``i``,
so each visit of an image gets a fresh crop and degradation. Nothing is cached:
images are read per sample, which keeps workers small and the datasets cheap to pickle.

With ``persistent_workers=True`` the workers keep their own copy of the dataset: call ``set_epoch`` (and
``set_patch_size``) before the DataLoader iterator is created, i.e. without persistent workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dsrir.data.degradations import DEFAULT_DEGRADATIONS, DegradationSet
from dsrir.data.degrade import NOISE_SIGMA_MAX, add_gaussian_noise
from dsrir.data.pairs import TASKS, Pair
from dsrir.data.transforms import augment_pair, random_crop_pair, to_tensor
from dsrir.errors import DSRIRError
from dsrir.imageio import read_image


class _EpochDataset(Dataset):
    """Shared epoch / patch-size state and the per-sample generator."""

    def __init__(self, length: int, patch_size: int, seed: int) -> None:
        self._length = length
        self.seed = seed
        self.epoch = 0
        self.set_patch_size(patch_size)

    def set_epoch(self, epoch: int) -> None:
        if epoch < 0:
            raise ValueError(f"epoch {epoch} is negative")
        self.epoch = epoch

    def set_patch_size(self, size: int) -> None:
        if size < 1:
            raise DSRIRError(f"patch size {size} is not positive")
        self.patch_size = size

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[dict[str, torch.Tensor | str]]:
        """One pass over the items (indexing wraps around, so the default iteration would never stop)."""
        return (self[index] for index in range(self._length))

    def _rng(self, index: int) -> tuple[int, np.random.Generator]:
        """The item to read (``index % len``) and the sample's generator, seeded with the full index."""
        if index < 0:
            index = range(self._length)[index]  # list semantics for negatives; IndexError below -len
        return index % self._length, np.random.default_rng([self.seed, self.epoch, index])

    def _sample(
        self, target: np.ndarray, degraded: np.ndarray, task: str, rng: np.random.Generator
    ) -> dict[str, torch.Tensor | str]:
        target, degraded = augment_pair(target, degraded, int(rng.integers(0, 8)))
        return {"target": to_tensor(target), "degraded": to_tensor(degraded), "task": task}


class PairedTrainSet(_EpochDataset):
    """Rows of a training CSV; clean-only rows (BSD400, WED) get Gaussian noise, sigma ~ U{0..55}, per sample."""

    def __init__(self, pairs: Sequence[Pair], patch_size: int, seed: int = 0) -> None:
        if not pairs:
            raise DSRIRError("no training pairs; the CSV selected nothing")
        self.pairs = list(pairs)
        super().__init__(len(self.pairs), patch_size, seed)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        index, rng = self._rng(index)
        pair = self.pairs[index]
        target = read_image(pair.target)
        if pair.degraded is None:
            # Noise only the crop: the full photo can be 20x larger and would cost 20x more.
            target, _ = random_crop_pair(target, target, self.patch_size, rng)
            sigma = int(rng.integers(0, NOISE_SIGMA_MAX + 1))
            return self._sample(target, add_gaussian_noise(target, sigma, rng), pair.task, rng)
        degraded = read_image(pair.degraded)
        if degraded.shape != target.shape:
            raise DSRIRError(
                f"{pair.degraded}: degraded image is {degraded.shape[1]}x{degraded.shape[0]} but its target "
                f"{pair.target} is {target.shape[1]}x{target.shape[0]}; a pair must have the same size"
            )
        target, degraded = random_crop_pair(target, degraded, self.patch_size, rng)
        return self._sample(target, degraded, pair.task, rng)


class SyntheticTrainSet(_EpochDataset):
    """Clean photos degraded on the fly with a task drawn uniformly from ``tasks`` per sample, then a degradation
    of that task from ``degradations`` (by default every family; ``v3`` reproduces the runs before them).

    ``clean_fraction`` of the samples stay clean (input = target). The network is not told the task: it has to
    tell haze from a bright, low-contrast scene on its own, and without clean samples nothing teaches it that a
    scene without haze is to be left alone. At 0 no draw is made, so the runs before it reproduce.
    """

    def __init__(
        self,
        clean_paths: Sequence[str | os.PathLike[str]],
        tasks: Sequence[str],
        patch_size: int,
        seed: int = 0,
        degradations: DegradationSet = DEFAULT_DEGRADATIONS,
        clean_fraction: float = 0.0,
    ) -> None:
        if not 0.0 <= clean_fraction < 1.0:
            raise DSRIRError(f"clean fraction {clean_fraction}: expected a share from 0 up to (not including) 1")
        if not clean_paths:
            raise DSRIRError("no clean training images given")
        unknown = [task for task in tasks if task not in TASKS]
        if unknown or not tasks:
            raise DSRIRError(f"unknown or no tasks {list(tasks)}; expected some of {', '.join(TASKS)}")
        if missing := sorted({t for t in tasks if not degradations.is_v3 and not degradations.families_of(t)}):
            raise DSRIRError(f"degradations {degradations.spec!r} have no family for {', '.join(missing)}")
        self.clean_paths = [Path(path) for path in clean_paths]
        self.tasks = tuple(tasks)
        self.degradations = degradations
        self.clean_fraction = clean_fraction
        super().__init__(len(self.clean_paths), patch_size, seed)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        index, rng = self._rng(index)
        task = self.tasks[int(rng.integers(0, len(self.tasks)))]
        image = read_image(self.clean_paths[index])
        crop, _ = random_crop_pair(image, image, self.patch_size, rng)
        if self.clean_fraction and rng.random() < self.clean_fraction:
            degraded = crop
        else:  # rain streak length follows the whole photo's height, not the crop's
            degraded, _ = self.degradations.degrade(crop, task, rng, reference_height=image.shape[0])
        return self._sample(crop, degraded, task, rng)
