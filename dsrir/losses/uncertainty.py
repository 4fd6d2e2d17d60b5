"""Uncertainty-weighted L1: the predicted log-variance down-weights pixels the network is unsure about."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class UncertaintyLoss(nn.Module):
    """L1(r·e^(−v), t·e^(−v)) + 2·mean(v); the second term stops v growing without bound."""

    def forward(self, restored: torch.Tensor, target: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
        scale = torch.exp(-variance)
        return F.l1_loss(restored * scale, target * scale) + 2.0 * variance.mean()
