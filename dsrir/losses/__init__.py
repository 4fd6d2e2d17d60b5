"""Training losses for DSRIR: uncertainty L1, PSNR, and the VGG19 positive contrastive term (the paper's
objective), and plain L1 for all-in-one runs that must learn haze."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from dsrir.losses.combined import DSRIRLoss
from dsrir.losses.contrastive import PositiveContrastiveLoss
from dsrir.losses.distill import DistillationL1Loss
from dsrir.losses.l1 import StageL1Loss
from dsrir.losses.psnr import PSNRLoss
from dsrir.losses.uncertainty import UncertaintyLoss
from dsrir.losses.vgg import VGG19Features, find_vgg19_weights, load_vgg19_features

LOSSES = ("paper", "l1")


def build_loss(name: str, vgg19_weights: str | Path | None = None) -> nn.Module:
    """The training objective by name: ``paper`` (DSRIRLoss) or ``l1`` (StageL1Loss, no VGG19 needed)."""
    if name == "paper":
        return DSRIRLoss(vgg19_weights)
    if name == "l1":
        return StageL1Loss()
    raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}")


__all__ = [
    "LOSSES",
    "DSRIRLoss",
    "DistillationL1Loss",
    "PositiveContrastiveLoss",
    "PSNRLoss",
    "StageL1Loss",
    "UncertaintyLoss",
    "VGG19Features",
    "build_loss",
    "find_vgg19_weights",
    "load_vgg19_features",
]
