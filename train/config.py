"""Training options as a dataclass, filled from the command line (see ``train.cli``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dsrir.data.degradations import ALL_FAMILIES, NAMED_FAMILIES, DegradationSet, parse_degradations
from dsrir.modes import DEFAULT_MODE, MODE_TASKS


@dataclass
class TrainConfig:
    mode: str = DEFAULT_MODE
    preset: str = "dsrir"
    session: str = "DSRIR"
    epochs: int = 347
    epoch_chg: tuple[int, ...] = (135, 238, 314, 347)
    patch_size: tuple[int, ...] = (128, 160, 192, 256)
    batch_size: tuple[int, ...] = (16, 14, 12, 8)
    learning_rate: float = 2e-4
    min_lr: float = 1e-6
    weight_decay: float = 1e-4
    warmup_epochs: int = 3
    val_epochs: int = 5
    val_fraction: float = 0.02
    val_size: int = 256
    train_dir: Path | None = None
    train_csv: Path | None = None
    synthetic: Path | None = None
    samples_per_epoch: int | None = None
    save_dir: Path = Path("experiments")
    resume: str | None = None
    init: Path | None = None
    loss: str = "paper"
    # (task or degradation family, N): a task drawn N times as often as one left at 1; a family N times as often
    # as the other families of its task.
    task_mix: tuple[tuple[str, int], ...] = ()
    degradations: tuple[str, ...] = (ALL_FAMILIES,)
    hold_out: tuple[str, ...] = ()
    # Share of synthetic samples left clean (input = target): teaches the network to leave clean frames alone.
    clean_fraction: float = 0.0
    # BasicSR's ema_decay; 0 turns the average off (the official protocol has none).
    ema_decay: float = 0.999
    device: str = "auto"
    workers: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))
    max_steps: int | None = None
    max_minutes: float | None = None
    seed: int = 1234
    vgg19_weights: Path | None = None
    progress: bool = True

    @property
    def tasks(self) -> tuple[str, ...]:
        return MODE_TASKS[self.mode]

    @property
    def sampled_tasks(self) -> tuple[str, ...]:
        """The tasks a synthetic sample draws from uniformly: each repeated by its ``task_mix`` weight (default 1)."""
        weights = dict(self.task_mix)
        return tuple(task for task in self.tasks for _ in range(weights.get(task, 1)))

    @property
    def family_mix(self) -> dict[str, int]:
        """The ``task_mix`` weights of degradation families (the rest weigh tasks)."""
        return {name: weight for name, weight in self.task_mix if name in NAMED_FAMILIES}

    @property
    def degradation_set(self) -> DegradationSet:
        """What ``--synthetic`` draws from: ``degradations`` minus ``hold_out``, for this mode's tasks, each family
        drawn as often as ``task_mix`` says."""
        return parse_degradations(self.degradations, self.hold_out, self.tasks).weighted(self.family_mix)

    @property
    def model_dir(self) -> Path:
        return self.save_dir / self.mode / "models" / self.session

    @property
    def results_dir(self) -> Path:
        return self.save_dir / self.mode / "results" / self.session
