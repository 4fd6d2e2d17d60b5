"""Pure sizing for the TensorRT backend: buffer sizes and optimisation profiles, testable without TensorRT or a GPU.

How big each host/device buffer must be, and which profile an execution context takes, is arithmetic, kept here;
what to do with a frame outside a profile is :mod:`runtime.fit`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime.fit import Profile

LAYOUTS = ("nchw", "nhwc")


@dataclass(frozen=True)
class BufferPlan:
    """Shapes and byte counts of the input and output bindings for one batch of frames."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_bytes: int
    output_bytes: int


def plan_buffers(
    hw: tuple[int, int],
    dtype: np.dtype | type,
    layout: str,
    batch: int = 1,
    output_dtype: np.dtype | type | None = None,
) -> BufferPlan:
    """Binding shapes and sizes for a network-sized (padded) ``hw``; size buffers with the profile maximum so a
    later, smaller frame reuses them. ``output_dtype`` defaults to the input's (the engine says each)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}: expected one of {LAYOUTS}")
    shape = (batch, 3, hw[0], hw[1]) if layout == "nchw" else (batch, hw[0], hw[1], 3)
    count = int(np.prod(shape))
    out_itemsize = np.dtype(output_dtype if output_dtype is not None else dtype).itemsize
    return BufferPlan(shape, shape, count * np.dtype(dtype).itemsize, count * out_itemsize)


def profile_candidates(slot: int, profiles: int) -> list[int]:
    """Optimisation profiles to try for execution context ``slot`` whose engine has ``profiles`` profiles.

    Profile 0 first: every context shares it on TensorRT 10+, and on 8.6 when the engine was built with
    ``PreviewFeature.PROFILE_SHARING_0806``. Otherwise (8.5, or 8.6 without sharing) a profile serves one context
    at a time (NvInferRuntime.h at v8.6.1, ``createExecutionContext``/``getOptimizationProfile``), so the slot's
    own profile comes next when the engine has one per slot.
    """
    return [0] + ([slot] if 0 < slot < profiles else [])


def needs_realloc(current: BufferPlan | None, wanted: BufferPlan) -> bool:
    """True when the allocated buffers are too small for ``wanted`` (bigger ones are reused)."""
    return current is None or wanted.input_bytes > current.input_bytes or wanted.output_bytes > current.output_bytes


def profile_from_shapes(
    min_shape: tuple[int, ...], opt_shape: tuple[int, ...], max_shape: tuple[int, ...], layout: str
) -> Profile:
    """A Profile from TensorRT's (min, opt, max) input shapes in ``layout``."""
    first = 2 if layout == "nchw" else 1

    def pick(shape: tuple[int, ...]) -> tuple[int, int]:
        return int(shape[first]), int(shape[first + 1])

    return Profile(pick(min_shape), pick(opt_shape), pick(max_shape))
