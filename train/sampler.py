"""A resumable, distributed epoch sampler.

The order of an epoch depends only on (seed, epoch), so a run resumed mid-epoch replays the
same order and skips the batches it already trained on. Indices may exceed the dataset's
length (``samples_per_epoch``); datasets map them back with ``index % len`` and use the full
index to seed the sample's randomness, so repeated images get different crops.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[int]):
    def __init__(
        self,
        samples_per_epoch: int,
        seed: int,
        epoch: int,
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        skip_batches: int = 0,
    ) -> None:
        self.samples_per_epoch = samples_per_epoch
        self.seed, self.epoch = seed, epoch
        self.batch_size = batch_size
        self.rank, self.world_size = rank, world_size
        self.skip_batches = skip_batches
        self.batches_per_rank = samples_per_epoch // (world_size * batch_size)

    def __len__(self) -> int:
        return max(self.batches_per_rank - self.skip_batches, 0) * self.batch_size

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.samples_per_epoch, generator=generator)
        per_rank = self.batches_per_rank * self.batch_size
        mine = order[self.rank :: self.world_size][:per_rank]
        return iter(mine[self.skip_batches * self.batch_size :].tolist())
