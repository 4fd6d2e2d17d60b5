"""The paper's training loop: AdamW, warm-up + cosine per epoch, progressive patches,
validation on a held-out split, atomic checkpoints and exact resume; plus BasicSR's EMA of the weights, which
validation and the checkpoints' weight files use (``train.ema``); validation scores the raw weights beside it."""

from __future__ import annotations

import functools
import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from dsrir.checkpoint import match_preset, read_weights, strip_module_prefix
from dsrir.errors import DSRIRError
from dsrir.evaluate import TaskResult, average, evaluate_sets, format_table
from dsrir.losses import build_loss
from dsrir.model.arch import DSRIR
from dsrir.model.config import DSRIRConfig, get_preset
from dsrir.model.restorer import Restorer
from train.config import TrainConfig
from train.data import build_data, epoch_batches
from train.distributed import DistContext, describe_device
from train.ema import ModelEMA
from train.loop import StopOnSignal, mixed_precision, optimizer_step, run_steps
from train.schedule import check_progressive, lr_factor, progressive_stage
from train.state import load_training_state, restore_rng, save_training_state


@dataclass
class TrainSummary:
    epochs_completed: int
    global_step: int
    best_psnr: float | None
    last_checkpoint: Path
    stopped_early: bool
    seconds: float


class Trainer:
    def __init__(self, cfg: TrainConfig, ctx: DistContext) -> None:
        check_progressive(cfg.epoch_chg, cfg.patch_size, cfg.batch_size)
        self.cfg, self.ctx = cfg, ctx
        self.start_epoch, self.batches_done, self.global_step = 1, 0, 0
        self.best_psnr: float | None = None

        torch.manual_seed(cfg.seed)
        resume_state = self._resume_state()
        self.preset: str | None = cfg.preset
        saved_config = (resume_state or {}).get("config")
        if resume_state:  # the checkpoint decides the architecture; official files are matched by shapes
            weights = strip_module_prefix(resume_state["state_dict"])
            self.preset = resume_state.get("preset") or match_preset(weights)
            if self.preset is None and not saved_config:
                self.preset = cfg.preset
        # A recorded config without a preset is a custom architecture, e.g. one from train.prune: it keeps no name.
        config = DSRIRConfig.from_dict(saved_config) if saved_config else get_preset(self.preset or cfg.preset)
        self.model = DSRIR(config).to(ctx.device)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.999), weight_decay=cfg.weight_decay
        )
        factor = functools.partial(
            lr_factor,
            warmup_epochs=cfg.warmup_epochs,
            total_epochs=cfg.epochs,
            min_ratio=cfg.min_lr / cfg.learning_rate,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        if resume_state:
            self._load(resume_state)
        self.ema = self._ema(resume_state or {})
        self.net: torch.nn.Module = (
            DistributedDataParallel(self.model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
            if ctx.distributed
            else self.model
        )
        self.criterion = build_loss(cfg.loss, cfg.vgg19_weights).to(ctx.device)
        self.data = build_data(cfg)

    # ----------------------------------------------------------------------------- resume
    def _resume_state(self) -> dict[str, Any] | None:
        if self.cfg.init is not None:
            return self._init_state(self.cfg.init)
        if self.cfg.resume is None:
            return None
        path = self.cfg.model_dir / "model_latest.pth" if self.cfg.resume == "latest" else Path(self.cfg.resume)
        state = load_training_state(path)
        if state.get("mode") not in (None, self.cfg.mode):
            raise DSRIRError(f"--resume: {path} was trained with --mode {state['mode']}, not {self.cfg.mode}")
        done = state.get("batches_done", 0)
        self._log(f"resuming from {path} (epoch {state['epoch']} done, {done} batches into the next)")
        return state

    def _init_state(self, path: Path) -> dict[str, Any]:
        """Weights only, as a checkpoint at epoch 0 with no optimiser: a fine-tune with its own fresh schedule."""
        latest = self.cfg.model_dir / "model_latest.pth"
        if latest.exists():  # starting over would overwrite that run's progress
            raise DSRIRError(
                f"--init: session {self.cfg.session} already has {latest}; continue it with --resume "
                "(without --init) or pick another --session"
            )
        weights = read_weights(path)
        self._log(f"starting from the weights in {path} (fresh optimiser and schedule)")
        return {
            "epoch": 0,
            "state_dict": weights.state_dict,
            "optimizer": {},
            "preset": weights.preset,
            "config": weights.config.to_dict(),
        }

    def _ema(self, state: dict[str, Any]) -> ModelEMA | None:
        """The average of the weights (off at ``--ema-decay 0``), continued from the checkpoint's when it has one."""
        saved = state.get("state_dict_ema")
        if self.cfg.ema_decay == 0:
            if saved is not None:
                self._log("--ema-decay 0: the checkpoint's EMA weights are dropped; the raw weights train on")
            return None
        ema = ModelEMA(self.model, self.cfg.ema_decay)
        if saved is not None:
            ema.load_state_dict(strip_module_prefix(saved))
            ema.updates = state.get("ema_updates")  # absent: saved before the warm-up, so none is left to do
        elif self.cfg.resume is not None:
            self._log("the checkpoint has no EMA weights: the average starts from its weights")
        return ema

    def _load(self, state: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(strip_module_prefix(state["state_dict"]), strict=True)
        except RuntimeError as exc:
            what = f"preset {self.preset}" if self.preset else "the recorded architecture"
            raise DSRIRError(f"--resume: weights do not fit {what}: {str(exc).splitlines()[0]}") from None
        if state["optimizer"]:
            self.optimizer.load_state_dict(state["optimizer"])
        if "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
        else:  # an official checkpoint: replay the per-epoch schedule
            with warnings.catch_warnings():  # replaying the schedule before any step is the point, not a misuse
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
                for _ in range(state["epoch"]):
                    self.scheduler.step()
        self.start_epoch = int(state["epoch"]) + 1
        self.batches_done = int(state.get("batches_done", 0))
        self.global_step = int(state.get("global_step", 0))
        self.best_psnr = state.get("best_psnr")
        restore_rng(state)

    # ----------------------------------------------------------------------------- helpers
    def _log(self, message: str) -> None:
        if self.ctx.is_main:
            tqdm.write(message)

    def _save(self, name: str, epoch: int) -> Path:
        path = self.cfg.model_dir / name
        if self.ctx.is_main:
            save_training_state(
                path,
                self.model,
                self.preset,
                self.cfg.mode,
                self.optimizer,
                self.scheduler,
                epoch,
                self.batches_done,
                self.global_step,
                self.best_psnr,
                self.ema,
                self.data.degradations,
                self.data.clean_fraction,
            )
        return path

    def _loader(self, epoch: int) -> DataLoader:
        patch, batch = progressive_stage(epoch, self.cfg.epoch_chg, self.cfg.patch_size, self.cfg.batch_size)
        self.data.train.set_patch_size(patch)  # type: ignore[attr-defined]
        return epoch_batches(
            self.data,
            epoch,
            batch,
            self.cfg.seed,
            self.cfg.workers,
            rank=self.ctx.rank,
            world_size=self.ctx.world_size,
            skip_batches=self.batches_done,
            pin_memory=self.ctx.device.type == "cuda",
        )

    # ----------------------------------------------------------------------------- training
    def _step(self, batch: dict[str, Any]) -> dict[str, float]:
        target = batch["target"].to(self.ctx.device, non_blocking=True)
        degraded = batch["degraded"].to(self.ctx.device, non_blocking=True)
        with mixed_precision(self.ctx.device):
            restored, variances = self.net(degraded)
        total, terms = self.criterion(restored, variances, target, degraded)
        optimizer_step(self.optimizer, total, terms, "lower --learning-rate", f" at step {self.global_step + 1}")
        if self.ema is not None:
            self.ema.update(self.model)
        self.batches_done += 1
        self.global_step += 1
        return terms

    def _validate(self, epoch: int, numbered: bool = True) -> None:
        """Score the EMA weights (what the best checkpoint and every weight file use) and, beside them, the raw
        weights, so that the log shows what the average buys."""
        if not self.ctx.is_main or len(self.data.validation) == 0:
            return
        self.model.eval()
        scored = {"ema": self.ema.module} if self.ema is not None else {}
        scored["raw"] = self.model
        results = {
            name: evaluate_sets(
                Restorer(model, self.ctx.device), [self.data.validation], "paper", progress=self.cfg.progress
            )
            for name, model in scored.items()
        }
        self.model.train()
        chosen = "ema" if self.ema is not None else "raw"
        mean = average(results[chosen])
        improved = self.best_psnr is None or mean.psnr > self.best_psnr
        where = f"epoch {epoch}, step {self.global_step} ({len(self.data.validation)} held-out images"
        labels = {"ema": ", EMA weights", "raw": ", raw weights"} if self.ema is not None else {"raw": ""}
        for name, rows in results.items():
            self._log(format_table(rows, f"validation at {where}{labels[name]})"))
        record = {"epoch": epoch, "step": self.global_step, **_scores(results[chosen])}
        if self.ema is not None:
            record["raw"] = _scores(results["raw"])
        self.cfg.results_dir.mkdir(parents=True, exist_ok=True)
        with open(self.cfg.results_dir / "validation.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        if improved:
            self.best_psnr = mean.psnr
            self._save("model_best.pth", epoch)
        if numbered:
            self._save(f"model_{epoch}.pth", epoch)

    def _should_stop(self, started: float, signalled: bool) -> bool:
        """Collective: every process stops at the same step when any has a reason to."""
        cfg = self.cfg
        out_of_time = cfg.max_minutes is not None and time.time() - started >= 60 * cfg.max_minutes
        out_of_steps = cfg.max_steps is not None and self.global_step >= cfg.max_steps
        return self.ctx.any(signalled or out_of_time or out_of_steps)

    def run(self) -> TrainSummary:
        cfg = self.cfg
        started = time.time()
        self.model.train()
        epoch, stopped = self.start_epoch - 1, False
        with StopOnSignal("saving model_latest.pth") as stop:
            self._log(  # after the handlers are in place: from here on a signal saves (tests wait for this line)
                f"training {self.preset or 'the checkpoint architecture'} on {self.data.description} "
                f"with the {cfg.loss} loss, EMA decay {cfg.ema_decay:g}; device {describe_device(self.ctx.device)}, "
                f"{self.ctx.world_size} process(es); checkpoints in {cfg.model_dir}"
            )
            for epoch in range(self.start_epoch, cfg.epochs + 1):
                loader = self._loader(epoch)
                batches_in_epoch = loader.sampler.batches_per_rank  # type: ignore[attr-defined]
                stopped = run_steps(
                    loader,
                    self._step,
                    stop,
                    desc=f"epoch {epoch}/{cfg.epochs}",
                    total=batches_in_epoch,
                    initial=self.batches_done,
                    progress=cfg.progress and self.ctx.is_main,
                    should_stop=functools.partial(self._should_stop, started),
                    postfix=lambda: {"lr": f"{self.scheduler.get_last_lr()[0]:.2e}"},
                ).stopped
                if self.batches_done == batches_in_epoch:
                    self.scheduler.step()
                    self.batches_done = 0
                    self._save("model_latest.pth", epoch)
                    if epoch % cfg.val_epochs == 0 or epoch == cfg.epochs:
                        self._validate(epoch)
                    self.ctx.barrier()
                if stopped:
                    break
        completed = epoch if self.batches_done == 0 else epoch - 1
        latest = self.cfg.model_dir / "model_latest.pth"
        if self.batches_done:  # stopped inside an epoch: keep the position so --resume continues here
            if not stop.requested:  # --max-steps/--max-minutes reached: still report where the model stands
                self._validate(completed, numbered=False)
            self._save("model_latest.pth", completed)
        self.ctx.barrier()
        return TrainSummary(completed, self.global_step, self.best_psnr, latest, stopped, time.time() - started)


def _scores(results: Sequence[TaskResult]) -> dict[str, Any]:
    """One weight set's line in ``validation.jsonl``: the mean over tasks, then each task."""
    mean = average(results)
    return {
        "average_psnr": mean.psnr,
        "average_ssim": mean.ssim,
        "tasks": {r.task: {"psnr": r.psnr, "ssim": r.ssim, "count": r.count} for r in results},
    }
