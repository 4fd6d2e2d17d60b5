"""FLOPs and parameter counts of a DSRIR network, pruned or not.

FLOPs are ``torch.utils.flop_counter``'s (2 per multiply-add, convolutions and matmuls) over one full
forward pass (all three stages), counted on the ``meta`` device: shapes only, no arithmetic, so any
size costs milliseconds and the model's own weights are neither copied nor touched.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode

# The size pruning budgets refer to: FLOPs scale almost exactly with H x W (only the patch-attention
# MLPs on fixed grids do not), so one size is enough to compare networks.
REFERENCE_SIZE = (256, 256)
SIZE_720P = (720, 1280)


def count_flops(model: nn.Module, height: int, width: int, batch: int = 1) -> int:
    """FLOPs of ``model(x)`` for an N x 3 x H x W input (H, W multiples of the model's ``size_multiple``)."""
    tensors = {
        name: torch.empty_like(t, device="meta") for name, t in (*model.named_parameters(), *model.named_buffers())
    }
    x = torch.empty(batch, 3, height, width, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        functional_call(model, tensors, (x,))
    return counter.get_total_flops()


def count_params(model: nn.Module) -> int:
    """Every parameter, as the paper counts them (3,516,837 for ``dsrir``)."""
    return sum(p.numel() for p in model.parameters())


def widest_channels(model: nn.Module) -> int:
    """Output channels of the widest convolution: what a network's activation memory per pixel grows with
    (:mod:`dsrir.memory_budget`)."""
    return max((m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)), default=3)
