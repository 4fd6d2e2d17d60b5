"""FLOPs, parameters and PyTorch eager forward time of each preset, side by side in one run.

    python benchmarks/model_cost.py --sizes 256x256 1280x720 --repeats 3 --output model_cost.json

FLOPs are counted by ``dsrir.model.cost`` (``torch.utils.flop_counter``: 2 per multiply-add, convolutions
and matmuls, on the meta device).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from dsrir.model import DSRIR, PRESETS
from dsrir.model.cost import count_flops, count_params


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["256x256", "1280x720"], help="WIDTHxHEIGHT")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per cell (median reported)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--output", default="model_cost.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    paper_flops: dict[str, int] = {}
    for preset in args.presets:
        model = DSRIR(PRESETS[preset]).eval()
        params = count_params(model)
        for size in args.sizes:
            width, height = parse_size(size)
            x = torch.rand(1, 3, height, width)
            flops = count_flops(model, height, width)
            seconds = time_forward(model, x, args.repeats)
            if preset == "dsrir":
                paper_flops[size] = flops
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
    print(f"{'preset':<9} {'size':>9} {'params':>10} {'GFLOPs':>9} {'of paper':>8} {'forward s':>10} {'GFLOP/s':>8}")
    for row in rows:
        share = row["gflops"] * 1e9 / paper_flops[row["size"]] if row["size"] in paper_flops else float("nan")
        row["share_of_paper"] = share
        print(
            f"{row['preset']:<9} {row['size']:>9} {row['params']:>10,} {row['gflops']:>9.1f} {share:>8.0%} "
            f"{row['seconds']:>10.3f} {row['gflops_per_s']:>8.1f}"
        )
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump({"torch": torch.__version__, "threads": args.threads, "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
