"""Several streams through one engine: total throughput and latency for 1, 2 and 4 streams, batched (one inference
for a frame of every stream) vs one frame at a time (``--max-batch 1``), measured side by side in one run.

Every configuration runs through the runtime's own multi-stream pipeline (``runtime.multistream``, what
``python -m runtime.video --input A --input B ...`` runs) with in-memory file-like sources (back-pressure, no frame
dropped, so the engine is never idle: throughput is the engine's) and no output. The two modes of one stream
count run back to back, in alternating order, ``--repeats`` times (the table shows the median run), so a machine
whose load changes during the run affects both alike; with one stream both modes are the same run, so their
ratio shows the noise. Reported per configuration: total frames/s over every stream, the p95 of one inference
call and the p95 end-to-end latency (capture to output, queueing included; the queues hold ``--queue-size``
frames per stream).

The GPU rows are a MODEL, not a measurement: an inference of b frames is taken to cost a fixed part (``--kernels``
launches x ``--launch-us``) plus b x FLOPs / (FP16 peak x ``--utilisation``), with the peaks of
``benchmarks/jetson_model.py``, at 720p and at the measured frame size.

    python benchmarks/streams.py [--size 128x96] [--frames 10] [--streams 1 2 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dsrir.atomic import write_text_atomic  # noqa: E402
from dsrir.cli_help import DefaultsHelpFormatter  # noqa: E402
from dsrir.cpuinfo import cpu_name  # noqa: E402
from runtime.backends import open_backend  # noqa: E402
from runtime.frame_io import FrameSource  # noqa: E402
from runtime.frames import FrameRunner  # noqa: E402
from runtime.multistream import MultiPipeline, StreamSetup, backend_max_batch  # noqa: E402
from runtime.sinks import NullSink  # noqa: E402
from runtime.stats import MultiStats  # noqa: E402
from runtime.uri import demo_clip_path  # noqa: E402
from runtime.video import DEFAULT_MODEL  # noqa: E402

MODES = ("batched", "one at a time")
GPU_SIZE = (720, 1280)  # (height, width) of the modelled GPU rows, besides the measured size


class MemorySource(FrameSource):
    """A file-like source (back-pressure, no drops) over frames held in memory."""

    live = False
    fps = 30.0
    description = "frames in memory"

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames, self.index = frames, 0
        self.frame_count = len(frames)

    def read(self) -> np.ndarray | None:
        if self.index >= len(self.frames):
            return None
        self.index += 1
        return self.frames[self.index - 1]

    def close(self) -> None:
        pass


def demo_frames(count: int, size: tuple[int, int], offset: int) -> list[np.ndarray]:
    """``count`` frames of the demo clip from frame ``offset``, resized to ``size`` (width, height)."""
    capture = cv2.VideoCapture(str(demo_clip_path()))
    capture.set(cv2.CAP_PROP_POS_FRAMES, offset)
    frames: list[np.ndarray] = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    capture.release()
    return frames


def measure(
    backend: Any, streams: int, max_batch: int, frames: int, warmup: int, size: tuple[int, int], queue_size: int
) -> dict[str, Any]:
    clips = [demo_frames(frames + warmup, size, offset=17 * i) for i in range(streams)]
    stats = MultiStats([f"stream{i}" for i in range(streams)], warmup=warmup)
    setups = [StreamSetup(MemorySource(clip), open_sink=lambda _size: NullSink()) for clip in clips]
    pipeline = MultiPipeline(
        setups, FrameRunner(backend), stats, max_batch=max_batch, queue_size=queue_size, max_wait_s=0.01
    )
    pipeline.run(handle_signals=False)
    summary = stats.summary()
    latency = summary["latency_ms"]
    return {
        "streams": streams,
        "max_batch": max_batch,
        "frames_per_stream": frames,
        "total_fps": summary["fps"],
        "per_stream_fps": [s["fps"] for s in summary["streams"]],
        "infer_p95_ms": latency["infer"]["p95"],
        "end_to_end_p50_ms": latency["end_to_end"]["p50"],
        "end_to_end_p95_ms": latency["end_to_end"]["p95"],
        "mean_batch": summary["batch"]["mean"],
        "frames_out": summary["frames_out"],
    }


def jetson_devices() -> dict[str, tuple[float, float, str]]:
    """The peaks of benchmarks/jetson_model.py (loaded from its file: benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("jetson_model", REPO / "benchmarks" / "jetson_model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.DEVICES)


def modelled_rows(
    weights: Path, streams: list[int], sizes: list[tuple[int, int]], utilisation: float, kernels: int, launch_us: float
) -> list[dict[str, Any]]:
    """MODEL: t(b) = kernels x launch + b x FLOPs(size) / (FP16 peak x utilisation), per Jetson and frame size."""
    from dsrir.checkpoint import load_model
    from dsrir.model.cost import count_flops

    model, _ = load_model(weights)
    fixed_ms = kernels * launch_us / 1000.0
    rows = []
    for height, width in sizes:
        flops = count_flops(model, height, width)
        for device, (fp16, _int8, _how) in jetson_devices().items():
            per_frame_ms = flops / (fp16 * 1e12 * utilisation) * 1e3
            for count in streams:
                batched = fixed_ms + count * per_frame_ms
                single = fixed_ms + per_frame_ms
                rows.append(
                    {
                        "device": device,
                        "size": f"{width}x{height}",
                        "streams": count,
                        "gflops_per_frame": round(flops / 1e9, 2),
                        "batched_fps": round(1000 * count / batched, 1),
                        "one_at_a_time_fps": round(1000 / single, 1),
                        "ratio": round(count * single / batched, 2),
                        "batched_round_ms": round(batched, 2),
                        "one_at_a_time_round_ms": round(count * single, 2),
                    }
                )
    return rows


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median total throughput (its own latencies with it), and every run's throughput."""
    ordered = sorted(runs, key=lambda run: run["total_fps"])
    return {**ordered[(len(ordered) - 1) // 2], "runs_total_fps": [run["total_fps"] for run in runs]}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model to run (the shipped ONNX weights)")
    parser.add_argument("--size", default="128x96", help="frame size WxH of every stream")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4], help="stream counts to measure")
    parser.add_argument("--frames", type=int, default=10, help="timed frames per stream and configuration")
    parser.add_argument("--warmup", type=int, default=2, help="untimed frames per stream first")
    parser.add_argument("--repeats", type=int, default=2, help="runs of every configuration (the median is shown)")
    parser.add_argument("--queue-size", type=int, default=2, help="frames each stream's queues hold")
    parser.add_argument("--utilisation", type=float, default=0.25, help="GPU model: fraction of FP16 peak reached")
    parser.add_argument("--kernels", type=int, default=141, help="GPU model: kernels per inference (the graph's Convs)")
    parser.add_argument("--launch-us", type=float, default=10.0, help="GPU model: fixed cost per kernel, microseconds")
    parser.add_argument("--output", type=Path, default=Path("streams.json"), help="where to write the JSON")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    backend = open_backend(args.model)
    limit = backend_max_batch(backend)
    cpu = cpu_name()
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"{backend.description} on {cpu} ({os.cpu_count()} cores), {width}x{height} frames", flush=True)
    runs: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for repeat in range(args.repeats):
        for index, count in enumerate(args.streams):
            order = MODES if (index + repeat) % 2 == 0 else MODES[::-1]  # alternate which mode runs first
            batched = count if limit is None else min(count, limit)
            for mode in order:
                max_batch = batched if mode == "batched" else 1
                size = (width, height)
                row = {
                    "mode": mode,
                    **measure(backend, count, max_batch, args.frames, args.warmup, size, args.queue_size),
                }
                runs.setdefault((count, mode), []).append(row)
                print(
                    f"  run {repeat + 1}: {count} stream(s) {mode:<14} {row['total_fps']:7.2f} frames/s, "
                    f"infer p95 {row['infer_p95_ms']:8.1f} ms, end-to-end p95 {row['end_to_end_p95_ms']:8.1f} ms, "
                    f"mean batch {row['mean_batch']:.2f}",
                    flush=True,
                )
    backend.close()
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    rows: list[dict[str, Any]] = []
    for count in args.streams:
        pair = {mode: median_row(runs[(count, mode)]) for mode in MODES}
        pair["batched"]["ratio"] = round(
            pair["batched"]["total_fps"] / max(pair["one at a time"]["total_fps"], 1e-9), 2
        )
        rows.extend(pair[mode] for mode in MODES)
    loads = f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after" if load_before and load_after else ""
    print(
        f"\nMeasured on {cpu}, {os.cpu_count()} cores ({loads}), {backend.description}, {width}x{height} frames, "
        f"{args.frames} timed frames per stream, median of {args.repeats} runs"
    )
    print(
        "| streams | mode | total frames/s | batched / one at a time | mean batch | infer p95 ms | end-to-end p95 ms |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    for row in rows:
        ratio = f"{row['ratio']:.2f}x" if "ratio" in row else ""
        print(
            f"| {row['streams']} | {row['mode']} | {row['total_fps']:.2f} | {ratio} | {row['mean_batch']:.2f} | "
            f"{row['infer_p95_ms']:.0f} | {row['end_to_end_p95_ms']:.0f} |"
        )
    weights = args.model.with_suffix(".safetensors")
    modelled = []
    gpu_sizes = [GPU_SIZE, (height, width)]
    if weights.is_file():
        modelled = modelled_rows(weights, args.streams, gpu_sizes, args.utilisation, args.kernels, args.launch_us)
        print(
            f"\nMODELLED, not measured: Jetson FP16, t(b) = {args.kernels} kernels x {args.launch_us:g} us + b x FLOPs "
            f"/ (peak x {args.utilisation:.0%}), utilisation taken as independent of batch; today's TensorRT backend "
            "runs batch 1 (its buffers hold one frame), so the batched rows need that lifted"
        )
        print(
            "| device | frame | streams | GFLOPs/frame | batched frames/s | one at a time frames/s | ratio "
            "| batched round ms | one at a time round ms |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in modelled:
            print(
                f"| {r['device']} | {r['size']} | {r['streams']} | {r['gflops_per_frame']} | {r['batched_fps']} | "
                f"{r['one_at_a_time_fps']} | {r['ratio']:.2f}x | {r['batched_round_ms']} | "
                f"{r['one_at_a_time_round_ms']} |"
            )
    payload = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "load_average_before_after": [load_before, load_after],
        "platform": platform.platform(),
        "backend": backend.description,
        "model": str(args.model),
        "size": [width, height],
        "frames_per_stream": args.frames,
        "repeats": args.repeats,
        "measured": rows,
        "runs": [run for count in args.streams for mode in MODES for run in runs[(count, mode)]],
        "modelled": {
            "note": "a model, not a measurement",
            "utilisation": args.utilisation,
            "kernels": args.kernels,
            "launch_us": args.launch_us,
            "rows": modelled,
        },
    }
    write_text_atomic(args.output, json.dumps(payload, indent=2) + "\n")
    print(f"\nwritten {args.output}")


if __name__ == "__main__":
    main()
