"""Calibrating on crops against calibrating on whole frames: time, and PSNR of the resulting INT8 graphs.

The same synthetic calibration frames (clean photos made and degraded at ``--size``, as ``python -m calibration``
does) are calibrated once per ``--crops`` setting, a crop window such as ``256x256`` or ``none`` for whole frames.
Each set of ranges becomes the TensorRT-style Q/DQ graph (:func:`calibration.qdq.insert_qdq`), run in ONNX Runtime
on the CPU (TensorRT's INT8 arithmetic, not its speed), and is scored with ``benchmarks/quality.py``'s protocol
(clean photos centre-cropped to ``--eval-crop``, noise 15/25/50, rain, haze, PSNR per task) beside the FP32 export.
With ``--cpu-int8`` the ONNX Runtime CPU INT8 graph is made from each set, timed and scored as well (the other half
of a default ``python -m calibration`` run).

    python benchmarks/calibration_crops.py --calib-photos photos/train --photos photos/val --count 48 \\
        --crops 256x256 none --ranges-dir calib_crops

Times are wall and process CPU seconds (all threads) of range collection alone; ``--ranges-dir`` keeps each
variant's ranges and reuses them on a later run with the same model, frames and calibrator (as the CLI does), so a
slow whole-frame calibration is paid once. Prints one table and writes JSON with the machine and the date.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from quality import dsrir_method, machine_info  # noqa: E402

from calibration.cli import reusable  # noqa: E402
from calibration.collect import calibration_settings, collect_ranges  # noqa: E402
from calibration.dataset import (  # noqa: E402
    DEFAULT_COUNT,
    DEFAULT_CROP,
    CalibrationSet,
    build_calibration_set,
    parse_crop,
    parse_size,
)
from calibration.qdq import insert_qdq  # noqa: E402
from calibration.ranges import Ranges  # noqa: E402
from dsrir.atomic import write_text_atomic  # noqa: E402
from dsrir.cli_help import DefaultsHelpFormatter  # noqa: E402
from dsrir.cpuinfo import cpu_name  # noqa: E402
from dsrir.data.eval_sets import DEFAULT_EVAL_TASKS, EvalSet, synthetic_sets  # noqa: E402
from dsrir.digest import file_sha256  # noqa: E402
from dsrir.graph.save import save_onnx  # noqa: E402
from dsrir.metrics import PROTOCOLS, score  # noqa: E402
from runtime.video import DEFAULT_MODEL  # noqa: E402


def label(crop: tuple[int, int] | None) -> str:
    return "none" if crop is None else f"{crop[0]}x{crop[1]}"


def timed(work: Any, *args: Any, **kw: Any) -> tuple[Any, float, float]:
    """``work(*args, **kw)``, its wall seconds and this process's CPU seconds (every thread)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work(*args, **kw)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def ranges_for(
    onnx_path: Path, dataset: CalibrationSet, calibrator: str, keep: Path | None
) -> tuple[Ranges, float | None, float | None]:
    """Ranges on ``dataset`` and the (wall, CPU) seconds they took; kept ones are reused (seconds None)."""
    path = keep / f"ranges_{label(dataset.crop)}.json" if keep is not None else None
    if path is not None:
        earlier = reusable(path, file_sha256(onnx_path), dataset, calibration_settings(calibrator))
        if earlier is not None:
            print(f"reusing {path}")
            return earlier, None, None
    ranges, wall, cpu = timed(collect_ranges, onnx_path, dataset, calibrator)
    ranges.settings["cpu_seconds"] = round(cpu, 1)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        ranges.save(path)
    return ranges, wall, cpu


def evaluate(model: Path, sets: Sequence[EvalSet], protocol: str) -> dict[str, float]:
    """Mean PSNR per task of ``model`` (any file the video runtime opens)."""
    restore, _ = dsrir_method(model)
    return {
        eval_set.task: float(
            np.mean([score(restore(sample.degraded), sample.target, sample.task, protocol)[0] for sample in eval_set])
        )
        for eval_set in sets
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/calibration_crops.py",
        description="Calibration time and INT8 PSNR per task with crop windows against whole frames.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--onnx", type=Path, default=DEFAULT_MODEL, help="decomposed FP32 float-I/O export")
    parser.add_argument("--calib-photos", type=Path, default=Path("photos/train"), help="clean calibration photos")
    parser.add_argument("--photos", type=Path, default=Path("photos/val"), help="clean evaluation photos")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help="calibration frames, the same for every crop")
    parser.add_argument("--size", type=parse_size, default="640x360", metavar="WxH", help="deployment frame size")
    parser.add_argument(
        "--crops",
        type=parse_crop,
        nargs="+",
        default=[DEFAULT_CROP, None],
        metavar="WxH|none",
        help="crop windows to compare (default: python -m calibration's default and none)",
    )
    parser.add_argument(
        "--calibrator", choices=("max", "percentile", "entropy"), default="entropy", help="INT8 range calibrator"
    )
    parser.add_argument("--seed", type=int, default=0, help="calibration frames and crop positions")
    parser.add_argument("--eval-crop", type=int, default=256, help="evaluation centre crop (multiple of 8)")
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_EVAL_TASKS), help="evaluation tasks")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="paper", help="paper: rain on Y; rgb: all on RGB")
    parser.add_argument("--cpu-int8", action="store_true", help="also make, time and score the ORT CPU INT8 graph")
    parser.add_argument("--ranges-dir", type=Path, default=None, help="keep and reuse each variant's ranges here")
    parser.add_argument("--output", type=Path, default=Path("calibration_crops.json"), help="where to write the JSON")
    return parser.parse_args(argv)


def table(rows: list[dict[str, Any]], tasks: Sequence[str]) -> str:
    """Variants as columns, tasks as rows; then each cropped INT8 variant minus the same graph from whole frames."""
    whole = {row["graph"]: row for row in rows if row["crop"] == "none"}
    compared = [row for row in rows if row["kind"] == "int8" and row["crop"] != "none" and row["graph"] in whole]
    header = ["task", *(row["variant"] for row in rows), *(f"{row['variant']} - none" for row in compared)]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for task in [*tasks, "mean"]:
        cells = [f"{row['psnr'][task]:.3f}" for row in rows]
        cells += [f"{row['psnr'][task] - whole[row['graph']]['psnr'][task]:+.3f}" for row in compared]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    for what in ("calibration_wall_s", "calibration_cpu_s", "wall_s_per_frame"):
        cells = ["-" if row.get(what) is None else str(row[what]) for row in rows] + ["" for _ in compared]
        lines.append(f"| {what} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sets = synthetic_sets(args.photos, tasks=args.tasks, seed=0, crop=args.eval_crop)
    graph = onnx.load(str(args.onnx))
    rows: list[dict[str, Any]] = [{"variant": "FP32", "kind": "fp32", "graph": "fp32", "crop": "fp32"}]
    with tempfile.TemporaryDirectory(prefix="calibration-crops-") as tmp:
        models = [args.onnx]
        for crop in args.crops:
            dataset = build_calibration_set("synthetic", str(args.calib_photos), args.count, args.size, args.seed, crop)
            name = label(dataset.crop)
            print(f"calibrating {len(dataset)} frames of {label(args.size)}, crop {name}", flush=True)
            ranges, wall, cpu = ranges_for(args.onnx, dataset, args.calibrator, args.ranges_dir)
            if wall is None:
                wall, cpu = ranges.settings.get("seconds"), ranges.settings.get("cpu_seconds")
            path = Path(tmp, f"qdq_{name}.onnx")
            save_onnx(insert_qdq(graph, ranges), path)
            models.append(path)
            rows.append(
                {
                    "variant": f"Q/DQ {name}",
                    "kind": "int8",
                    "graph": "qdq",
                    "crop": name,
                    "calibration_wall_s": None if wall is None else round(wall, 1),
                    "calibration_cpu_s": None if cpu is None else round(cpu, 1),
                    "wall_s_per_frame": None if wall is None else round(wall / len(dataset), 2),
                }
            )
            if args.cpu_int8:
                from calibration.ort_int8 import quantize_for_cpu

                path = Path(tmp, f"cpu_int8_{name}.onnx")
                method = "minmax" if args.calibrator == "max" else args.calibrator
                _, wall, cpu = timed(quantize_for_cpu, args.onnx, iter(dataset), path, method)
                models.append(path)
                rows.append(
                    {
                        "variant": f"CPU INT8 {name}",
                        "kind": "int8",
                        "graph": "cpu_int8",
                        "crop": name,
                        "calibration_wall_s": round(wall, 1),
                        "calibration_cpu_s": round(cpu, 1),
                        "wall_s_per_frame": round(wall / len(dataset), 2),
                    }
                )
        for row, model in zip(rows, models):
            print(f"scoring {row['variant']}", flush=True)
            row["psnr"] = evaluate(model, sets, args.protocol)
            row["psnr"]["mean"] = float(np.mean([row["psnr"][task] for task in args.tasks]))
    print(f"\n{args.onnx}, {args.count} {args.calibrator} frames of {label(args.size)}, CPU {cpu_name()}")
    print(table(rows, args.tasks))
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "onnx": str(args.onnx),
        "calibration": {
            "photos": str(args.calib_photos),
            "count": args.count,
            "size": list(args.size),
            "calibrator": args.calibrator,
            "seed": args.seed,
        },
        "evaluation": {"photos": str(args.photos), "crop": args.eval_crop, "protocol": args.protocol},
        "cpu": cpu_name(),
        "machine": machine_info(),
        "rows": rows,
    }
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
