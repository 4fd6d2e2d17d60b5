"""The official DSRIR training objective: uncertainty L1 + multi-stage PSNR + 0.2 x positive contrastive."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from dsrir.losses.contrastive import PositiveContrastiveLoss
from dsrir.losses.objective import LossTerms, Stages
from dsrir.losses.psnr import PSNRLoss
from dsrir.losses.uncertainty import UncertaintyLoss
from dsrir.losses.vgg import find_vgg19_weights, hub_vgg19_path, load_vgg19_features
from dsrir.model.arch import STAGES

_missing_weights_warned = False


def _warn_missing_weights() -> None:
    """Say once per process why the contrastive term is off; repeated per-run warnings would only be noise."""
    global _missing_weights_warned
    if _missing_weights_warned:
        return
    _missing_weights_warned = True
    hub_file = hub_vgg19_path()
    warnings.warn(
        f"VGG19 weights not found (looked for {hub_file}); training without the positive contrastive loss. "
        f"To enable it pass --vgg19-weights PATH or put torchvision's {hub_file.name} in {hub_file.parent}.",
        stacklevel=3,
    )


class DSRIRLoss(nn.Module):
    """Total loss over the three stage outputs; the contrastive term is disabled when no VGG19 weights exist."""

    def __init__(self, vgg19_weights: str | Path | None = None, pocl_weight: float = 0.2) -> None:
        super().__init__()
        self.pocl_weight = pocl_weight
        self.psnr = PSNRLoss()
        self.uncertainty = UncertaintyLoss()
        path = find_vgg19_weights(vgg19_weights)
        self.contrastive_enabled = path is not None
        self.contrastive = PositiveContrastiveLoss(load_vgg19_features(path)) if path is not None else None
        if path is None:
            _warn_missing_weights()

    def forward(self, restored: Stages, variances: Stages, target: torch.Tensor, degraded: torch.Tensor) -> LossTerms:
        """``restored`` and ``variances`` are ordered final stage first (img3, img2, img1)."""
        if len(restored) != STAGES or len(variances) != STAGES:
            raise ValueError(f"expected {STAGES} restored images and variances, got {len(restored)}, {len(variances)}")
        # Log-MSE and the ratio in the contrastive term are fragile in bf16, so autocast is switched off here.
        with torch.autocast(device_type=target.device.type, enabled=False):
            images = [r.float() for r in restored]
            target, degraded = target.float(), degraded.float()
            unc = sum(self.uncertainty(r, target, v.float()) for r, v in zip(images, variances)) / STAGES
            final, stage2, stage1 = (self.psnr(image, target) for image in images)
            psnr = final + 0.5 * (stage2 + stage1) / 2
            total = unc + psnr
            if self.contrastive is not None:
                pocl = self.contrastive(images[0], target, images[1], images[2], degraded)
                total = total + self.pocl_weight * pocl
            else:
                pocl = torch.zeros((), device=target.device)
        values = torch.stack([unc, psnr, pocl, total]).detach().cpu().tolist()
        return total, dict(zip(("unc", "psnr", "pocl", "total"), values))
