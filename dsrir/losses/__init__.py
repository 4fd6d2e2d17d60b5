"""Training losses for DSRIR: uncertainty L1, PSNR, and the VGG19 positive contrastive term."""

from dsrir.losses.combined import DSRIRLoss
from dsrir.losses.contrastive import PositiveContrastiveLoss
from dsrir.losses.psnr import PSNRLoss
from dsrir.losses.uncertainty import UncertaintyLoss
from dsrir.losses.vgg import VGG19Features, find_vgg19_weights, load_vgg19_features

__all__ = [
    "DSRIRLoss",
    "PositiveContrastiveLoss",
    "PSNRLoss",
    "UncertaintyLoss",
    "VGG19Features",
    "find_vgg19_weights",
    "load_vgg19_features",
]
