"""Fine-tuning a pruned DSRIR with distillation from the unpruned network.

Loss = ``distill_weight`` x L1(student's final image, teacher's final image) + the training loss against the
clean target (:func:`dsrir.losses.build_loss`: the paper's or L1): the teacher says what the lost channels used
to compute, the target keeps the student honest where the teacher is wrong. AdamW with a cosine decay over the
steps.
"""

from __future__ import annotations

import itertools
import math
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from dsrir.errors import DSRIRError
from dsrir.evaluate import average, evaluate_sets
from dsrir.model.arch import DSRIR
from dsrir.model.restorer import Restorer
from train.data import TrainData, train_loader
from train.sampler import EpochSampler

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
        # bf16 needs no loss scaling; GPUs without it (before Ampere) run float32, as in train.trainer
        bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        self.autocast_dtype = torch.bfloat16 if bf16 else None

    def loss(self, degraded: Tensor, target: Tensor) -> tuple[Tensor, dict[str, float]]:
        """The fine-tuning objective on one batch, with its terms for logging."""
        with self._autocast():
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
        if not math.isfinite(terms["total"]):
            raise DSRIRError(f"fine-tuning loss is {terms['total']}: lower --learning-rate")
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.scheduler.step()
        return terms

    def run(self, batches: Iterator[dict[str, Any]]) -> DistillResult:
        """``options.steps`` steps; SIGINT/SIGTERM finish the current step and stop (the caller then saves)."""
        stop: list[int] = []

        def request_stop(signum: int, _frame: FrameType | None) -> None:
            stop.append(signum)
            tqdm.write(f"received {signal.Signals(signum).name}: finishing this step, then saving")

        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        terms: dict[str, float] = {}
        done = 0
        try:
            bar = tqdm(
                total=self.options.steps, desc="fine-tuning", disable=not self.options.progress, dynamic_ncols=True
            )
            for batch in itertools.islice(batches, self.options.steps):
                terms = self.step(batch)
                done += 1
                bar.update()
                bar.set_postfix({name: f"{value:.4g}" for name, value in terms.items() if name != "task"})
                if stop:
                    break
            bar.close()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return DistillResult(done, bool(stop), terms)

    def _autocast(self) -> torch.autocast:
        dtype = self.autocast_dtype or torch.float32
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.autocast_dtype is not None)


def training_batches(data: TrainData, batch_size: int, workers: int, seed: int) -> Iterator[dict[str, Any]]:
    """Endless batches, epoch after epoch, in the order ``python -m train`` would draw them."""
    if data.samples_per_epoch < batch_size:
        raise DSRIRError(
            f"--batch-size {batch_size} is larger than an epoch ({data.samples_per_epoch} samples): "
            "lower --batch-size or raise --samples-per-epoch"
        )
    for epoch in itertools.count(1):
        data.train.set_epoch(epoch)  # type: ignore[attr-defined]
        sampler = EpochSampler(data.samples_per_epoch, seed, epoch, batch_size)
        yield from train_loader(data.train, batch_size, sampler, workers)


def validation_psnr(model: DSRIR, data: TrainData, device: torch.device, progress: bool) -> float | None:
    """Mean PSNR over tasks on the held-out split (paper protocol), or None without held-out images."""
    if len(data.validation) == 0:
        return None
    results = evaluate_sets(Restorer(model, device), [data.validation], "paper", progress=progress)
    return average(results).psnr
