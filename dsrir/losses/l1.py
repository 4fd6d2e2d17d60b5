"""Plain L1 over the three stage outputs, the objective AirNet and PromptIR train their all-in-one models with."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dsrir.losses.objective import LossTerms, Stages
from dsrir.model.arch import STAGES


class StageL1Loss(nn.Module):
    """Mean L1 of the three stage outputs; the predicted variances are not used.

    Why it exists: both terms of the paper's loss weigh an image's gradient by about 1/error (log-MSE, and a
    learned variance that settles near the error), so in the all-in-one mix a hazy image (~13 dB) pushes several
    times less than a noisy or rainy one and the network leaves haze alone. Under L1 every pixel pushes equally
    whatever the task (weights/README.md, "Why haze lags").
    """

    def forward(self, restored: Stages, variances: Stages, target: torch.Tensor, degraded: torch.Tensor) -> LossTerms:
        """Same call as :class:`dsrir.losses.DSRIRLoss` (final stage first), so the trainer can use either."""
        if len(restored) != STAGES:
            raise ValueError(f"expected {STAGES} restored images, got {len(restored)}")
        with torch.autocast(device_type=target.device.type, enabled=False):
            total = torch.stack([F.l1_loss(image.float(), target.float()) for image in restored]).mean()
        value = float(total.detach())
        return total, {"l1": value, "total": value}
