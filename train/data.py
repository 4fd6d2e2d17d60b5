"""Builds the training set and the held-out validation set from a CSV or from clean photos."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from dsrir.data.eval_sets import EvalSet, pair_validation_set, synthetic_validation_set
from dsrir.data.pairs import read_pairs_csv, split_holdout
from dsrir.data.train_set import PairedTrainSet, SyntheticTrainSet
from dsrir.errors import DSRIRError
from dsrir.imageio import list_images
from train.config import TrainConfig


@dataclass
class TrainData:
    train: Dataset
    validation: EvalSet
    samples_per_epoch: int
    description: str


def build_data(cfg: TrainConfig) -> TrainData:
    first_patch = cfg.patch_size[0]
    if cfg.synthetic is not None:
        photos = list_images(cfg.synthetic)
        if len(photos) < 2:
            raise DSRIRError(
                f"--synthetic {cfg.synthetic}: need at least 2 images (one is held out), found {len(photos)}"
            )
        train_photos, val_photos = split_holdout(photos, cfg.val_fraction, cfg.seed)
        train_set: Dataset = SyntheticTrainSet(train_photos, cfg.tasks, first_patch, seed=cfg.seed)
        validation = synthetic_validation_set(val_photos, cfg.tasks, cfg.val_size, seed=cfg.seed)
        # a folder of photos is small: an epoch visits each photo many times with fresh crops and degradations
        samples = cfg.samples_per_epoch or max(len(train_photos), 1000)
        description = f"{len(train_photos)} clean photos from {cfg.synthetic} (synthetic {'/'.join(cfg.tasks)})"
        return TrainData(train_set, validation, samples, description)

    if cfg.train_dir is None:
        raise DSRIRError("give --train-dir (with a training CSV) or --synthetic CLEAN_DIR")
    csv_path = cfg.train_csv or Path("datasets/train") / f"train_{cfg.mode}.csv"
    pairs = read_pairs_csv(csv_path, cfg.train_dir)
    train_pairs, val_pairs = split_holdout(pairs, cfg.val_fraction, cfg.seed)
    train_set = PairedTrainSet(train_pairs, first_patch, seed=cfg.seed)
    validation = pair_validation_set(val_pairs, cfg.val_size, seed=cfg.seed)
    samples = cfg.samples_per_epoch or len(train_pairs)
    return TrainData(train_set, validation, samples, f"{len(train_pairs)} pairs from {csv_path}")
