"""Fine-tuning a pruned DSRIR with distillation from the unpruned network.

Loss = ``distill_weight`` x L1(student's final image, teacher's final image) + the training loss against the
clean target (:func:`dsrir.losses.build_loss`: the paper's or L1): the teacher says what the lost channels used
to compute, the target keeps the student honest where the teacher is wrong. AdamW with a cosine decay over the
steps.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dsrir.evaluate import average, evaluate_sets
from dsrir.model.arch import DSRIR
from dsrir.model.restorer import Restorer
from train.data import TrainData
from train.loop import StopOnSignal, mixed_precision, optimizer_step, run_steps

MIN_LR = 1e-6


@dataclass(frozen=True)
class DistillOptions:
    steps: int
    learning_rate: float = 2e-4
    weight_decay: float = 1e-4
    distill_weight: float = 1.0
    progress: bool = True


@dataclass
class DistillResult:
    steps_done: int
    interrupted: bool
    last_terms: dict[str, float]


class Distiller:
    """One optimiser step at a time, so a loop (or a test) decides when to stop."""

    def __init__(
        self, student: DSRIR, teacher: DSRIR, criterion: nn.Module, options: DistillOptions, device: torch.device
    ) -> None:
        self.student, self.teacher, self.criterion, self.device = student, teacher, criterion, device
        self.options = options
        self.teacher.eval().requires_grad_(False)
        trainable = [p for p in student.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            trainable, lr=options.learning_rate, betas=(0.9, 0.999), weight_decay=options.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=max(options.steps, 1), eta_min=min(MIN_LR, options.learning_rate)
        )

    def loss(self, degraded: Tensor, target: Tensor) -> tuple[Tensor, dict[str, float]]:
        """The fine-tuning objective on one batch, with its terms for logging."""
        with mixed_precision(self.device):
            with torch.no_grad():
                taught = self.teacher.restore(degraded)
            restored, variances = self.student(degraded)
        distill = F.l1_loss(restored[0].float(), taught.float())
        task, terms = self.criterion(restored, variances, target, degraded)
        total = self.options.distill_weight * distill + task
        terms = {"distill": float(distill.detach()), **terms, "task": terms["total"], "total": float(total.detach())}
        return total, terms

    def step(self, batch: dict[str, Any]) -> dict[str, float]:
        self.student.train()
        total, terms = self.loss(batch["degraded"].to(self.device), batch["target"].to(self.device))
        optimizer_step(self.optimizer, total, terms, "lower --learning-rate", " while fine-tuning")
        self.scheduler.step()
        return terms

    def run(self, batches: Iterable[dict[str, Any]]) -> DistillResult:
        """``options.steps`` steps; SIGINT/SIGTERM finish the current step and stop (the caller then saves)."""
        with StopOnSignal("saving") as stop:
            result = run_steps(
                itertools.islice(batches, self.options.steps),
                self.step,
                stop,
                desc="fine-tuning",
                total=self.options.steps,
                progress=self.options.progress,
            )
        return DistillResult(result.steps, result.stopped, result.last_terms)


def validation_psnr(model: DSRIR, data: TrainData, device: torch.device, progress: bool) -> float | None:
    """Mean PSNR over tasks on the held-out split (paper protocol), or None without held-out images."""
    if len(data.validation) == 0:
        return None
    results = evaluate_sets(Restorer(model, device), [data.validation], "paper", progress=progress)
    return average(results).psnr
