"""An exponential moving average of the network's weights, as BasicSR's ``ema_decay`` (its ``net_g_ema``), with
the warm-up of TensorFlow's ``tf.train.ExponentialMovingAverage(num_updates=...)``.

Neighbouring checkpoints of a short run differ by 1-2 dB on haze (weights/README.md); the average over the last
~1 / (1 - decay) steps is steadier, so validation, ``model_best.pth`` and every weight file read from a checkpoint
(``dsrir.checkpoint.read_weights``: export, evaluation, shipping) use it. Like BasicSR it starts as a copy of the
weights and is updated after every optimiser step: ema = d * ema + (1 - d) * weights; buffers are copied.

BasicSR holds d at ``decay`` from the first step, which suits its 300k-step runs but not a fine-tune of a few
thousand: after n steps the starting weights still make up decay ** n of the average (0.999 ** 800 = 45 %), so a
short run's weight files were half the weights it started from (weights/README.md, 2026-12-07). Here
d = min(decay, (1 + n) / (10 + n)) at update n, as TensorFlow's: the average covers about the last tenth of the
run until that reaches ``1 / (1 - decay)`` steps (n ~ 9,000 at 0.999), then BasicSR's.
"""

from __future__ import annotations

import copy

import torch


class ModelEMA:
    """The averaged copy of ``model`` (``module``, in eval mode, no gradients), its ``decay`` in (0, 1) and the
    number of ``updates`` so far (None: a checkpoint from before the warm-up, which continues at ``decay``)."""

    def __init__(self, model: torch.nn.Module, decay: float, updates: int | None = 0) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay {decay} is not in (0, 1)")
        self.decay = decay
        self.updates = updates
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        """The decay the next update uses."""
        if self.updates is None:
            return self.decay
        return min(self.decay, (2 + self.updates) / (11 + self.updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        decay = self.current_decay()
        weights = dict(model.named_parameters())
        for name, average in self.module.named_parameters():
            average.mul_(decay).add_(weights[name].detach(), alpha=1 - decay)
        buffers = dict(model.named_buffers())
        for name, buffer in self.module.named_buffers():
            buffer.copy_(buffers[name])
        if self.updates is not None:
            self.updates += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state_dict, strict=True)
