"""Builds the training set and the held-out validation set from a CSV or from clean photos."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
from torch.utils.data import DataLoader, Dataset, Sampler

from dsrir.data.eval_sets import EvalSet, pair_validation_set, synthetic_validation_set
from dsrir.data.pairs import read_pairs_csv, split_holdout
from dsrir.data.train_set import PairedTrainSet, SyntheticTrainSet
from dsrir.errors import DSRIRError
from dsrir.imageio import list_images
from train.config import TrainConfig
from train.sampler import EpochSampler


@dataclass
class TrainData:
    train: Dataset
    validation: EvalSet
    samples_per_epoch: int
    description: str
    degradations: str | None = None  # the synthetic set's spec; None for a CSV
    clean_fraction: float = 0.0  # share of the synthetic samples left undegraded


def build_data(cfg: TrainConfig) -> TrainData:
    first_patch = cfg.patch_size[0]
    if cfg.synthetic is not None:
        photos = list_images(cfg.synthetic)
        if len(photos) < 2:
            raise DSRIRError(
                f"--synthetic {cfg.synthetic}: need at least 2 images (one is held out), found {len(photos)}"
            )
        train_photos, val_photos = split_holdout(photos, cfg.val_fraction, cfg.seed)
        degradations = cfg.degradation_set
        train_set: Dataset = SyntheticTrainSet(
            train_photos,
            cfg.sampled_tasks,
            first_patch,
            seed=cfg.seed,
            degradations=degradations,
            clean_fraction=cfg.clean_fraction,
        )
        validation = synthetic_validation_set(
            val_photos, cfg.tasks, cfg.val_size, seed=cfg.seed, degradations=degradations, clean=cfg.clean_fraction > 0
        )
        # a folder of photos is small: an epoch visits each photo many times with fresh crops and degradations
        samples = cfg.samples_per_epoch or max(len(train_photos), 1000)
        mix = "/".join(f"{task} x{cfg.sampled_tasks.count(task)}" if cfg.task_mix else task for task in cfg.tasks)
        mix += "".join(f", {name} x{weight}" for name, weight in cfg.family_mix.items())
        description = (
            f"{len(train_photos)} clean photos from {cfg.synthetic} (synthetic {mix}; degradations {degradations.spec}"
            + (f"; {cfg.clean_fraction:g} of the samples left clean)" if cfg.clean_fraction else ")")
        )
        return TrainData(train_set, validation, samples, description, degradations.spec, cfg.clean_fraction)

    if cfg.train_dir is None:
        raise DSRIRError("give --train-dir (with a training CSV) or --synthetic CLEAN_DIR")
    csv_path = cfg.train_csv or Path("datasets/train") / f"train_{cfg.mode}.csv"
    pairs = read_pairs_csv(csv_path, cfg.train_dir)
    train_pairs, val_pairs = split_holdout(pairs, cfg.val_fraction, cfg.seed)
    train_set = PairedTrainSet(train_pairs, first_patch, seed=cfg.seed)
    validation = pair_validation_set(val_pairs, cfg.val_size, seed=cfg.seed)
    samples = cfg.samples_per_epoch or len(train_pairs)
    return TrainData(train_set, validation, samples, f"{len(train_pairs)} pairs from {csv_path}")


def quiet_worker(_worker_id: int) -> None:
    """One OpenCV thread per data worker: the workers already run in parallel, and OpenCV's own pool
    on top of them oversubscribes the cores (most of the time then goes to the kernel, not to work).

    Workers ignore SIGINT: Ctrl-C reaches the whole process group, and a worker that stops on it leaves the main
    process waiting for a batch that never comes instead of finishing its step and saving.
    """
    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def train_loader(
    dataset: Dataset, batch_size: int, sampler: Sampler, workers: int, pin_memory: bool = False
) -> DataLoader:
    """The one way training batches are loaded (train, train.prune, train.qat).

    Workers come from a fork server: forked from a process that has used OpenCV's thread pool (validation does),
    they deadlock in ``cv2.setNumThreads``.
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=True,
        pin_memory=pin_memory,
        worker_init_fn=quiet_worker,
        multiprocessing_context="forkserver" if workers > 0 else None,
    )


def epoch_batches(
    data: TrainData,
    epoch: int,
    batch_size: int,
    seed: int,
    workers: int,
    *,
    rank: int = 0,
    world_size: int = 1,
    skip_batches: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """One epoch's batches for this process; the order depends only on (seed, epoch), so every stage that trains
    on the same data with the same seed draws the same samples, and a resumed epoch skips what it already saw."""
    if data.samples_per_epoch < batch_size * world_size:
        processes = f" x {world_size} process(es)" if world_size > 1 else ""
        raise DSRIRError(
            f"--batch-size {batch_size}{processes} is larger than an epoch ({data.samples_per_epoch} samples): "
            "lower --batch-size or raise --samples-per-epoch"
        )
    data.train.set_epoch(epoch)  # type: ignore[attr-defined]
    sampler = EpochSampler(data.samples_per_epoch, seed, epoch, batch_size, rank, world_size, skip_batches=skip_batches)
    return train_loader(data.train, batch_size, sampler, workers, pin_memory=pin_memory)


def endless_batches(
    data: TrainData, batch_size: int, seed: int, workers: int, pin_memory: bool = False
) -> Iterator[dict[str, object]]:
    """Batches epoch after epoch, in the order ``python -m train`` draws them (fine-tuning counts steps, not epochs)."""
    for epoch in itertools.count(1):
        yield from epoch_batches(data, epoch, batch_size, seed, workers, pin_memory=pin_memory)
