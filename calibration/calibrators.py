"""Activation-range calibrators: feed a tensor's values batch by batch, then ask for one symmetric ``amax``.

Pure numpy, one object per tensor. ``max`` keeps the exact largest ``|x|``; ``percentile`` and ``entropy`` keep a
histogram of ``|x|`` (2048 bins over the first batch's range, extended with bins of the same width when a later
batch reaches further, as pytorch-quantization's and ONNX Runtime's histogram calibrators do) and derive ``amax``
from it. ``entropy`` is TensorRT's EntropyCalibration2: the clipping threshold whose 128-level quantisation keeps
the distribution closest (KL divergence) to the clipped original.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from dsrir.graph.quant import INT8_MAX

HISTOGRAM_BINS = 2048
# A tensor whose range keeps growing is re-binned (pairs of bins merged) rather than grown past this many bins.
MAX_HISTOGRAM_BINS = 4 * HISTOGRAM_BINS
INT8_LEVELS = INT8_MAX + 1  # |x| quantised to 0..127: the 128 levels of the entropy search
BLOCK = 1 << 16  # values binned per step


class Calibrator(Protocol):
    def collect(self, values: np.ndarray) -> None: ...

    def compute_amax(self) -> float: ...


class MaxCalibrator:
    """The largest ``|x|`` seen: exact, and what TensorRT's MinMaxCalibrator would use."""

    def __init__(self) -> None:
        self.amax = 0.0

    def collect(self, values: np.ndarray) -> None:
        if values.size:
            self.amax = max(self.amax, float(np.max(values)), -float(np.min(values)))

    def compute_amax(self) -> float:
        return self.amax


class AbsHistogram:
    """Counts of ``|x|`` in equal-width bins starting at 0; the width is fixed by the first non-zero batch."""

    def __init__(self, bins: int = HISTOGRAM_BINS, max_bins: int = MAX_HISTOGRAM_BINS) -> None:
        self.bins, self.max_bins = bins, max_bins
        self.width = 0.0
        self.counts = np.zeros(0, np.int64)
        self.zeros = 0  # all-zero batches before the width is known

    def add(self, values: np.ndarray) -> None:
        top = max(float(np.max(values)), -float(np.min(values))) if values.size else 0.0
        if self.width == 0.0:
            if top == 0.0:
                self.zeros += values.size
                return
            self.width = top / self.bins
            self.counts = np.zeros(self.bins, np.int64)
            self.counts[0] = self.zeros
        self._reach(top)
        self.counts += self._bin(values.ravel())

    def _bin(self, flat: np.ndarray) -> np.ndarray:
        """Counts per bin, in blocks that stay in cache (about twice as fast as whole-tensor temporaries)."""
        bins, scale = len(self.counts), np.float32(1.0 / self.width)
        counts = np.zeros(bins, np.int64)
        scaled = np.empty(min(BLOCK, flat.size), np.float32)
        for start in range(0, flat.size, BLOCK):
            part = scaled[: min(BLOCK, flat.size - start)]
            np.abs(flat[start : start + len(part)], out=part)
            part *= scale
            index = part.astype(np.intp)
            np.minimum(index, bins - 1, out=index)  # |x| == top (and float rounding) into the last bin
            counts += np.bincount(index, minlength=bins)
        return counts

    def _reach(self, top: float) -> None:
        """Grow the histogram so ``top`` falls inside: more bins of the same width, pairs merged past the cap."""
        needed = int(np.ceil(top / self.width))
        while needed > self.max_bins:
            if len(self.counts) % 2:
                self.counts = np.append(self.counts, 0)
            self.counts = self.counts.reshape(-1, 2).sum(axis=1)
            self.width *= 2
            needed = int(np.ceil(top / self.width))
        if needed > len(self.counts):
            self.counts = np.concatenate([self.counts, np.zeros(needed - len(self.counts), np.int64)])


class HistogramCalibrator:
    """Collects a histogram of ``|x|``; a subclass derives ``amax`` from the counts (0 when nothing was seen)."""

    def __init__(self, bins: int = HISTOGRAM_BINS) -> None:
        self.histogram = AbsHistogram(bins)

    def collect(self, values: np.ndarray) -> None:
        self.histogram.add(values)

    def compute_amax(self) -> float:
        counts = self.histogram.counts
        return self.amax_from(counts) if counts.size else 0.0

    def amax_from(self, counts: np.ndarray) -> float:
        raise NotImplementedError


class PercentileCalibrator(HistogramCalibrator):
    """``amax`` = the ``percentile`` of ``|x|`` (to one bin width: the upper edge of the bin that reaches it)."""

    def __init__(self, percentile: float = 99.99, bins: int = HISTOGRAM_BINS) -> None:
        if not 0.0 < percentile <= 100.0:
            raise ValueError(f"percentile must be in (0, 100], got {percentile}")
        super().__init__(bins)
        self.percentile = percentile

    def amax_from(self, counts: np.ndarray) -> float:
        cumulative = np.cumsum(counts)
        index = int(np.searchsorted(cumulative, cumulative[-1] * self.percentile / 100.0))
        return (min(index, len(counts) - 1) + 1) * self.histogram.width


class EntropyCalibrator(HistogramCalibrator):
    """TensorRT's EntropyCalibration2 on a histogram of ``|x|`` (8-bit Inference with TensorRT, GTC 2017).

    For every candidate threshold bin ``i`` from 128 to the histogram's length: the reference ``P`` is
    ``hist[:i]`` with the clipped outliers ``hist[i:]`` added to its last bin; the candidate ``Q`` is ``hist[:i]``
    merged into 128 levels and spread back evenly over each level's non-empty bins (empty bins stay empty). The
    ``i`` with the smallest KL(P || Q) of the normalised distributions wins: ``amax = (i + 0.5) * bin width``.
    As in pytorch-quantization, the zero bin takes its neighbour's count first: exact zeros (half of every ReLU
    output) quantise without error, and left in they would dominate the divergence and drag ``amax`` down.
    """

    def __init__(self, bins: int = HISTOGRAM_BINS, levels: int = INT8_LEVELS) -> None:
        super().__init__(bins)
        self.levels = levels

    def amax_from(self, counts: np.ndarray) -> float:
        divergence = entropy_divergences(counts, self.levels)
        best = self.levels + int(np.argmin(divergence))
        return (best + 0.5) * self.histogram.width


def entropy_divergences(counts: np.ndarray, levels: int = INT8_LEVELS) -> np.ndarray:
    """KL(P || Q) for every threshold bin ``i`` in ``levels .. len(counts)`` (see :class:`EntropyCalibrator`).

    Vectorised over the candidates with prefix sums: for bin ``j`` of level ``k``, ``p_j = h_j / T`` (the last
    kept bin also holds the outliers) and ``q_j = (G_k / Z_k) / S_i`` with ``G_k`` the level's count, ``Z_k`` its
    non-empty bins and ``S_i`` the kept count, so ``KL = sum_j p_j log p_j - sum_k (P mass of k) log q_k``.
    """
    hist = counts.astype(np.float64)
    if len(hist) > 1:
        hist[0] = hist[1]
    total = hist.sum()
    if len(hist) < levels or total == 0:
        return np.zeros(1)
    kept = np.arange(levels, len(hist) + 1)  # candidate i: bins 0 .. i-1 kept
    prefix = np.concatenate([[0.0], np.cumsum(hist)])
    nonzero = np.concatenate([[0], np.cumsum(hist > 0)])
    with np.errstate(divide="ignore", invalid="ignore"):
        h_log_h = np.concatenate([[0.0], np.cumsum(np.where(hist > 0, hist * np.log(hist), 0.0))])
    # Level k of candidate i covers bins ceil(k i / levels) .. ceil((k + 1) i / levels) - 1; level `levels - 1`
    # always holds the last kept bin i - 1.
    edges = -((-np.arange(levels + 1)[None, :] * kept[:, None]) // levels)
    level_count = np.diff(prefix[edges], axis=1)
    level_nonzero = np.diff(nonzero[edges], axis=1)
    last = hist[kept - 1]
    outliers = total - prefix[kept]
    p_mass = level_count.copy()
    p_mass[:, -1] += outliers  # P's mass per level: the outliers sit in the last bin
    with np.errstate(divide="ignore", invalid="ignore"):
        log_q = np.log(level_count / level_nonzero) - np.log(prefix[kept])[:, None]
        cross = np.where(level_count > 0, p_mass * log_q, 0.0).sum(axis=1)
        last_p = last + outliers
        # sum p log p over the kept bins: the inner bins from the prefix, the last bin with its outliers
        inner = h_log_h[kept - 1] + np.where(last_p > 0, last_p * np.log(last_p), 0.0)
        divergence = (inner - cross) / total - np.log(total)
    # Outliers clipped into an empty last bin: P has mass where Q has none, an infinite divergence.
    divergence[(last == 0) & (outliers > 0)] = np.inf
    return divergence


CALIBRATORS: dict[str, type[MaxCalibrator] | type[PercentileCalibrator] | type[EntropyCalibrator]] = {
    "max": MaxCalibrator,
    "percentile": PercentileCalibrator,
    "entropy": EntropyCalibrator,
}


def make_calibrator(name: str, **kw: Any) -> Calibrator:
    """A fresh calibrator by name (``max``, ``percentile``, ``entropy``); ``kw`` goes to its constructor."""
    if name not in CALIBRATORS:
        raise ValueError(f"unknown calibrator {name!r}; expected one of {', '.join(CALIBRATORS)}")
    return CALIBRATORS[name](**kw)
