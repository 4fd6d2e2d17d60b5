"""Frame latency of every backend this machine has, at 720p and 1080p, measured side by side in one run.

Each variant is built from one checkpoint (FP32/FP16 ONNX exports, the ONNX Runtime CPU INT8 graph calibrated on
frames of the demo clip with the noise/rain/haze mix, a TensorRT engine when ``--engine`` is given and TensorRT
runs here) and timed through the runtime's own backends, so the numbers are what ``python -m runtime.video``
gets per frame (inference only: no capture, pre- or post-processing).

    python benchmarks/speed.py --checkpoint weights/dsrir-xs-p50_all_in_one.safetensors
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dsrir.atomic import write_text_atomic  # noqa: E402
from dsrir.cli import hidden_alias  # noqa: E402
from dsrir.cli_help import DefaultsHelpFormatter  # noqa: E402
from dsrir.cpuinfo import cpu_name  # noqa: E402
from runtime.backends import Backend, open_backend  # noqa: E402
from runtime.video import DEFAULT_MODEL  # noqa: E402

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920)}
CALIBRATION_FRAMES = 16


def time_backend(backend: Backend, hw: tuple[int, int], repeats: int) -> float:
    """Median seconds per frame after one warm-up frame (first-run allocation and kernel selection)."""
    batch = np.random.default_rng(0).random((1, 3, *hw), dtype=np.float32)
    backend.infer(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        backend.infer(batch)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def calibration_frames(count: int) -> list[np.ndarray]:
    """Frames of the demo clip with noise, rain and haze in turn, as the CPU INT8 graph will see in use."""
    import cv2

    from dsrir.data.degrade import add_gaussian_noise, add_haze, add_rain
    from runtime.uri import demo_clip_path

    capture = cv2.VideoCapture(str(demo_clip_path()))
    rng = np.random.default_rng(0)
    frames: list[np.ndarray] = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        kind = len(frames) % 3
        frame = (
            add_gaussian_noise(frame, 25, rng)
            if kind == 0
            else add_rain(frame, rng)
            if kind == 1
            else add_haze(frame, rng)
        )
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        frames.append(np.ascontiguousarray(rgb.transpose(2, 0, 1)[None]))
    capture.release()
    return frames


def build_variants(weights: Path, workdir: Path, engine: Path | None) -> list[tuple[str, Path]]:
    """(label, model file) for every variant this machine can run."""
    from export.onnx.build import ExportOptions, export_checkpoint

    variants = [("PyTorch eager FP32", weights)]
    fp32, _ = export_checkpoint(weights, workdir / "fp32.onnx", ExportOptions())
    fp16, _ = export_checkpoint(weights, workdir / "fp16.onnx", ExportOptions(precision="fp16"))
    variants += [("ONNX Runtime FP32", fp32), ("ONNX Runtime FP16", fp16)]
    from calibration.ort_int8 import quantize_for_cpu

    int8 = quantize_for_cpu(fp32, calibration_frames(CALIBRATION_FRAMES), workdir / "int8_cpu.onnx")
    variants.append(("ONNX Runtime INT8 (CPU graph)", int8))
    if engine is not None:
        variants.append(("TensorRT engine", engine))
    return variants


def machine() -> dict[str, object]:
    import onnxruntime
    import torch

    return {
        "date": dt.date.today().isoformat(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "onnxruntime": onnxruntime.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument(
        "--checkpoint", type=Path, default=DEFAULT_MODEL.with_suffix(".safetensors"), help="checkpoint to time"
    )
    hidden_alias(parser, "--weights", "checkpoint", type=Path)
    parser.add_argument("--engine", type=Path, default=None, help="a TensorRT engine of the same weights")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES), help="frame sizes to time")
    parser.add_argument("--repeats", type=int, default=3, help="timed frames per variant and size (median)")
    parser.add_argument("--output", type=Path, default=Path("speed.json"), help="where to write the JSON")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, path in build_variants(args.checkpoint, Path(tmp), args.engine):
            backend = open_backend(path)
            row: dict[str, object] = {"variant": label, "backend": backend.name, "precision": backend.precision}
            for size in args.sizes:
                seconds = time_backend(backend, SIZES[size], args.repeats)
                row[f"{size}_ms"] = round(1000 * seconds, 1)
                print(f"{label:32s} {size:6s} {1000 * seconds:9.1f} ms", flush=True)
            backend.close()
            rows.append(row)
    baseline = rows[0]
    print(f"\n| variant | {' | '.join(f'{s} ms | {s} fps | vs PyTorch' for s in args.sizes)} |")
    print("|---|" + "---:|---:|---:|" * len(args.sizes))
    for row in rows:
        cells = []
        for size in args.sizes:
            ms = float(row[f"{size}_ms"])  # type: ignore[arg-type]
            cells += [f"{ms:.0f}", f"{1000 / ms:.2f}", f"{float(baseline[f'{size}_ms']) / ms:.2f}x"]  # type: ignore[arg-type]
        print(f"| {row['variant']} | {' | '.join(cells)} |")
    payload = {"machine": machine(), "weights": str(args.checkpoint), "rows": rows}
    write_text_atomic(args.output, json.dumps(payload, indent=2))
    print(f"\nwritten {args.output}")


if __name__ == "__main__":
    main()
