"""DSRIR against the classical methods a user would try instead, on the synthetic evaluation protocol.

    python benchmarks/quality.py --model weights/dsrir-xs-p50_all_in_one.onnx --photos photos/val --crop 512

Clean photos, centre-cropped to ``--crop`` (multiples of 8), get the deterministic degradations of
``python -m dsrir.evaluate --synthetic`` (noise at sigma 15/25/50, rain, haze; seeded per image and task) and are
scored with its PSNR/SSIM protocol. DSRIR runs through the video runtime's backends, so an ``.onnx`` model needs
no PyTorch.
Baselines (``dsrir.baselines``): non-local means and CBM3D (optional ``bm3d`` package) for noise, the dark channel
prior for haze; rain has none. Prints one table and writes per-image numbers, machine info and the date as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from dsrir.atomic import write_text_atomic  # noqa: E402
from dsrir.baselines import BM3D_MISSING, cbm3d_denoise, dark_channel_dehaze, has_bm3d, nlm_denoise  # noqa: E402
from dsrir.cli_help import DefaultsHelpFormatter
from dsrir.data.eval_sets import DEFAULT_EVAL_TASKS, EvalSample, synthetic_sets  # noqa: E402
from dsrir.errors import DSRIRError, error_line  # noqa: E402
from dsrir.metrics import PROTOCOLS, score  # noqa: E402
from runtime.backends import Backend, open_backend  # noqa: E402
from runtime.frames import FrameRunner  # noqa: E402
from runtime.video import DEFAULT_MODEL  # noqa: E402

Method = Callable[[np.ndarray], np.ndarray]
COLUMNS = {"dsrir": "DSRIR", "nlm": "NLM", "cbm3d": "CBM3D", "dcp": "DCP"}
PACKAGES = ("numpy", "scikit-image", "onnxruntime", "onnxruntime-gpu", "torch", "bm3d")
_NOISE_LABEL = re.compile(r"noise(\d+)")


def dsrir_method(model: Path, backend: Backend | None = None) -> tuple[Method, str]:
    """The model (or an already opened ``backend`` of it) as an RGB uint8 -> RGB uint8 function (the runtime works
    on BGR frames), and its description."""
    runner = FrameRunner(backend if backend is not None else open_backend(model))

    def restore(image: np.ndarray) -> np.ndarray:
        bgr = runner.run(np.ascontiguousarray(image[..., ::-1]))
        return np.ascontiguousarray(bgr[..., ::-1])

    return restore, runner.backend.description


def baselines_for(task: str, cbm3d: bool) -> dict[str, Method]:
    """The classical methods that address ``task``: NLM (and CBM3D) for noise, DCP for haze, none for rain."""
    match = _NOISE_LABEL.fullmatch(task)
    if match:
        sigma = int(match.group(1))
        methods: dict[str, Method] = {"nlm": partial(nlm_denoise, sigma=sigma)}
        if cbm3d:
            methods["cbm3d"] = partial(cbm3d_denoise, sigma=sigma)
        return methods
    return {"dcp": dark_channel_dehaze} if task == "haze" else {}


def score_image(sample: EvalSample, methods: dict[str, Method], protocol: str) -> dict[str, Any]:
    """One record: the input's PSNR/SSIM and each method's PSNR/SSIM and seconds on the sample."""
    degraded, target = sample.degraded, sample.target
    input_psnr, input_ssim = score(degraded, target, sample.task, protocol)
    record: dict[str, Any] = {
        "task": sample.task,
        "image": sample.name,
        "size": [degraded.shape[1], degraded.shape[0]],
        "input": {"psnr": input_psnr, "ssim": input_ssim},
    }
    for name, method in methods.items():
        start = time.perf_counter()
        restored = method(degraded)
        seconds = time.perf_counter() - start
        psnr, ssim = score(restored, target, sample.task, protocol)
        record[name] = {"psnr": psnr, "ssim": ssim, "seconds": seconds}
    return record


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per task and method (and the input): mean PSNR, SSIM and seconds per image, and the image count."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for task in dict.fromkeys(r["task"] for r in records):
        rows = [r for r in records if r["task"] == task]
        summary[task] = {}
        for name in ("input", *COLUMNS):
            values = [r[name] for r in rows if name in r]
            if values:
                means = {key: float(np.mean([v[key] for v in values])) for key in values[0]}
                summary[task][name] = {**means, "count": len(values)}
    return summary


def format_table(summary: dict[str, dict[str, dict[str, float]]]) -> str:
    """Task rows; cells are PSNR/SSIM, then seconds per image for the methods; '-' where a method does not apply."""
    columns = [name for name in COLUMNS if any(name in methods for methods in summary.values())]
    header = f"{'task':<9} {'images':>6} {'input':>14} " + " ".join(f"{COLUMNS[name]:>22}" for name in columns)
    lines = [header, "-" * len(header)]
    for task, methods in summary.items():
        given = methods["input"]
        cells = [f"{given['psnr']:6.2f}/{given['ssim']:.4f}"]
        for name in columns:
            m = methods.get(name)
            cells.append(f"{m['psnr']:6.2f}/{m['ssim']:.4f} {m['seconds']:6.2f}s" if m else "-")
        lines.append(
            f"{task:<9} {int(given['count']):>6} {cells[0]:>14} " + " ".join(f"{cell:>22}" for cell in cells[1:])
        )
    return "\n".join(lines)


def notes_for(tasks: Sequence[str], cbm3d: bool) -> list[str]:
    notes = []
    if "rain" in tasks:
        notes.append("rain: no classical baseline here (input and DSRIR only)")
    if not cbm3d and any(_NOISE_LABEL.fullmatch(task) for task in tasks):
        notes.append(f"CBM3D column skipped: {BM3D_MISSING}")
    return notes


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """Enough to tell whether two runs' timings are comparable (read from metadata: importing torch is avoided)."""
    versions = {name: _version(name) for name in PACKAGES}
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "opencv_threads": cv2.getNumThreads(),
        "packages": {"opencv": cv2.__version__, **{k: v for k, v in versions.items() if v}},
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/quality.py",
        description="PSNR/SSIM and time per image of DSRIR, NLM, CBM3D and the dark channel prior, side by side.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model", type=Path, help=f"DSRIR .onnx, .safetensors or .pth (default: weights/{DEFAULT_MODEL.name})"
    )
    parser.add_argument("--photos", type=Path, default=Path("photos/val"), help="folder of clean validation photos")
    parser.add_argument("--crop", type=int, default=512, help="centre crop side (rounded down to a multiple of 8)")
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_EVAL_TASKS), help="noise<sigma>, rain, haze")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic noise/rain/haze")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="paper", help="paper: rain on Y; rgb: all on RGB")
    parser.add_argument("--output", type=Path, default=Path("quality.json"), help="where to write the JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.crop < 8:
            raise DSRIRError(f"--crop {args.crop} is smaller than 8")
        model = args.model or DEFAULT_MODEL
        if args.model is None and not model.is_file():
            raise DSRIRError(f"no --model given and the shipped weights/{model.name} is missing; pass --model FILE")
        if not model.is_file():
            raise DSRIRError(f"--model {model}: not found")
        sets = synthetic_sets(args.photos, tasks=args.tasks, seed=args.seed, crop=args.crop)
        dsrir, description = dsrir_method(model)
        cbm3d = has_bm3d()
        dsrir(sets[0][0].degraded)  # warm-up: first-call set-up is not timed
        records = []
        with tqdm(total=sum(len(s) for s in sets), desc="images", disable=args.no_progress) as progress:
            for eval_set in sets:
                methods = {"dsrir": dsrir, **baselines_for(eval_set.task, cbm3d)}
                for sample in eval_set:
                    records.append(score_image(sample, methods, args.protocol))
                    progress.update()
    except DSRIRError as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return 2
    summary = summarise(records)
    notes = notes_for(args.tasks, cbm3d)
    print(f"{model}: {description}; protocol {args.protocol}, crop {args.crop}, seed {args.seed}")
    print(format_table(summary))
    for note in notes:
        print(f"note: {note}")
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": str(model),
        "backend": description,
        "photos": str(args.photos),
        "crop": args.crop,
        "seed": args.seed,
        "protocol": args.protocol,
        "tasks": list(args.tasks),
        "machine": machine_info(),
        "notes": notes,
        "summary": summary,
        "images": records,
    }
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
