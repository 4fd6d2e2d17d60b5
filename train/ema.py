"""An exponential moving average of the network's weights, as BasicSR's ``ema_decay`` (its ``net_g_ema``).

Neighbouring checkpoints of a short run differ by 1-2 dB on haze (weights/README.md); the average over the last
~1 / (1 - decay) steps is steadier, so validation, ``model_best.pth`` and every weight file read from a checkpoint
(``dsrir.checkpoint.read_weights``: export, evaluation, shipping) use it. Like BasicSR it starts as a copy of the
weights and is updated after every optimiser step: ema = decay * ema + (1 - decay) * weights; buffers are copied.
"""

from __future__ import annotations

import copy

import torch


class ModelEMA:
    """The averaged copy of ``model`` (``module``, in eval mode, no gradients) and its ``decay`` in (0, 1)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay {decay} is not in (0, 1)")
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        weights = dict(model.named_parameters())
        for name, average in self.module.named_parameters():
            average.mul_(self.decay).add_(weights[name].detach(), alpha=1 - self.decay)
        buffers = dict(model.named_buffers())
        for name, buffer in self.module.named_buffers():
            buffer.copy_(buffers[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state_dict, strict=True)
