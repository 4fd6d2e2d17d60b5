"""ONNX Runtime's CPU INT8 graph against FP32 on this CPU: PSNR against the FP32 output and speed, side by side.

One FP32 export is calibrated on frames of the demo clip (noise, rain and haze in turn) into the 7-bit-weight graph
(the default of ``python -m calibration``) and the 8-bit one; every variant is then timed interleaved with the others
on the same held-out frame and scored on the held-out frames. Rows:

- FP32: the reference.
- INT8 7-bit weights: the default file, as plain ONNX Runtime runs it anywhere.
- INT8 8-bit, as the runtime runs it here: fitted to this CPU (halved at load without VNNI).
- INT8 8-bit, plain ORT here: what a user running the 8-bit file outside the runtime gets on this CPU.
- INT8 8-bit, exact arithmetic: ORT with graph optimisations off, so every Q/DQ pair runs in float: the numbers a
  CPU whose kernels do not saturate (VNNI, AMX, ARM) computes; its time is not an INT8 time and is not a ratio.

    python benchmarks/cpu_int8.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from quality import machine_info  # noqa: E402
from speed import calibration_frames  # noqa: E402

from calibration.ort_int8 import quantize_for_cpu  # noqa: E402
from dsrir.atomic import write_text_atomic  # noqa: E402
from dsrir.cli_help import DefaultsHelpFormatter  # noqa: E402
from dsrir.cpuinfo import cpu_name  # noqa: E402
from dsrir.graph.session import ort_session  # noqa: E402
from runtime.backends.cpu_int8 import fit_to_cpu, read_cpu_features  # noqa: E402
from runtime.video import DEFAULT_MODEL  # noqa: E402


def session(model: onnx.ModelProto, threads: int, optimized: bool = True) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    if not optimized:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort_session(model, options)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1).astype(np.float64) - np.clip(b, 0, 1)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/cpu_int8.py", description=__doc__, formatter_class=DefaultsHelpFormatter
    )
    parser.add_argument("--onnx", type=Path, default=DEFAULT_MODEL, help="FP32 ONNX (decomposed, float I/O)")
    parser.add_argument("--calib-count", type=int, default=8, help="demo-clip frames to calibrate on")
    parser.add_argument("--held-out", type=int, default=6, help="later demo-clip frames to score on")
    parser.add_argument(
        "--method", default="minmax", choices=("minmax", "percentile", "entropy"), help="INT8 range calibrator"
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per variant, interleaved (median)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--output", type=Path, default=Path("cpu_int8.json"), help="results JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    frames = calibration_frames(args.calib_count + args.held_out)
    calibration, held_out = frames[: args.calib_count], frames[args.calib_count :]
    cpu = read_cpu_features()
    with tempfile.TemporaryDirectory() as tmp:
        graphs = {
            bits: onnx.load(
                str(quantize_for_cpu(args.onnx, iter(calibration), Path(tmp, f"w{bits}.onnx"), args.method, bits))
            )
            for bits in (7, 8)
        }
    fitted, how = fit_to_cpu(graphs[8], cpu)
    fp32 = onnx.load(str(args.onnx))
    variants = {
        "FP32": (session(fp32, args.threads), True),
        "INT8 7-bit weights (default file, plain ORT)": (session(graphs[7], args.threads), True),
        f"INT8 8-bit, runtime here ({how.split(' (')[0]})": (session(fitted, args.threads), True),
        "INT8 8-bit, plain ORT here": (session(graphs[8], args.threads), True),
        "INT8 8-bit, exact arithmetic (VNNI/AMX/ARM)": (session(graphs[8], args.threads, optimized=False), False),
    }
    name = fp32.graph.input[0].name
    reference = [variants["FP32"][0].run(None, {name: frame})[0] for frame in held_out]
    quality = {
        label: statistics.mean(psnr(sess.run(None, {name: f})[0], ref) for f, ref in zip(held_out, reference))
        for label, (sess, _) in variants.items()
    }
    times: dict[str, list[float]] = {label: [] for label in variants}
    frame = held_out[0]
    for sess, _ in variants.values():  # warm-up: first-run allocation and kernel selection
        sess.run(None, {name: frame})
    for _ in range(args.repeats):
        for label, (sess, _) in variants.items():
            start = time.perf_counter()
            sess.run(None, {name: frame})
            times[label].append(time.perf_counter() - start)
    medians = {label: statistics.median(values) for label, values in times.items()}
    h, w = frame.shape[2:]
    print(
        f"\n{cpu_name()} ({cpu.describe()}), {args.threads} threads, {w}x{h}, calibration {args.method} "
        f"on {len(calibration)} frames, PSNR over {len(held_out)} held-out frames"
    )
    print("| variant | PSNR vs FP32 (dB) | ms per frame | speed vs FP32 |\n|---|---:|---:|---:|")
    rows = []
    for label, (_, timed) in variants.items():
        ratio = medians["FP32"] / medians[label]
        shown = f"{ratio:.2f}x" if timed else "(not INT8 kernels)"
        print(f"| {label} | {quality[label]:.2f} | {1000 * medians[label]:.0f} | {shown} |")
        rows.append(
            {
                "variant": label,
                "psnr_vs_fp32_db": quality[label],
                "ms": 1000 * medians[label],
                "speed_vs_fp32": ratio if timed else None,
            }
        )
    report = {
        "cpu": cpu_name(),
        "cpu_features": cpu.describe(),
        "size": [w, h],
        "method": args.method,
        "machine": machine_info(),
        "rows": rows,
    }
    write_text_atomic(args.output, json.dumps(report, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
