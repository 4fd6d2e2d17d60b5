"""L1 to a frozen teacher's stage outputs: quantisation-aware fine-tuning that recovers the FP32 network.

Why QAT distils instead of training on the ground truth: the goal of QAT is the FP32 network's output through
INT8 arithmetic, not a better network. A ground-truth loss also keeps training the weights, so the INT8 network
drifts per task (the shipped default, fine-tuned 150 QAT steps with L1 on the truth: rain +2.6 dB, haze -0.8 dB)
and the change cannot be told from what quantisation cost. Matching the FP32 teacher on the same degraded input
(as NVIDIA's Model Optimizer and pytorch-quantization recommend for QAT) needs no clean target at all.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dsrir.losses.objective import LossTerms, Stages


class DistillationL1Loss(nn.Module):
    """Mean L1 between each stage output and the teacher's on the same input; the teacher is never trained."""

    def __init__(self, teacher: nn.Module) -> None:
        super().__init__()
        self.teacher = teacher.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> DistillationL1Loss:
        super().train(mode)
        self.teacher.eval()  # the teacher is a fixed reference, whatever the caller does with .train()
        return self

    def forward(self, restored: Stages, variances: Stages, target: torch.Tensor, degraded: torch.Tensor) -> LossTerms:
        """Same call as :class:`dsrir.losses.DSRIRLoss`; ``target`` is not used."""
        with torch.no_grad(), torch.autocast(device_type=degraded.device.type, enabled=False):
            taught, _ = self.teacher(degraded.float())
        if len(taught) != len(restored):
            raise ValueError(f"the teacher gives {len(taught)} stage outputs, the student {len(restored)}")
        total = torch.stack([F.l1_loss(s.float(), t) for s, t in zip(restored, taught, strict=True)]).mean()
        value = float(total.detach())
        return total, {"distill": value, "total": value}
