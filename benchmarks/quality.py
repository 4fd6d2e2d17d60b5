"""DSRIR against the classical methods a user would try instead, on degradations its training did not draw from.

    python benchmarks/quality.py --model weights/dsrir-xs-p50_all_in_one.onnx --photos photos/val --crop 512

Clean photos, centre-cropped to ``--crop`` (multiples of 8), get deterministic degradations (seeded per image and
task, as ``python -m dsrir.evaluate --synthetic``) and are scored with its PSNR/SSIM protocol. The default tasks
are the paper's noise (sigma 15/25/50) and every rain and haze family of ``dsrir.data.degradations``, each image
drawing its parameters from the family's ranges (recorded per image in the JSON); ``rain`` and ``haze`` are the v3
generator's settings of the earlier tables, and ``held-out`` stands for every family the model never trained on.
``clean`` (in the defaults) scores the model on the photos undegraded: a restorer that runs on every frame of a
camera sees mostly clean ones, and must leave them alone.

Generalisation is measured, not assumed: the "training" column says whether the model's training drew from each
task ("seen", "partly seen", "held out"), from the set recorded in the checkpoint or safetensors (for an ``.onnx``,
its sibling ``.safetensors``; weights that record none were trained on the v3 generator) or ``--trained-on``;
for ``clean``, from the share of samples the weights record as left clean ("-" where they record a set but no
share, as weights made before the share was recorded).
Leave-one-out across the families: train once per family with ``python -m train --hold-out FAMILY`` and score
each model here; its held-out row is the number that counts (``benchmarks/leave_one_out.py`` gathers them).

DSRIR runs through the video runtime's backends, so an ``.onnx`` model needs no PyTorch. Baselines
(``dsrir.baselines``): non-local means and CBM3D (optional ``bm3d`` package; the column is skipped, with a note,
without it) for noise, the dark channel prior for haze; rain has none. Prints one table, writes per-image numbers,
machine info and the date as JSON, and beside it one picture per task (``OUTPUT_STEM-TASK.png``: input | ours |
best baseline | clean, the worst window of the first ``--picture-rows`` images).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import struct
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from benchmarks.quality_pictures import Panel, comparison_picture  # noqa: E402
from benchmarks.quality_report import DSRIR, INPUT, TRAINING, baseline_scores  # noqa: E402
from dsrir.atomic import write_text_atomic  # noqa: E402
from dsrir.baselines import BM3D_MISSING, cbm3d_denoise, dark_channel_dehaze, has_bm3d, nlm_denoise  # noqa: E402
from dsrir.cli_help import DefaultsHelpFormatter
from dsrir.cpuinfo import cpu_name  # noqa: E402
from dsrir.data.degradations import (  # noqa: E402
    CLEAN_LABEL,
    FAMILIES,
    NAMED_FAMILIES,
    NOISE_LABEL,
    DegradationSet,
    label_task,
    parse_degradations,
    recorded_degradations,
)
from dsrir.data.eval_sets import EvalSample, synthetic_sets  # noqa: E402
from dsrir.data.family import Coverage  # noqa: E402
from dsrir.errors import DSRIRError, error_line  # noqa: E402
from dsrir.imageio import write_image  # noqa: E402
from dsrir.metrics import PROTOCOLS, score  # noqa: E402
from runtime.backends import Backend, open_backend  # noqa: E402
from runtime.frames import FrameRunner  # noqa: E402
from runtime.video import DEFAULT_MODEL  # noqa: E402

Method = Callable[[np.ndarray], np.ndarray]
COLUMNS = {DSRIR: "DSRIR", "nlm": "NLM", "cbm3d": "CBM3D", "dcp": "DCP"}
PACKAGES = ("numpy", "scikit-image", "onnxruntime", "onnxruntime-gpu", "torch", "bm3d")
HELD_OUT_TASKS = "held-out"  # the --tasks word for every family training never drew from
RAIN_HAZE_FAMILIES = tuple(name for name, family in FAMILIES.items() if family.task != "noise")
DEFAULT_TASKS = ("noise15", "noise25", "noise50", *RAIN_HAZE_FAMILIES, CLEAN_LABEL)


def dsrir_method(
    model: Path, backend: Backend | None = None, weights: Literal["ema", "raw"] = "ema"
) -> tuple[Method, str]:
    """The model (or an already opened ``backend`` of it) as an RGB uint8 -> RGB uint8 function (the runtime works
    on BGR frames), and its description. ``weights`` raw: a ``.pth`` checkpoint's raw weights, not its EMA."""
    if backend is None and weights == "raw":
        if model.suffix != ".pth":
            raise DSRIRError(f"--weights raw: {model} is no .pth checkpoint; only a checkpoint keeps its raw weights")
        from runtime.backends.torch_backend import TorchBackend

        backend = TorchBackend(model, which="raw")
    runner = FrameRunner(backend if backend is not None else open_backend(model))

    def restore(image: np.ndarray) -> np.ndarray:
        bgr = runner.run(np.ascontiguousarray(image[..., ::-1]))
        return np.ascontiguousarray(bgr[..., ::-1])

    return restore, runner.backend.description


def baselines_for(task: str, cbm3d: bool) -> dict[str, Method]:
    """The classical methods that address ``task``: NLM (and CBM3D) for noise at a known sigma (``noise25``), DCP
    for every haze label, none for rain."""
    match = NOISE_LABEL.fullmatch(task)
    if match:
        sigma = int(match.group(1))
        methods: dict[str, Method] = {"nlm": partial(nlm_denoise, sigma=sigma)}
        if cbm3d:
            methods["cbm3d"] = partial(cbm3d_denoise, sigma=sigma)
        return methods
    return {"dcp": dark_channel_dehaze} if label_task(task) == "haze" else {}


def score_image(
    sample: EvalSample, methods: dict[str, Method], protocol: str
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """One record (the input's PSNR/SSIM, each method's PSNR/SSIM and seconds, the family's parameters) and each
    method's output. A clean frame's input is its target: it gets no input score (its PSNR would be infinite)."""
    degraded, target = sample.degraded, sample.target
    record: dict[str, Any] = {
        "task": sample.task,
        "image": sample.name,
        "size": [degraded.shape[1], degraded.shape[0]],
        **({"params": sample.params} if sample.params else {}),
    }
    if sample.task != CLEAN_LABEL:
        input_psnr, input_ssim = score(degraded, target, sample.task, protocol)
        record[INPUT] = {"psnr": input_psnr, "ssim": input_ssim}
    outputs = {}
    for name, method in methods.items():
        start = time.perf_counter()
        outputs[name] = method(degraded)
        seconds = time.perf_counter() - start
        psnr, ssim = score(outputs[name], target, sample.task, protocol)
        record[name] = {"psnr": psnr, "ssim": ssim, "seconds": seconds}
    return record, outputs


def score_set(
    eval_set: Sequence[EvalSample],
    methods: dict[str, Method],
    protocol: str,
    keep: int,
    done: Callable[[], object],
) -> tuple[list[dict[str, Any]], list[tuple[EvalSample, dict[str, np.ndarray], dict[str, Any]]]]:
    """Every sample's record, and the first ``keep`` samples with their outputs and records (for the picture)."""
    records, kept = [], []
    for index, sample in enumerate(eval_set):
        record, outputs = score_image(sample, methods, protocol)
        records.append(record)
        if index < keep:
            kept.append((sample, outputs, record))
        done()
    return records, kept


@dataclass(frozen=True)
class Training:
    """What the model's training drew from: the degradation set, where that was learnt, and the share of samples
    left clean (None: not recorded)."""

    degradations: DegradationSet
    source: str
    clean_fraction: float | None = None

    def coverage(self, task: str) -> Coverage | str:
        """The "training" column: how much of ``task`` training drew from; ``clean`` is seen when some samples
        were left clean, held out when none were, "-" when the weights do not say."""
        if task != CLEAN_LABEL or self.clean_fraction is None:
            return self.degradations.coverage(task)
        return Coverage.SEEN if self.clean_fraction > 0 else Coverage.HELD_OUT

    def describe(self) -> str:
        clean = "" if self.clean_fraction is None else f"; {self.clean_fraction:g} of the samples left clean"
        return f"{self.degradations.spec}{clean} ({self.source})"


def recorded_training(model: Path) -> dict[str, str]:
    """What the weights record of their training data (``degradations``, ``clean_fraction``) and which weights they
    are (``weights``: ema, raw or blend), as text: ``.pth`` the checkpoint, ``.safetensors`` its metadata, ``.onnx``
    its sibling ``.safetensors``; empty when none."""
    keys = ("degradations", "clean_fraction", "weights")
    if model.suffix == ".pth":
        from dsrir.checkpoint import read_weights

        metadata = read_weights(model).metadata
        return {key: str(metadata[key]) for key in keys if metadata.get(key) is not None}
    weights = model.with_suffix(".safetensors")
    if not weights.is_file():
        return {}
    with open(weights, "rb") as handle:  # the header alone, without torch: 8-byte length, then JSON
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    return {key: value for key, value in header.get("__metadata__", {}).items() if key in keys}


def trained_on(recorded: Mapping[str, str], given: Sequence[str] | None) -> Training:
    """What training drew from: ``--trained-on``, the model's record (:func:`recorded_training`), or v3 (weights
    that record nothing were trained before the families, on the v3 generator, which leaves no sample clean)."""
    if given:
        return Training(parse_degradations(given, tasks=None), "--trained-on")
    degradations = recorded_degradations(recorded.get("degradations"))
    if "degradations" in recorded:
        clean = recorded.get("clean_fraction")
        return Training(degradations, "the model's record", None if clean is None else float(clean))
    return Training(degradations, "no record in the weights: trained before the families", 0.0)


def expand_tasks(tasks: Sequence[str], trained: DegradationSet) -> list[str]:
    """``held-out`` -> every rain/haze family the training never drew from; the other labels as given."""
    expanded: list[str] = []
    for task in tasks:
        if task != HELD_OUT_TASKS:
            expanded.append(task)
            continue
        unseen = [label for label in RAIN_HAZE_FAMILIES if trained.coverage(label) == Coverage.HELD_OUT]
        if not unseen:
            raise DSRIRError(f"--tasks {HELD_OUT_TASKS}: training drew from every family ({trained.spec})")
        expanded += unseen
    return list(dict.fromkeys(expanded))


def best_baseline(methods: dict[str, dict[str, float]]) -> str | None:
    """The classical method with the highest mean PSNR on a task, if any applies."""
    scores = baseline_scores(methods)
    return max(scores, key=scores.__getitem__, default=None)


def picture_path(output: Path, task: str) -> Path:
    """``quality.json`` + ``rain-slanted:tilt=35..45`` -> ``quality-rain-slanted_tilt_35..45.png`` beside it."""
    return output.with_name(f"{output.stem}-{re.sub(r'[^A-Za-z0-9.-]', '_', task)}.png")


def task_picture(
    kept: Sequence[tuple[EvalSample, dict[str, np.ndarray], dict[str, Any]]], baseline: str | None, crop: int
) -> np.ndarray:
    """Input | DSRIR | best baseline | clean for the kept samples (with their records, for the captions)."""
    rows = []
    for sample, outputs, record in kept:
        ours = f"{record[DSRIR]['psnr']:.2f} dB"
        other = f"{record[baseline]['psnr']:.2f} dB" if baseline else "no baseline"
        rows.append(
            [
                Panel(sample.degraded, f"{record[INPUT]['psnr']:.2f} dB" if INPUT in record else "clean input"),
                Panel(outputs[DSRIR], ours),
                Panel(outputs.get(baseline or ""), other),
                Panel(sample.target, sample.name),
            ]
        )
    columns = ["input", "DSRIR", COLUMNS[baseline] if baseline else "best baseline", "clean"]
    return comparison_picture(columns, rows, crop)


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per task and method (and the input): mean PSNR, SSIM and seconds per image, and the image count."""
    summary: dict[str, dict[str, Any]] = {}
    for task in dict.fromkeys(r["task"] for r in records):
        rows = [r for r in records if r["task"] == task]
        summary[task] = {}
        for name in (INPUT, *COLUMNS):
            values = [r[name] for r in rows if name in r]
            if values:
                means = {key: float(np.mean([v[key] for v in values])) for key in values[0]}
                summary[task][name] = {**means, "count": len(values)}
    return summary


def format_table(summary: dict[str, dict[str, Any]]) -> str:
    """Task rows: whether training drew from the task, then PSNR/SSIM (and seconds per image for the methods);
    '-' where a method does not apply."""
    columns = [name for name in COLUMNS if any(name in methods for methods in summary.values())]
    width = max(9, *(len(task) for task in summary))
    header = f"{'task':<{width}} {'training':>11} {'images':>6} {'input':>14} "
    header += " ".join(f"{COLUMNS[name]:>22}" for name in columns)
    lines = [header, "-" * len(header)]
    for task, methods in summary.items():
        given = methods.get(INPUT)
        cells = [f"{given['psnr']:6.2f}/{given['ssim']:.4f}" if given else "-"]
        for name in columns:
            m = methods.get(name)
            cells.append(f"{m['psnr']:6.2f}/{m['ssim']:.4f} {m['seconds']:6.2f}s" if m else "-")
        lines.append(
            f"{task:<{width}} {methods.get(TRAINING, '-'):>11} {int(methods[DSRIR]['count']):>6} {cells[0]:>14} "
            + " ".join(f"{cell:>22}" for cell in cells[1:])
        )
    return "\n".join(lines)


def notes_for(tasks: Sequence[str], cbm3d: bool) -> list[str]:
    notes = []
    if any(label_task(task) == "rain" for task in tasks):
        notes.append("rain: no classical baseline here (input and DSRIR only)")
    if not cbm3d and any(NOISE_LABEL.fullmatch(task) for task in tasks):
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
        "cpu": cpu_name(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "opencv_threads": cv2.getNumThreads(),
        "packages": {"opencv": cv2.__version__, **{k: v for k, v in versions.items() if v}},
    }


def add_eval_set_arguments(parser: argparse.ArgumentParser, crop: int) -> None:
    """The flags that build the synthetic evaluation set (photos, crop, tasks, seed, protocol): one spelling for
    every benchmark that scores on it."""
    parser.add_argument("--photos", type=Path, default=Path("photos/val"), help="folder of clean validation photos")
    parser.add_argument("--crop", type=int, default=crop, help="centre crop side (rounded down to a multiple of 8)")
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=list(DEFAULT_TASKS),
        help="noise<sigma>, family labels (narrowed as NAME:PARAM=LOW..HIGH; families: "
        f"{', '.join(NAMED_FAMILIES)}), "
        f"rain and haze (the v3 generator), {HELD_OUT_TASKS} (every family the model's training never drew from), or "
        f"{CLEAN_LABEL} (the photos undegraded: what the model does to a clean frame)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic noise/rain/haze")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="paper", help="paper: rain on Y; rgb: all on RGB")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/quality.py",
        description="PSNR/SSIM and time per image of DSRIR, NLM, CBM3D and the dark channel prior, side by side.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model", type=Path, help=f"DSRIR .onnx, .safetensors or .pth (default: weights/{DEFAULT_MODEL.name})"
    )
    add_eval_set_arguments(parser, crop=512)
    parser.add_argument(
        "--trained-on",
        nargs="+",
        metavar="SET",
        help="what the model's training drew from, as python -m train --degradations takes it (default: the set "
        "the weights record; v3 when they record none)",
    )
    parser.add_argument(
        "--picture-rows", type=int, default=3, help="images per task picture (the first ones of the task)"
    )
    parser.add_argument("--picture-crop", type=int, default=192, help="side of each picture's windows (pixels)")
    parser.add_argument(
        "--weights",
        choices=("ema", "raw"),
        default="ema",
        help="a .pth checkpoint's EMA weights (what its weight files hold) or its raw ones (what the last step left)",
    )
    parser.add_argument(
        "--output", type=Path, default=Path("quality.json"), help="where to write the JSON (pictures go beside it)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.crop < 8:
            raise DSRIRError(f"--crop {args.crop} is smaller than 8")
        if args.picture_rows < 1 or args.picture_crop < 8:
            raise DSRIRError("--picture-rows must be at least 1 and --picture-crop at least 8")
        model = args.model or DEFAULT_MODEL
        if args.model is None and not model.is_file():
            raise DSRIRError(f"no --model given and the shipped weights/{model.name} is missing; pass --model FILE")
        if not model.is_file():
            raise DSRIRError(f"--model {model}: not found")
        recorded = recorded_training(model)
        trained = trained_on(recorded, args.trained_on)
        # What was scored: a checkpoint's raw weights on request, else what the file says it holds (a blend, an EMA,
        # the raw weights of a run that kept no average).
        scored = "raw" if args.weights == "raw" else recorded.get("weights", "not recorded")
        tasks = expand_tasks(args.tasks, trained.degradations)
        sets = synthetic_sets(args.photos, tasks=tasks, seed=args.seed, crop=args.crop)
        dsrir, description = dsrir_method(model, weights=args.weights)
        cbm3d = has_bm3d()
        dsrir(sets[0][0].degraded)  # warm-up: first-call set-up is not timed
        records, pictures = [], {}
        with tqdm(total=sum(len(s) for s in sets), desc="images", disable=args.no_progress) as progress:
            for eval_set in sets:
                methods = {DSRIR: dsrir, **baselines_for(eval_set.task, cbm3d)}
                task_records, kept = score_set(eval_set, methods, args.protocol, args.picture_rows, progress.update)
                records += task_records
                baseline = best_baseline(summarise(task_records)[eval_set.task])
                path = picture_path(args.output, eval_set.task)
                write_image(path, task_picture(kept, baseline, args.picture_crop))
                pictures[eval_set.task] = path.name
    except DSRIRError as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return 2
    summary = summarise(records)
    for task, row in summary.items():
        row[TRAINING] = trained.coverage(task)
    notes = notes_for(tasks, cbm3d)
    print(f"{model}: {description}; protocol {args.protocol}, crop {args.crop}, seed {args.seed}")
    print(f"measured on: {cpu_name()}, {os.cpu_count()} cores (the seconds column is this machine's)")
    print(f"trained on: {trained.describe()}")
    print(format_table(summary))
    for note in notes:
        print(f"note: {note}")
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": str(model),
        "backend": description,
        "weights": scored,
        "photos": str(args.photos),
        "crop": args.crop,
        "seed": args.seed,
        "protocol": args.protocol,
        "tasks": tasks,
        "trained_on": {
            "degradations": trained.degradations.spec,
            "clean_fraction": trained.clean_fraction,
            "source": trained.source,
        },
        "machine": machine_info(),
        "notes": notes,
        "summary": summary,
        "pictures": pictures,
        "images": records,
    }
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.output}; pictures beside it: {', '.join(pictures.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
