"""``python -m train.blend``: average the weights of checkpoints of one network (WiSE-FT, model soups).

    python -m train.blend --checkpoints weights/dsrir-xs-p50_all_in_one.safetensors \\
        experiments/all_in_one/models/xs-p50-v7/model_24.pth --shares 0.5 0.5 --output xs-p50-v7-blend.pth

A fine-tune that gains on some degradations often loses on others; averaging it with the weights it started
from keeps much of both when the two lie in one basin (Wortsman et al., "Robust fine-tuning of zero-shot
models", CVPR 2022; "Model soups", ICML 2022). No data and no training: every floating-point tensor becomes the
share-weighted sum of the inputs' (computed in float64), any other tensor must be equal in all of them. The inputs
must hold the same architecture (config and tensor shapes) and mode. The result is an ordinary checkpoint (epoch 0,
no optimiser) that records the blend (file, sha256, share, which weights), and the union of the inputs'
degradation sets, so ``benchmarks/quality.py`` and ``scripts/ship_weights.py`` take it like any other.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dsrir.checkpoint import (
    LoadedWeights,
    StateDict,
    WhichWeights,
    official_checkpoint,
    read_weights,
    save_pth,
    shapes_of,
)
from dsrir.cli import command
from dsrir.cli_help import DefaultsHelpFormatter
from dsrir.data.degradations import recorded_degradations, union_of
from dsrir.digest import file_sha256
from dsrir.errors import DSRIRError
from dsrir.model.arch import DSRIR
from dsrir.modes import DEFAULT_MODE, recorded_mode
from dsrir.paths import refuse_overwriting_inputs

SHARE_TOLERANCE = 1e-6


@dataclass
class BlendInput:
    path: Path
    share: float
    weights: LoadedWeights


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train.blend", description=__doc__, formatter_class=DefaultsHelpFormatter
    )
    parser.add_argument(
        "--checkpoints", type=Path, nargs="+", required=True, help="two or more .pth/.safetensors of one network"
    )
    parser.add_argument(
        "--shares",
        type=float,
        nargs="+",
        help="each checkpoint's share of the blend, one per checkpoint, from 0 to 1, summing to 1 (default: equal)",
    )
    parser.add_argument(
        "--weights",
        choices=("ema", "raw"),
        default="ema",
        help="which weights of a .pth training checkpoint: its EMA (as validation and shipping use) or raw",
    )
    parser.add_argument("--output", type=Path, required=True, help="the blended checkpoint (.pth)")
    return parser


def checked_shares(shares: Sequence[float] | None, count: int) -> list[float]:
    if count < 2:
        raise DSRIRError(f"--checkpoints: got {count} file, expected two or more to blend")
    if shares is None:
        return [1.0 / count] * count
    if len(shares) != count:
        raise DSRIRError(f"--shares: got {len(shares)} value(s) for {count} checkpoints, expected one per checkpoint")
    if any(not 0.0 <= share <= 1.0 for share in shares):
        raise DSRIRError(f"--shares {' '.join(f'{s:g}' for s in shares)}: each share must lie from 0 to 1")
    if not math.isclose(sum(shares), 1.0, abs_tol=SHARE_TOLERANCE):
        raise DSRIRError(f"--shares {' '.join(f'{s:g}' for s in shares)}: sum to {sum(shares):g}, expected 1")
    return list(shares)


def check_same_network(inputs: Sequence[BlendInput]) -> None:
    """Same config, tensor names and shapes, and mode as the first input; else one line naming both files."""
    first = inputs[0]
    first_mode = recorded_mode(first.weights.metadata) or DEFAULT_MODE
    first_shapes = shapes_of(first.weights.state_dict)
    for item in inputs[1:]:
        if item.weights.config.to_dict() != first.weights.config.to_dict():
            raise DSRIRError(f"{item.path}: a different architecture from {first.path}; only one network blends")
        if shapes_of(item.weights.state_dict) != first_shapes:
            raise DSRIRError(f"{item.path}: tensors differ in name or shape from {first.path}")
        mode = recorded_mode(item.weights.metadata) or DEFAULT_MODE
        if mode != first_mode:
            raise DSRIRError(f"{item.path}: mode {mode}, {first.path} is {first_mode}; only one mode blends")


def blend_state_dicts(state_dicts: Sequence[StateDict], shares: Sequence[float]) -> StateDict:
    """The share-weighted sum of each floating-point tensor (in float64, cast back); others must be equal."""
    blended: StateDict = {}
    for name, first in state_dicts[0].items():
        if first.is_floating_point():
            total = sum(share * state[name].double() for state, share in zip(state_dicts, shares))
            blended[name] = torch.as_tensor(total).to(first.dtype)
        elif all(torch.equal(first, state[name]) for state in state_dicts[1:]):
            blended[name] = first.clone()
        else:
            raise DSRIRError(f"tensor {name} ({first.dtype}) differs between the checkpoints and cannot be averaged")
    return blended


def clean_fraction_of(inputs: Sequence[BlendInput]) -> float | None:
    """The largest share of clean samples any input trained with (v3-era weights: none); None if one is unknown."""
    fractions = []
    for item in inputs:
        metadata = item.weights.metadata
        if metadata.get("clean_fraction") is not None:
            fractions.append(float(metadata["clean_fraction"]))
        elif not metadata.get("degradations"):
            fractions.append(0.0)
        else:
            return None
    return max(fractions)


def distance(a: StateDict, b: StateDict) -> float:
    """||a - b|| / ||b|| over all floating-point tensors: how far an input lies from the blend."""
    names = [name for name, tensor in b.items() if tensor.is_floating_point()]
    diff = math.sqrt(sum(float((a[n].double() - b[n].double()).pow(2).sum()) for n in names))
    norm = math.sqrt(sum(float(b[n].double().pow(2).sum()) for n in names))
    return diff / norm if norm else 0.0


def run(args: argparse.Namespace) -> None:
    shares = checked_shares(args.shares, len(args.checkpoints))
    if args.output.suffix != ".pth":
        raise DSRIRError(f"--output {args.output}: expected a .pth file (scripts/ship_weights.py makes .safetensors)")
    refuse_overwriting_inputs([("--output", args.output)], args.checkpoints)
    which: WhichWeights = args.weights
    # .safetensors files hold one set of weights (the shipped ones): read them as they are
    inputs = [
        BlendInput(path, share, read_weights(path, which if path.suffix == ".pth" else "ema"))
        for path, share in zip(args.checkpoints, shares)
    ]
    check_same_network(inputs)
    state = blend_state_dicts([item.weights.state_dict for item in inputs], shares)
    model = DSRIR(inputs[0].weights.config)
    model.load_state_dict(state, strict=True)
    record = [
        {
            "file": item.path.name,
            "sha256": file_sha256(item.path),
            "share": item.share,
            "weights": str(item.weights.metadata.get("weights", "shipped")),  # safetensors may not say
        }
        for item in inputs
    ]
    trained_on = union_of([recorded_degradations(item.weights.metadata.get("degradations")) for item in inputs])
    extra: dict[str, Any] = {
        "mode": recorded_mode(inputs[0].weights.metadata) or DEFAULT_MODE,
        "degradations": trained_on.spec,
        "blend": json.dumps(record),
    }
    clean = clean_fraction_of(inputs)
    if clean is not None:
        extra["clean_fraction"] = clean
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_pth(args.output, official_checkpoint(model, inputs[0].weights.preset, epoch=0, **extra))
    print(f"{'checkpoint':<48} {'weights':>7} {'share':>6} {'distance to blend':>18}")
    for item, entry in zip(inputs, record):
        name = str(item.path) if len(str(item.path)) <= 48 else "..." + str(item.path)[-45:]
        away = distance(item.weights.state_dict, state)
        print(f"{name:<48} {entry['weights']:>7} {item.share:>6.3f} {away:>18.4f}")
    print(f"blend of {len(inputs)} checkpoints written to {args.output} (trained on: {extra['degradations']})")


@command()
def main(argv: Sequence[str] | None = None) -> int:
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
