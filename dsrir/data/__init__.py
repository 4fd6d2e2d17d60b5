"""Training and evaluation data: CSV pairs, synthetic degradations, crops and augmentation, datasets, test sets."""

from dsrir.data.degrade import add_gaussian_noise, add_haze, add_rain, degrade, synthetic_depth
from dsrir.data.eval_sets import (
    EvalSample,
    EvalSet,
    center_crop_to_multiple,
    denoise_set,
    pair_validation_set,
    rain100l_set,
    sots_set,
    synthetic_sets,
    synthetic_validation_set,
)
from dsrir.data.pairs import TASKS, Pair, read_pairs_csv, split_holdout
from dsrir.data.train_set import PairedTrainSet, SyntheticTrainSet
from dsrir.data.transforms import augment_pair, random_crop_pair, to_tensor

__all__ = [
    "TASKS",
    "EvalSample",
    "EvalSet",
    "Pair",
    "PairedTrainSet",
    "SyntheticTrainSet",
    "add_gaussian_noise",
    "add_haze",
    "add_rain",
    "augment_pair",
    "random_crop_pair",
    "center_crop_to_multiple",
    "degrade",
    "denoise_set",
    "pair_validation_set",
    "rain100l_set",
    "read_pairs_csv",
    "sots_set",
    "split_holdout",
    "synthetic_depth",
    "synthetic_sets",
    "synthetic_validation_set",
    "to_tensor",
]
