"""Activation memory per pixel of a model on a CPU backend: the slope of peak RSS over the input's pixel count.

    python benchmarks/activation_memory.py --model weights/dsrir-xs_all_in_one.onnx --sizes 512 1024
    python benchmarks/activation_memory.py --model weights/dsrir-xs_all_in_one.safetensors --sizes 512 1024
    python benchmarks/activation_memory.py --preset dsrir --sizes 256 512

Each size runs in a fresh process (peak RSS only grows), which loads the model, runs one warm-up at 64x64 so
one-time allocations (thread pools, kernels, the ONNX Runtime arena's first chunk) land in the baseline, then one
forward pass at SIZE x SIZE. The slope between sizes is the memory that grows with the pixels, the number
``dsrir.memory_budget`` plans tiles with; the intercept is what does not.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dsrir.cli_help import DefaultsHelpFormatter  # noqa: E402

WARMUP = 64


def peak_rss() -> int:
    """Peak resident set size of this process in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def forward_once(model: str | None, preset: str | None, side: int) -> dict[str, int]:
    """Load, warm up, run one ``side`` x ``side`` forward pass; peak RSS before and after it."""
    if model is not None and model.endswith(".onnx"):
        from runtime.backends import open_backend

        backend = open_backend(model, "onnxruntime")
        backend.infer(np.random.rand(1, 3, WARMUP, WARMUP).astype(np.float32))
        before = peak_rss()
        backend.infer(np.random.rand(1, 3, side, side).astype(np.float32))
        return {"before": before, "after": peak_rss()}
    import torch

    from dsrir.checkpoint import load_model
    from dsrir.model import DSRIR, PRESETS

    net = load_model(model, "cpu")[0] if model else DSRIR(PRESETS[preset or "dsrir"])
    with torch.inference_mode():
        net.eval().restore(torch.rand(1, 3, WARMUP, WARMUP))
        before = peak_rss()
        net.restore(torch.rand(1, 3, side, side))
    return {"before": before, "after": peak_rss()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help=".onnx (ONNX Runtime) or .pth/.safetensors (PyTorch eager)")
    what.add_argument("--preset", help="a preset with random weights (PyTorch eager)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[512, 1024], help="square input sides, two or more")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(forward_once(args.model, args.preset, args.child)))
        return
    which = ["--model", args.model] if args.model else ["--preset", args.preset]
    rows = []
    for side in args.sizes:
        command = [sys.executable, str(Path(__file__).resolve()), *which, "--child", str(side)]
        result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        rows.append((side * side, result["after"]))
        after, before = result["after"] / 2**20, result["before"] / 2**20
        print(f"{side}x{side}: peak RSS {after:.0f} MiB (before the pass {before:.0f})")
    pixels, peaks = np.array([r[0] for r in rows], float), np.array([r[1] for r in rows], float)
    slope, intercept = np.polyfit(pixels, peaks, 1)
    print(
        f"{args.model or args.preset}: {slope:.0f} bytes per pixel, {intercept / 2**20:.0f} MiB fixed "
        f"({platform.processor() or platform.machine()}, {len(rows)} sizes)"
    )


if __name__ == "__main__":
    main()
