"""QAT's step on the shared training loop: float32 through the fake quantisers (no autocast: they must round
exactly as the INT8 graph does), the weights with AdamW as in training, the ranges' log gains at their own rate."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from train.config import TrainConfig
from train.loop import StopOnSignal, optimizer_step, run_steps


def build_optimizer(model: nn.Module, learning_rate: float, scale_learning_rate: float) -> torch.optim.AdamW:
    """AdamW as in training for the weights; the ranges' log gains get their own rate and no weight decay."""
    gains = [p for name, p in model.named_parameters() if name.endswith("input_range.log_gain") and p.requires_grad]
    gain_ids = {id(p) for p in gains}
    weights = [p for p in model.parameters() if p.requires_grad and id(p) not in gain_ids]
    groups: list[dict] = [{"params": weights, "lr": learning_rate, "weight_decay": TrainConfig.weight_decay}]
    if gains:
        groups.append({"params": gains, "lr": scale_learning_rate, "weight_decay": 0.0})
    return torch.optim.AdamW(groups, betas=(0.9, 0.999))


def qat_step(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    degraded: torch.Tensor,
    target: torch.Tensor,
) -> dict[str, float]:
    """One optimiser step on the training loss through the fake quantisers; returns the loss terms."""
    restored, variances = model(degraded)
    total, terms = criterion(restored, variances, target, degraded)
    optimizer_step(optimizer, total, terms, "lower --learning-rate or --scale-learning-rate")
    return terms


def fine_tune(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[dict[str, torch.Tensor]],
    device: torch.device,
    progress: bool,
    total: int | None = None,
) -> tuple[list[float], bool]:
    """Train through ``batches`` once; returns the total loss of every step and whether a signal cut it short."""

    def step(batch: dict[str, torch.Tensor]) -> dict[str, float]:
        degraded = batch["degraded"].to(device, non_blocking=True)
        target = batch["target"].to(device, non_blocking=True)
        return qat_step(model, criterion, optimizer, degraded, target)

    model.train()
    with StopOnSignal("saving and exporting") as stop:
        result = run_steps(batches, step, stop, desc="QAT", total=total, progress=progress)
    return result.losses, result.stopped
