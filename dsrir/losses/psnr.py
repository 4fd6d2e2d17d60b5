"""PSNR loss: optimising log-MSE weights every image's error equally, whatever its absolute level."""

from __future__ import annotations

import math

import torch
from torch import nn

_SCALE = 10.0 / math.log(10.0)


class PSNRLoss(nn.Module):
    """Negative PSNR (data range 1) averaged over the batch; lower is better."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        mse = (pred - target).pow(2).flatten(1).mean(dim=1)
        return _SCALE * torch.log(mse + 1e-8).mean()
