"""Training checkpoints: the official ``{"epoch", "state_dict", "optimizer"}`` file plus what a
resume needs (scheduler, position inside the epoch, RNG, best score). Written atomically.

``state_dict`` holds the raw weights the optimiser trains (what ``--resume`` continues); with EMA on,
``state_dict_ema`` holds their moving average (``ema_decay``), which validation and every weight file read from
the checkpoint use (``dsrir.checkpoint.read_weights``). ``degradations`` records the synthetic set trained on and
``clean_fraction`` the share of its samples left clean (0 recorded too: it tells "none" from "not recorded")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dsrir.checkpoint import official_checkpoint, save_pth
from dsrir.errors import DSRIRError
from dsrir.model.arch import DSRIR
from train.ema import ModelEMA


def save_training_state(
    path: Path,
    model: DSRIR,
    preset: str | None,
    mode: str,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    epoch: int,
    batches_done: int,
    global_step: int,
    best_psnr: float | None,
    ema: ModelEMA | None = None,
    degradations: str | None = None,
    clean_fraction: float = 0.0,
) -> None:
    """``epoch`` is the last completed epoch (official meaning); ``batches_done`` counts the
    batches already trained in the epoch after it (0 at an epoch boundary)."""
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    extra: dict[str, Any] = {"degradations": degradations, "clean_fraction": clean_fraction} if degradations else {}
    if ema is not None:
        extra.update(state_dict_ema=ema.state_dict(), ema_decay=ema.decay, ema_updates=ema.updates)
    checkpoint = official_checkpoint(
        model,
        preset,
        epoch,
        optimizer,
        mode=mode,
        scheduler=scheduler.state_dict(),
        batches_done=batches_done,
        global_step=global_step,
        best_psnr=best_psnr,
        rng=rng,
        **extra,
    )
    save_pth(path, checkpoint)


def load_training_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DSRIRError(f"--resume: {path} not found (nothing to resume)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file
        raise DSRIRError(f"--resume: {path} is not a readable checkpoint ({type(exc).__name__})") from None
    missing = {"epoch", "state_dict", "optimizer"} - set(state)
    if missing:
        raise DSRIRError(f"--resume: {path} lacks {sorted(missing)}; expected an official-format checkpoint")
    return state


def restore_rng(state: dict[str, Any]) -> None:
    rng = state.get("rng") or {}
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
