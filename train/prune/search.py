"""Structured channel pruning of DSRIR with torch-pruning, searched to a FLOPs or parameter budget.

What makes the dependency graph work on DSRIR (all function-preserving):

* ``ebd`` feeds ``torch.split``, which torch-pruning cannot map: the pruner sees
  :class:`~dsrir.model.arch.SplitEmbedding` (three convs, bit-identical) and the result is merged back.
* Tracing sums every output (three images, three variance maps): otherwise stages 1 and 2's ``conv_out``
  and variance branches are invisible to the graph and break after pruning.
* PatchAttention calls its cell MLP functionally (shared with the fused kernel), so the graph would see
  element-wise ops and never prune ``conv_du``: :class:`PatchAttentionPruner` makes the module one node
  whose input, skip and output channels are coupled.
* The last USAU's ``conv2``/``att_map`` never run (the last stage drops its features) and so are not in the
  graph; :func:`_follow_unused_branch` gives them the channels their live neighbours keep.

The C -> C/r bottlenecks (PatchAttention's cell MLP, PRU's gate) are not ranked by the pruner (PRU's
``fr.0`` is an ignored layer; PatchAttention's are inside the custom node): once C is pruned to C', the
C'/``reduction`` hidden units of largest magnitude are kept (:func:`_shrink_bottleneck`), so ``reduction``
keeps its meaning and hidden widths scale with C. Variance maps stay 3 channels (``var_map`` ignored); the
other 3-channel image convs are pinned by their residual with the input image.

Channels are ranked globally (one threshold over all groups, magnitudes normalised per group): per-layer
uniform ratios move every width in steps of ``round_to`` at once, too coarse to land within 5 % of a budget
on the narrow presets.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch_pruning as tp
from torch import Tensor, nn

from dsrir.errors import DSRIRError
from dsrir.model.arch import DSRIR, PRU, SplitEmbedding, conv_channels
from dsrir.model.cost import REFERENCE_SIZE, count_flops, count_params
from dsrir.ops.patch_attention import PatchAttention

TOLERANCE = 0.05  # a budget is met when the achieved fraction is within 5 % of it
MAX_RATIO = 0.95  # global pruning ratios searched in [0, MAX_RATIO]
SEARCH_STEPS = 14


class PatchAttentionPruner(tp.pruner.BasePruningFunc):
    """PatchAttention as one graph node: channel i of its input, skip and output are the same channel, and
    pruning it removes the cell MLP's column i (squeeze) and row i (expand)."""

    TARGET_MODULES = (PatchAttention,)

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        squeeze, expand = _bottleneck(cast(PatchAttention, layer))
        tp.prune_conv_in_channels(squeeze, list(idxs))
        tp.prune_conv_out_channels(expand, list(idxs))
        return layer

    prune_in_channels = prune_out_channels

    def get_out_channels(self, layer: nn.Module) -> int:
        return _bottleneck(cast(PatchAttention, layer))[0].in_channels

    get_in_channels = get_out_channels


@dataclass(frozen=True)
class PruneOptions:
    """How candidates are pruned: importance norm (1 or 2), channel multiple, torch-pruning steps per candidate."""

    norm: int = 2
    round_to: int = 8
    iterative_steps: int = 1


@dataclass(frozen=True)
class Budget:
    """``kind`` is ``flops`` (at :data:`REFERENCE_SIZE`) or ``params``; ``fraction`` of the unpruned model's."""

    kind: str
    fraction: float

    def __post_init__(self) -> None:
        if self.kind not in ("flops", "params"):
            raise ValueError(f"unknown budget kind {self.kind!r}")
        if not 0 < self.fraction < 1:
            raise DSRIRError(f"--target-{self.kind} {self.fraction}: must be a fraction between 0 and 1 (exclusive)")

    def measure(self, model: nn.Module) -> int:
        return count_flops(model, *REFERENCE_SIZE) if self.kind == "flops" else count_params(model)


@dataclass
class SearchResult:
    model: DSRIR
    ratio: float
    fraction: float
    candidates: list[tuple[float, float]]  # (global ratio, achieved fraction) in the order tried
    seconds: float


def prune_to_ratio(model: DSRIR, ratio: float, options: PruneOptions) -> DSRIR:
    """A pruned copy of ``model`` (left untouched) at global pruning ratio ``ratio``, rebuilt from its config."""
    work = copy.deepcopy(model).cpu().eval()
    if not isinstance(work.ebd, nn.Conv2d):
        raise TypeError("expected the model's single ebd convolution")
    work.ebd = SplitEmbedding(work.ebd, work.split_sizes)
    example = torch.zeros(1, 3, work.config.size_multiple, work.config.size_multiple)  # only shapes matter
    ignored = [m.fr[0] for m in work.modules() if isinstance(m, PRU)]
    ignored += [work.get_submodule(f"usau_{i}.var_map.0") for i in (1, 2, 3)]
    pruner = tp.pruner.MetaPruner(
        work,
        example,
        importance=tp.importance.MagnitudeImportance(p=options.norm),
        global_pruning=True,
        pruning_ratio=ratio,
        iterative_steps=options.iterative_steps,
        round_to=options.round_to,
        ignored_layers=ignored,
        customized_pruners={PatchAttention: PatchAttentionPruner()},
        output_transform=_sum_outputs,
    )
    for _ in range(options.iterative_steps):
        for group in pruner.step(interactive=True) or ():
            _follow_unused_branch(work, pruner.DG, group)
            group.prune()
    for module in work.modules():
        if isinstance(module, (PatchAttention, PRU)):
            _shrink_bottleneck(*_bottleneck(module), work.config.reduction, options.norm)
    work.ebd = work.ebd.merged()
    config = dataclasses.replace(work.config, conv_channels=conv_channels(work))
    pruned = DSRIR(config)
    pruned.load_state_dict(work.state_dict(), strict=True)
    return pruned.eval()


def search(
    model: DSRIR, budget: Budget, options: PruneOptions, log: Callable[[str], None] = lambda _: None
) -> SearchResult:
    """Search the global pruning ratio until the budget is met within :data:`TOLERANCE`.

    The cost falls monotonically (in steps) with the ratio. The first probe guesses a quadratic fall (FLOPs
    and params both scale with in x out channels); after that the next ratio interpolates linearly inside
    the bracket of probes on either side of the target (bisection while the upper side is unknown, or when
    interpolation would repeat a probe), which usually lands within tolerance in two or three probes.
    """
    started = time.perf_counter()
    reference = budget.measure(model)
    low, high = (0.0, 1.0), (MAX_RATIO, float("nan"))  # (ratio, fraction): ratio 0 prunes nothing
    ratio = 1 - budget.fraction**0.5
    candidates: list[tuple[float, float]] = []
    best: tuple[float, float, DSRIR] | None = None
    for _ in range(SEARCH_STEPS):
        pruned = prune_to_ratio(model, ratio, options)
        fraction = budget.measure(pruned) / reference
        candidates.append((ratio, fraction))
        log(f"global ratio {ratio:.4f}: {fraction:.3f} of the {budget.kind}")
        if best is None or abs(fraction - budget.fraction) < abs(best[1] - budget.fraction):
            best = (ratio, fraction, pruned)
        if abs(fraction - budget.fraction) <= TOLERANCE * budget.fraction:
            break
        if fraction > budget.fraction:
            low = (ratio, fraction)
        else:
            high = (ratio, fraction)
        ratio = _next_ratio(low, high, budget.fraction, [r for r, _ in candidates])
    assert best is not None
    ratio, fraction, pruned = best
    if abs(fraction - budget.fraction) > TOLERANCE * budget.fraction:
        raise DSRIRError(
            f"--target-{budget.kind} {budget.fraction}: the closest pruning reaches {fraction:.3f} "
            f"(channels move in multiples of --round-to {options.round_to}); try another target or a smaller --round-to"
        )
    note = f"channel-pruned to {fraction:.3f} of the {budget.kind} (global ratio {ratio:.3f})"
    pruned.config = dataclasses.replace(pruned.config, description=f"{model.config.description}; {note}".lstrip("; "))
    return SearchResult(pruned, ratio, fraction, candidates, time.perf_counter() - started)


def _next_ratio(low: tuple[float, float], high: tuple[float, float], target: float, tried: list[float]) -> float:
    """Linear interpolation between the bracketing probes, else their midpoint."""
    midpoint = (low[0] + high[0]) / 2
    if math.isnan(high[1]) or high[1] >= low[1]:
        return midpoint
    guess = low[0] + (low[1] - target) * (high[0] - low[0]) / (low[1] - high[1])
    inside = low[0] < guess < high[0] and all(abs(guess - r) > 1e-3 for r in tried)
    return guess if inside else midpoint


def _sum_outputs(outputs: tuple[list[Tensor], list[Tensor]]) -> Tensor:
    """Every image and variance map reaches the traced output, so every branch is in the graph."""
    images, variances = outputs
    return torch.stack([t.sum() for t in (*images, *variances)]).sum()


def _bottleneck(module: PatchAttention | PRU) -> tuple[nn.Conv2d, nn.Conv2d]:
    """The C -> C/r (squeeze) and C/r -> C (expand) convolutions of a PatchAttention or PRU gate."""
    layers = module.conv_du if isinstance(module, PatchAttention) else module.fr
    return cast(nn.Conv2d, layers[0]), cast(nn.Conv2d, layers[2])


def _shrink_bottleneck(squeeze: nn.Conv2d, expand: nn.Conv2d, reduction: int, norm: int) -> None:
    """Keep the C'/reduction hidden units with the largest norm of their squeeze row and expand column."""
    keep = max(1, squeeze.in_channels // reduction)
    score = squeeze.weight.detach().flatten(1).norm(p=norm, dim=1)
    score += expand.weight.detach().transpose(0, 1).flatten(1).norm(p=norm, dim=1)
    drop = score.argsort()[: squeeze.out_channels - keep].tolist()
    if drop:
        tp.prune_conv_out_channels(squeeze, drop)
        tp.prune_conv_in_channels(expand, drop)


def _follow_unused_branch(model: DSRIR, graph: Any, group: Any) -> None:
    """Prune the last USAU's never-run ``conv2``/``att_map`` like the live layers beside them: their input
    and output are the features ``conv1`` reads, ``att_map`` reads what ``var_est`` writes."""
    usau = model.usau_3
    conv2, att_map = usau.conv2, cast(nn.Conv2d, usau.att_map[0])
    for dep, idxs in group:
        if dep.target.module is usau.conv1 and graph.is_in_channel_pruning_fn(dep.handler):
            tp.prune_conv_in_channels(conv2, idxs)
            tp.prune_conv_out_channels(conv2, idxs)
            tp.prune_conv_out_channels(att_map, idxs)
        elif dep.target.module is usau.var_est[0] and graph.is_out_channel_pruning_fn(dep.handler):
            tp.prune_conv_in_channels(att_map, idxs)
