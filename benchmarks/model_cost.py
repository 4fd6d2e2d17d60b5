"""FLOPs, parameters and PyTorch eager forward time of each preset (and of checkpoints such as pruned networks),
side by side in one run.

    python benchmarks/model_cost.py --sizes 256x256 1280x720 --repeats 3 --output model_cost.json
    python benchmarks/model_cost.py --presets dsrir-xs --checkpoint weights/dsrir-xs-p50_all_in_one.safetensors

FLOPs are counted by ``dsrir.model.cost`` (``torch.utils.flop_counter``: 2 per multiply-add, convolutions
and matmuls, on the meta device).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere, as the other benchmarks

from dsrir.atomic import write_text_atomic  # noqa: E402
from dsrir.checkpoint import load_model  # noqa: E402
from dsrir.cli import hidden_alias  # noqa: E402
from dsrir.cli_help import DefaultsHelpFormatter  # noqa: E402
from dsrir.model import DSRIR, PRESETS  # noqa: E402
from dsrir.model.cost import count_flops, count_params  # noqa: E402


def parse_size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def time_forward(model: DSRIR, x: torch.Tensor, repeats: int) -> float:
    with torch.inference_mode():
        model.restore(x)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model.restore(x)
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["256x256", "1280x720"], help="WIDTHxHEIGHT")
    parser.add_argument("--presets", nargs="*", default=list(PRESETS), choices=list(PRESETS), help="presets to cost")
    parser.add_argument("--checkpoint", nargs="*", type=Path, default=[], help="checkpoints to add, named by file stem")
    hidden_alias(parser, "--weights", "checkpoint", type=Path, nargs="*")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per cell (median reported)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="PyTorch CPU threads")
    parser.add_argument("--output", default="model_cost.json", help="where to write the JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    rows = []
    paper = DSRIR(PRESETS["dsrir"])  # the share of the paper's network is printed for every row
    paper_flops = {size: count_flops(paper, *reversed(parse_size(size))) for size in args.sizes}
    # Checkpoints load before any timing starts, so a bad path fails at once.
    models = [(preset, DSRIR(PRESETS[preset])) for preset in args.presets]
    models += [(path.stem, load_model(path)[0]) for path in args.checkpoint]
    for preset, model in models:
        model.eval()
        params = count_params(model)
        for size in args.sizes:
            width, height = parse_size(size)
            x = torch.rand(1, 3, height, width)
            flops = count_flops(model, height, width)
            seconds = time_forward(model, x, args.repeats)
            rows.append(
                {
                    "preset": preset,
                    "size": size,
                    "params": params,
                    "gflops": flops / 1e9,
                    "seconds": seconds,
                    "gflops_per_s": flops / 1e9 / seconds,
                }
            )
            print(f"measured {preset} {size}: {seconds:.3f} s", flush=True)

    print(
        f"\nPyTorch {torch.__version__} eager, {args.threads} thread(s), {platform.processor() or platform.machine()}"
    )
    width = max(len(row["preset"]) for row in rows)
    header = f"{'size':>9} {'params':>10} {'GFLOPs':>9} {'of paper':>8} {'forward s':>10} {'GFLOP/s':>8}"
    print(f"{'model':<{width}} {header}")
    for row in rows:
        share = row["gflops"] * 1e9 / paper_flops[row["size"]]
        row["share_of_paper"] = share
        print(
            f"{row['preset']:<{width}} {row['size']:>9} {row['params']:>10,} {row['gflops']:>9.1f} {share:>8.0%} "
            f"{row['seconds']:>10.3f} {row['gflops_per_s']:>8.1f}"
        )
    record = {"torch": torch.__version__, "threads": args.threads, "rows": rows}
    write_text_atomic(Path(args.output), json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
