"""``--max-memory``: the peak memory a restoring process may use, and the tile size that keeps it there.

Why: the network's activations grow with the image, about 1.4 KB per pixel for the shipped weights on a CPU, so a
4000x4000 photo restored whole needs over 20 GB and an 8 GB Jetson dies. Tiling by a pixel count cannot know
that; the budget can. The planner's model of a process's peak memory:

    FIXED_BYTES                                  the interpreter, the libraries and the model
  + FRAME_BYTES_PER_PIXEL x the image's pixels   the decoded image, its float copy, the blended result, queued frames
  + activation bytes per pixel x a tile's pixels the network's activations (or the whole padded image's)

Activations scale with the network's widest layer (DSRIR's full-resolution ``ebd`` convolution: 144 channels for
``dsrir``, 96 for ``dsrir-xs``, 72 for the shipped pruned weights), so they are planned as
ACTIVATION_BYTES_PER_CHANNEL x its channels per pixel. Measured with ``benchmarks/activation_memory.py`` (the slope of
peak RSS over the input's pixels, a fresh process per size; AMD EPYC Zen 3, 2 cores), bytes per pixel and per
channel of the widest layer:

    ONNX Runtime 1.32 CPU   shipped weights 1,372 (19.1, 512-1536 px squares)   dsrir-xs 2,143 (22.3, 512-1024)
    PyTorch 2.13 eager CPU  shipped weights 1,209 (16.8, 1024-1536)   dsrir-xs 1,347 (14.0, 512-1024)
                            256-512 px: shipped 2,111 (29.3), dsrir-xs 1,864 (19.4), dsrir 2,693 (18.7)

Planned with 24 for both, and 512 MiB for the fixed part (measured 50-150 MB with ONNX Runtime, 260-440 MB with
PyTorch): the planned total lies above every peak measured, small squares included (shipped weights in PyTorch
at 512 px: 806 MiB measured, 944 planned). End to end with the defaults (/usr/bin/time -v): python -m dsrir.restore
on a 4000x4000 JPEG peaked at 2,044,976 KiB (912-pixel tiles; 4,215,868 KiB and an allocator error before, under
an 8 GiB limit), python -m runtime.video with ONNX Runtime on a 6000x4000 JPEG folder at 2,390,812 KiB (728-pixel
tiles; 6,830,272 KiB and an ONNX Runtime arena error before). Other backends (CUDA, TensorRT) are not measured:
a TensorRT engine's memory is fixed when it is built, so only its profile limits the frame.
"""

from __future__ import annotations

import argparse
import math
import re

from dsrir.errors import DSRIRError
from dsrir.tiling import round_up

DEFAULT_MAX_MEMORY = "3GB"  # leaves an 8 GB Jetson room for the system, the display and the video pipeline
FIXED_BYTES = 512 * 2**20
FRAME_BYTES_PER_PIXEL = 64
ACTIVATION_BYTES_PER_CHANNEL = 24
MIN_TILE_MULTIPLES = 4  # the smallest tile the planner offers, in network size multiples (32 pixels for DSRIR)

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*")


def size_argument(text: str) -> int:
    """``--max-memory``'s type: ``3GB`` (10^9 bytes), ``2.5GiB`` (2^30), ``512MB``, ``700000000`` -> bytes; a bad
    value is argparse's usual usage error naming the flag."""
    match = _SIZE.fullmatch(text)
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in _UNITS or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive size such as 3GB, 512MB or 2.5GiB")
    return int(float(match.group(1)) * _UNITS[unit])


def format_size(size: int) -> str:
    return f"{size / 10**9:.2f} GB" if size >= 10**9 else f"{size / 10**6:.0f} MB"


def activation_bytes_per_pixel(widest_channels: int) -> int:
    """Planned activation memory per input pixel of a network whose widest layer has ``widest_channels``."""
    return ACTIVATION_BYTES_PER_CHANNEL * max(widest_channels, 3)


def tile_for_budget(
    budget: int, image_hw: tuple[int, int], per_pixel: int, multiple: int, images: int = 1
) -> tuple[int, int] | None:
    """The largest tile (H, W), multiples of ``multiple``, whose activations keep ``images`` images of ``image_hw``
    restored at once within ``budget``; None when the whole padded images fit. A side shorter than a square tile
    is taken whole and the other side gets the rest of the budget. DSRIRError when not even the smallest tile fits.
    """
    height, width = image_hw
    padded_h, padded_w = round_up(height, multiple), round_up(width, multiple)
    free = budget - FIXED_BYTES - FRAME_BYTES_PER_PIXEL * height * width * images
    cost = per_pixel * images  # per tile pixel
    if free >= cost * padded_h * padded_w:
        return None
    smallest = MIN_TILE_MULTIPLES * multiple
    pixels = max(free, 0) // cost
    edge = math.isqrt(pixels) // multiple * multiple
    if edge < smallest:
        need = budget - free + cost * smallest * smallest
        raise DSRIRError(
            f"--max-memory {format_size(budget)}: too little for a {width}x{height} image; it needs at least "
            f"{format_size(need)} (the image's own buffers and {smallest}x{smallest}-pixel tiles)"
        )
    if padded_h <= edge:
        return padded_h, min(pixels // padded_h // multiple * multiple, padded_w)
    if padded_w <= edge:
        return min(pixels // padded_w // multiple * multiple, padded_h), padded_w
    return edge, edge


def images_per_inference(budget: int, image_hw: tuple[int, int], images: int, per_pixel: int, multiple: int) -> int:
    """How many of ``images`` whole images of ``image_hw`` one inference may take within ``budget`` (at least 1)."""
    padded = round_up(image_hw[0], multiple) * round_up(image_hw[1], multiple)
    free = budget - FIXED_BYTES - FRAME_BYTES_PER_PIXEL * image_hw[0] * image_hw[1] * images
    return max(1, min(images, free // (per_pixel * padded)))
