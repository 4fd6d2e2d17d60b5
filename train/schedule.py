"""Learning-rate and progressive patch schedules of the paper, as plain functions of the epoch."""

from __future__ import annotations

import math
from collections.abc import Sequence

from dsrir.errors import DSRIRError


def lr_factor(epoch_index: int, warmup_epochs: int, total_epochs: int, min_ratio: float) -> float:
    """Multiplier of the base LR for 0-based ``epoch_index``: linear warm-up reaching 1 at the
    last warm-up epoch, then cosine down to ``min_ratio`` at the final epoch (stepped per epoch)."""
    if epoch_index < warmup_epochs:
        return (epoch_index + 1) / warmup_epochs
    span = max(total_epochs - warmup_epochs, 1)
    progress = min((epoch_index - warmup_epochs + 1) / span, 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def check_progressive(epoch_chg: Sequence[int], patch_sizes: Sequence[int], batch_sizes: Sequence[int]) -> None:
    """``--epoch-chg``, ``--patch-size`` and ``--batch-size`` must describe the same stages."""
    if not (len(epoch_chg) == len(patch_sizes) == len(batch_sizes)):
        raise DSRIRError(
            f"--epoch-chg ({len(epoch_chg)} values), --patch-size ({len(patch_sizes)}) and --batch-size "
            f"({len(batch_sizes)}) must have the same number of values, one per progressive stage"
        )
    if list(epoch_chg) != sorted(epoch_chg):
        raise DSRIRError(f"--epoch-chg must increase, got {' '.join(map(str, epoch_chg))}")
    for size in patch_sizes:
        if size % 8:
            raise DSRIRError(f"--patch-size {size} is not a multiple of 8")


def progressive_stage(
    epoch: int, epoch_chg: Sequence[int], patch_sizes: Sequence[int], batch_sizes: Sequence[int]
) -> tuple[int, int]:
    """(patch size, batch size) for 1-based ``epoch``: stage i lasts until epoch ``epoch_chg[i]``;
    epochs past the last change keep the last stage."""
    for last_epoch, patch, batch in zip(epoch_chg, patch_sizes, batch_sizes):
        if epoch <= last_epoch:
            return patch, batch
    return patch_sizes[-1], batch_sizes[-1]
