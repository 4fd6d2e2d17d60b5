"""Positive contrastive loss: pull the final output towards the ground truth and earlier stages, away from the input.

As in the official code, gradients flow through the stage-2/stage-1 features (they are positives, not
fixed targets); only the ground-truth and degraded features are constants.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dsrir.losses.vgg import VGG19Features

_LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
_STAGE2_WEIGHT = 0.25
_STAGE1_WEIGHT = 0.125


class PositiveContrastiveLoss(nn.Module):
    """Sum over VGG layers of weighted positive L1 distances divided by the distance to the degraded input."""

    def __init__(self, features: VGG19Features) -> None:
        super().__init__()
        self.features = features

    def forward(
        self,
        anchor: torch.Tensor,
        target: torch.Tensor,
        stage2: torch.Tensor,
        stage1: torch.Tensor,
        degraded: torch.Tensor,
    ) -> torch.Tensor:
        batch = anchor.shape[0]
        # One pass per group keeps the kernel count down; the constant pair runs without building a graph.
        graded = self.features(torch.cat([anchor, stage2, stage1]))
        anchor_f, stage2_f, stage1_f = zip(*(f.split(batch) for f in graded))
        with torch.no_grad():
            target_f, degraded_f = zip(*(f.split(batch) for f in self.features(torch.cat([target, degraded]))))
        loss = anchor.new_zeros(())
        for weight, a, t, s2, s1, d in zip(_LAYER_WEIGHTS, anchor_f, target_f, stage2_f, stage1_f, degraded_f):
            positive = F.l1_loss(a, t) + _STAGE2_WEIGHT * F.l1_loss(a, s2) + _STAGE1_WEIGHT * F.l1_loss(a, s1)
            loss = loss + weight * positive / (F.l1_loss(a, d) + 1e-7)
        return loss
