"""Fused patch attention vs the eager PAB tail, and vs a device-to-device copy, on one CUDA GPU.

    python benchmarks/patch_attention.py --output patch_attention.json

At 1080p (N=1, C=64, 1080x1920) for grids 8x8 and 1x1 in fp32 and fp16, times (CUDA events,
warm-up, median of --repeats) three things on the same tensors in the same run:

* eager: the reference ``patch_attention(res, ..., skip)``, i.e. what PatchAttention + the PAB
  residual ran before the fused op;
* fused: ``torch.ops.dsrir.patch_attention`` (res read twice, skip read once, out written once);
* copy:  ``y.copy_(res)`` (one read, one write), the bandwidth the fused op is judged against.

Targets: fused >= 2x faster than eager, and fused bandwidth >= 70 % of the copy's. Without CUDA it
says so and exits 0; numbers are never made up.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from dsrir.cli_help import DefaultsHelpFormatter  # noqa: E402

TARGET_SPEEDUP = 2.0
TARGET_COPY_FRACTION = 0.70


def cuda_time_ms(fn: Callable[[], object], warmup: int, repeats: int) -> float:
    """Median milliseconds of ``fn`` on the current stream, one pair of CUDA events per run."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def measure(
    shape: tuple[int, int, int, int],
    dtype: torch.dtype,
    grid: tuple[int, int],
    weights: tuple[torch.Tensor, ...],
    warmup: int,
    repeats: int,
) -> dict[str, object]:
    """Eager, fused and copy times for one variant, on the same tensors."""
    from dsrir.ops.patch_attention import patch_attention
    from dsrir.ops.patch_attention_cuda import patch_attention_op

    res = torch.randn(shape, device=weights[0].device, dtype=dtype)
    skip = torch.randn_like(res)
    copy_dst = torch.empty_like(res)
    w1, b1, w2, b2 = weights
    e1, f1, e2, f2 = (t.to(dtype) for t in weights)  # eager runs with the module's own dtype
    gh, gw = grid
    with torch.inference_mode():
        eager_ms = cuda_time_ms(lambda: patch_attention(res, e1, f1, e2, f2, grid, skip), warmup, repeats)
        fused_ms = cuda_time_ms(lambda: patch_attention_op(res, skip, w1, b1, w2, b2, gh, gw), warmup, repeats)
        copy_ms = cuda_time_ms(lambda: copy_dst.copy_(res), warmup, repeats)
        expected = patch_attention(res.float(), w1, b1, w2, b2, grid, skip.float())
        got = patch_attention_op(res, skip, w1, b1, w2, b2, gh, gw).float()
        rel = float((got - expected).abs().max() / expected.abs().max())
    tensor_bytes = res.numel() * res.element_size()
    fused_gbs = 4 * tensor_bytes / (fused_ms * 1e6)  # 2 reads of res, 1 read of skip, 1 write of out
    copy_gbs = 2 * tensor_bytes / (copy_ms * 1e6)  # 1 read, 1 write
    speedup, fraction = eager_ms / fused_ms, fused_gbs / copy_gbs
    return {
        "grid": list(grid),
        "dtype": str(dtype).removeprefix("torch."),
        "eager_ms": eager_ms,
        "fused_ms": fused_ms,
        "copy_ms": copy_ms,
        "speedup": speedup,
        "fused_gb_s": fused_gbs,
        "copy_gb_s": copy_gbs,
        "fused_over_copy": fraction,
        "max_rel_err_vs_fp32_eager": rel,
        "meets_speedup_target": speedup >= TARGET_SPEEDUP,
        "meets_bandwidth_target": fraction >= TARGET_COPY_FRACTION,
    }


def print_row(row: dict) -> None:
    verdict = (
        f"{'2x ok' if row['meets_speedup_target'] else '2x BELOW'}, "
        f"{'70% ok' if row['meets_bandwidth_target'] else '70% BELOW'}"
    )
    print(
        f"{row['variant']:<14}{row['eager_ms']:>10.3f}{row['fused_ms']:>10.3f}{row['speedup']:>9.2f}x"
        f"{row['fused_gb_s']:>12.0f}{row['copy_gb_s']:>11.0f}{row['fused_over_copy']:>12.0%}  {verdict:<20}"
        f"{row['max_rel_err_vs_fp32_eager']:>9.1e}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT (divisible by 8)")
    parser.add_argument("--channels", type=int, default=64, help="feature channels of the attention input")
    parser.add_argument("--batch", type=int, default=1, help="frames per call")
    parser.add_argument("--grids", nargs="+", default=["8x8", "1x1"], help="grids as GHxGW")
    parser.add_argument(
        "--dtypes", nargs="+", default=["fp32", "fp16"], choices=["fp32", "fp16"], help="precisions to time"
    )
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls first")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls (median reported)")
    parser.add_argument("--output", default="patch_attention_benchmark.json", help="JSON results")
    args = parser.parse_args(argv)

    if not torch.cuda.is_available():
        print("benchmarks/patch_attention.py: no CUDA device here, nothing measured")
        return 0

    from dsrir.ops.patch_attention_cuda import fused_patch_attention_available, fused_unavailable_reason

    if not fused_patch_attention_available():
        print(f"benchmarks/patch_attention.py: the fused op is unavailable: {fused_unavailable_reason()}")
        return 1

    width, height = (int(v) for v in args.size.lower().split("x"))
    n, c = args.batch, args.channels
    hidden = max(1, c // 8)
    device = torch.device("cuda")
    torch.manual_seed(0)  # weights in the 1x1 conv layout, float32 as in the model
    w1 = torch.randn(hidden, c, 1, 1, device=device) * 0.2
    b1 = torch.randn(hidden, device=device) * 0.1
    w2 = torch.randn(c, hidden, 1, 1, device=device) * 0.2
    b2 = torch.randn(c, device=device) * 0.1

    rows = []
    header = (
        f"{'variant':<14}{'eager ms':>10}{'fused ms':>10}{'speed-up':>10}{'fused GB/s':>12}"
        f"{'copy GB/s':>11}{'fused/copy':>12}  {'targets':<20}{'rel.err':>9}"
    )
    print(
        f"{torch.cuda.get_device_name()}, torch {torch.__version__}, N={n} C={c} H={height} W={width}, "
        f"median of {args.repeats}; targets: speed-up >= {TARGET_SPEEDUP:.0f}x, fused/copy >= "
        f"{TARGET_COPY_FRACTION:.0%}; rel.err: fused vs fp32 eager"
    )
    print(header)
    print("-" * len(header))
    for dtype_name in args.dtypes:
        dtype = torch.float32 if dtype_name == "fp32" else torch.float16
        for grid_text in args.grids:
            gh, gw = (int(v) for v in grid_text.lower().split("x"))
            if height % gh or width % gw:
                print(f"{grid_text} {dtype_name}: {height}x{width} is not divisible by the grid, skipped")
                continue
            row = measure((n, c, height, width), dtype, (gh, gw), (w1, b1, w2, b2), args.warmup, args.repeats)
            row["variant"] = f"{grid_text} {dtype_name}"
            print_row(row)
            rows.append(row)
            torch.cuda.empty_cache()

    result = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "shape": [n, c, height, width],
        "repeats": args.repeats,
        "warmup": args.warmup,
        "targets": {"speedup": TARGET_SPEEDUP, "fused_over_copy": TARGET_COPY_FRACTION},
        "rows": rows,
    }
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
