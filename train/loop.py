"""The one training loop under ``python -m train``, ``train.prune`` and ``train.qat``: each stage plugs in its step.

A step takes one batch and returns its loss terms (``"total"`` among them); the loop owns what every stage needs
alike: the progress bar, Ctrl-C / SIGTERM finishing the current step instead of killing it mid-update (so the stage
can still save), a stop condition checked after every step (the trainer's time and step limits, agreed across
processes), and the losses seen. Stages differ only in their step (what is optimised against what) and in what
they save afterwards.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any

import torch
from tqdm import tqdm

from dsrir.errors import DSRIRError

Batch = dict[str, Any]
Step = Callable[[Batch], dict[str, float]]


class StopOnSignal:
    """While entered, SIGINT and SIGTERM only set ``requested``: the loop finishes its step and the stage saves."""

    def __init__(self, then: str) -> None:
        self.then = then  # what happens after the step, for the message: "saving model_latest.pth"
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.requested = True
        tqdm.write(f"received {signal.Signals(signum).name}: finishing this step, then {self.then}")

    def __enter__(self) -> StopOnSignal:
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _traceback: TracebackType | None
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def mixed_precision(device: torch.device) -> torch.autocast:
    """bf16 autocast on GPUs that have it (no loss scaling needed), float32 elsewhere (CPUs, GPUs before Ampere).
    QAT does not use it: its fake quantisers must round in float32 exactly as the INT8 graph does."""
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.autocast(device.type, dtype=torch.bfloat16 if bf16 else torch.float32, enabled=bf16)


def optimizer_step(
    optimizer: torch.optim.Optimizer, total: torch.Tensor, terms: dict[str, float], fix: str, where: str = ""
) -> None:
    """Backward and update, refusing a non-finite loss first (it would turn every weight into NaN)."""
    if not math.isfinite(terms["total"]):
        raise DSRIRError(f"loss is {terms['total']}{where}: {fix}")
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()


@dataclass
class LoopResult:
    steps: int  # steps run by this call
    stopped: bool  # a signal or the stop condition ended it before the batches ran out
    losses: list[float] = field(default_factory=list)  # "total" of every step, in order
    last_terms: dict[str, float] = field(default_factory=dict)


def run_steps(
    batches: Iterable[Batch],
    step: Step,
    stop: StopOnSignal,
    *,
    desc: str,
    total: int | None = None,
    initial: int = 0,
    progress: bool = True,
    should_stop: Callable[[bool], bool] | None = None,
    postfix: Callable[[], dict[str, str]] | None = None,
) -> LoopResult:
    """Run ``step`` on each batch until they run out, a signal arrives or ``should_stop`` says so.

    ``should_stop`` receives whether a signal arrived and is called after every step on every process (the
    trainer makes it a collective decision, so all ranks stop at the same step); without it a signal stops.
    """
    result = LoopResult(0, False)
    with tqdm(batches, desc=desc, total=total, initial=initial, disable=not progress, dynamic_ncols=True) as bar:
        for batch in bar:
            terms = step(batch)
            result.steps += 1
            result.losses.append(terms["total"])
            result.last_terms = terms
            shown = {name: f"{value:.4g}" for name, value in terms.items() if name != "total" or len(terms) == 1}
            bar.set_postfix({**shown, **(postfix() if postfix else {})})
            if should_stop(stop.requested) if should_stop else stop.requested:
                result.stopped = True
                break
    return result
