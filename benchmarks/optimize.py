"""What each optimisation costs in quality and buys in speed: one table, every variant measured in the same run.

For one checkpoint and the synthetic evaluation set (``benchmarks/quality.py``'s protocol): FP32 PyTorch, ONNX
Runtime FP32, the FP16 ONNX, post-training INT8 with each calibrator (TensorRT-style Q/DQ graphs, run in ONNX
Runtime on the CPU with graph optimisations off, so every Q/DQ pair is exact float arithmetic: the INT8 arithmetic
TensorRT would do, not its speed), our Q/DQ graph with FP16 outside the INT8 layers (TensorRT 10/11) and its plugin
flavour (ranges carried from the decomposed graph), the ONNX Runtime CPU INT8 graph, a QAT Q/DQ graph, other Q/DQ
graphs (``--qdq "ModelOpt=model.onnx"``, e.g. NVIDIA Model Optimizer's on the frames ``--save-calibration`` wrote)
and pruned checkpoints when given. Columns: PSNR/SSIM per task, the mean PSNR change against FP32, parameters,
GFLOPs at 720p and CPU latency (at 720p by default); a second table counts, for every Q/DQ graph, INT8 convolutions,
activation quantizers a conv epilogue absorbs or not, and the float types (:func:`calibration.qdq.qdq_structure`).

    python benchmarks/optimize.py --checkpoint weights/dsrir-xs_all_in_one.safetensors --photos photos/val \\
        --calib-photos photos/train [--qat-qdq run_qat/model_qat_qdq.onnx] [--pruned pruned.pth ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from quality import dsrir_method, machine_info  # noqa: E402
from speed import time_backend  # noqa: E402

from calibration.collect import collect_ranges  # noqa: E402
from calibration.dataset import DEFAULT_COUNT, DEFAULT_CROP, build_calibration_set, parse_crop, parse_size  # noqa: E402
from calibration.ort_int8 import quantize_for_cpu  # noqa: E402
from calibration.qdq import insert_qdq, insert_qdq_plugin, qdq_structure  # noqa: E402
from dsrir.atomic import write_text_atomic  # noqa: E402
from dsrir.checkpoint import load_model  # noqa: E402
from dsrir.cli_help import DefaultsHelpFormatter  # noqa: E402
from dsrir.data.eval_sets import DEFAULT_EVAL_TASKS, synthetic_sets  # noqa: E402
from dsrir.graph.metadata import INT8_QDQ, read_metadata, write_metadata  # noqa: E402
from dsrir.graph.save import save_onnx  # noqa: E402
from dsrir.metrics import score  # noqa: E402
from dsrir.model.cost import SIZE_720P, count_flops, count_params  # noqa: E402
from export.onnx.build import ExportOptions, export_checkpoint  # noqa: E402
from runtime.backends import open_backend  # noqa: E402
from runtime.backends.onnxruntime_backend import OrtBackend  # noqa: E402

CALIBRATORS = ("max", "percentile", "entropy")


def build_variants(args: argparse.Namespace, workdir: Path) -> list[tuple[str, Path, Path]]:
    """(label, model file, the checkpoint whose architecture it has) for every variant."""
    fp32, _ = export_checkpoint(args.checkpoint, workdir / "fp32.onnx", ExportOptions())
    fp16, _ = export_checkpoint(args.checkpoint, workdir / "fp16.onnx", ExportOptions(precision="fp16"))
    plugin_path, _ = export_checkpoint(
        args.checkpoint, workdir / "plugin.onnx", ExportOptions(patch_attention="plugin")
    )
    plugin = onnx.load(str(plugin_path))
    variants = [
        ("PyTorch FP32", args.checkpoint, args.checkpoint),
        ("ONNX Runtime FP32", fp32, args.checkpoint),
        ("FP16 ONNX", fp16, args.checkpoint),
    ]
    calibration = build_calibration_set(
        "synthetic", str(args.calib_photos), args.calib_count, args.calib_size, crop=args.calib_crop
    )
    graph = onnx.load(str(fp32))
    if args.save_calibration is not None:
        np.save(args.save_calibration, np.concatenate(list(calibration)))  # N x 3 x H x W, for ModelOpt
    for calibrator in CALIBRATORS:
        ranges = collect_ranges(fp32, calibration, calibrator)
        path = workdir / f"ptq_{calibrator}.onnx"
        save_onnx(insert_qdq(graph, ranges), path)
        variants.append((f"PTQ INT8 Q/DQ ({calibrator})", path, args.checkpoint))
        if calibrator == "max":
            path = workdir / "ptq_max_fp16.onnx"
            save_onnx(insert_qdq(graph, ranges, "fp16"), path)
            variants.append(("PTQ INT8 Q/DQ FP16 (max), TensorRT 10/11", path, args.checkpoint))
            path = workdir / "ptq_max_fp16_plugin.onnx"
            save_onnx(insert_qdq_plugin(plugin, graph, ranges, "fp16"), path)
            variants.append(("PTQ INT8 Q/DQ FP16 (max), plugin flavour", path, args.checkpoint))
    cpu_int8 = quantize_for_cpu(fp32, iter(calibration), workdir / "int8_cpu.onnx", "minmax")
    variants.append(("ORT CPU INT8 (minmax, uint8, 7-bit weights)", cpu_int8, args.checkpoint))
    if args.qat_qdq is not None:
        variants.append(("QAT INT8 Q/DQ", args.qat_qdq, args.checkpoint))
    for label, path in args.qdq:
        variants.append((label, with_export_metadata(path, graph, workdir), args.checkpoint))
    for pruned in args.pruned:
        variants.append((f"pruned {pruned.stem} FP32", pruned, pruned))
    return variants


def with_export_metadata(path: Path, fp32: onnx.ModelProto, workdir: Path) -> Path:
    """``path`` itself, or a copy carrying the FP32 export's ``dsrir.*`` metadata as ``int8-qdq`` where another tool
    (ModelOpt) dropped it, so the runtime's backend knows how to feed it."""
    model = onnx.load(str(path))
    if {p.key for p in model.metadata_props} >= set(read_metadata(fp32).to_props()):
        return path
    write_metadata(model, dataclasses.replace(read_metadata(fp32), precision=INT8_QDQ))
    copy = workdir / f"stamped_{path.name}"
    save_onnx(model, copy)
    return copy


def evaluate(model: Path, sets: Sequence[Any], protocol: str) -> dict[str, tuple[float, float]]:
    """Mean (PSNR, SSIM) per task of ``model`` on the evaluation sets (TensorRT Q/DQ graphs as exact arithmetic)."""
    backend = OrtBackend(model, exact_qdq=True) if model.suffix == ".onnx" else None
    restore, _ = dsrir_method(model, backend)
    results = {}
    for eval_set in sets:
        scores = [score(restore(sample.degraded), sample.target, sample.task, protocol) for sample in eval_set]
        results[eval_set.task] = (float(np.mean([s[0] for s in scores])), float(np.mean([s[1] for s in scores])))
    return results


def cost(checkpoint: Path) -> tuple[int, float]:
    model, _ = load_model(checkpoint)
    return count_params(model), count_flops(model, *SIZE_720P) / 1e9


def labelled_path(text: str) -> tuple[str, Path]:
    label, sep, path = text.partition("=")
    if not sep or not label or not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"{text!r}: expected LABEL=PATH of an existing Q/DQ ONNX graph")
    return label, Path(path)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="FP32 weights (.pth or .safetensors)")
    parser.add_argument("--photos", type=Path, required=True, help="clean validation photos (evaluation set)")
    parser.add_argument("--calib-photos", type=Path, required=True, help="clean photos for INT8 calibration")
    parser.add_argument("--calib-count", type=int, default=DEFAULT_COUNT, help="calibration frames (as calibration)")
    parser.add_argument(
        "--calib-size", type=parse_size, default="640x360", help="calibration frame size WxH (as calibration)"
    )
    parser.add_argument(
        "--calib-crop",
        type=parse_crop,
        default="{}x{}".format(*DEFAULT_CROP),
        metavar="WxH|none",
        help="window cut from each calibration frame (as calibration --crop)",
    )
    parser.add_argument("--qat-qdq", type=Path, default=None, help="model_qat_qdq.onnx from python -m train.qat")
    parser.add_argument("--pruned", type=Path, nargs="*", default=[], help="checkpoints from python -m train.prune")
    parser.add_argument(
        "--qdq", type=labelled_path, action="append", default=[], metavar="LABEL=PATH", help="another Q/DQ graph"
    )
    parser.add_argument(
        "--save-calibration", type=Path, default=None, help="write the calibration frames (.npy, N x 3 x H x W)"
    )
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_EVAL_TASKS), help="evaluation tasks")
    parser.add_argument("--crop", type=int, default=256, help="evaluation centre crop (multiple of 8)")
    parser.add_argument(
        "--protocol", default="paper", choices=("paper", "rgb"), help="paper: rain on Y; rgb: all on RGB"
    )
    parser.add_argument("--latency-repeats", type=int, default=2, help="timed frames per variant (median)")
    parser.add_argument("--latency-size", type=parse_size, default="1280x720", help="latency frame size WxH")
    parser.add_argument("--output", type=Path, default=Path("optimize.json"), help="where to write the JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    sets = synthetic_sets(args.photos, tasks=args.tasks, seed=0, crop=args.crop)
    rows = []
    structures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        variants = build_variants(args, Path(tmp))
        for label, model, architecture in tqdm(variants, desc="variants", unit="variant"):
            if model.suffix == ".onnx" and any(
                n.op_type == "DequantizeLinear" for n in onnx.load(str(model)).graph.node
            ):
                structures[label] = qdq_structure(onnx.load(str(model)))
            params, gflops = cost(architecture)
            backend = open_backend(model)
            latency = time_backend(backend, args.latency_size[::-1], args.latency_repeats)
            backend.close()
            rows.append(
                {
                    "variant": label,
                    "params": params,
                    "gflops_720p": round(gflops, 1),
                    "cpu_latency_s": round(latency, 2),
                    "tasks": evaluate(model, sets, args.protocol),
                }
            )
    reference = np.mean([psnr for psnr, _ in rows[0]["tasks"].values()])
    header = " | ".join(f"{task} PSNR/SSIM" for task in args.tasks)
    size = "x".join(map(str, args.latency_size))
    print(f"\n| variant | params | GFLOPs 720p | CPU s at {size} | {header} | mean PSNR | vs FP32 |")
    print("|---|---:|---:|---:|" + "---:|" * len(args.tasks) + "---:|---:|")
    for row in rows:
        cells = " | ".join(f"{row['tasks'][t][0]:.2f}/{row['tasks'][t][1]:.3f}" for t in args.tasks)
        mean = float(np.mean([psnr for psnr, _ in row["tasks"].values()]))
        row["mean_psnr"], row["delta_db"] = round(mean, 3), round(mean - reference, 3)
        print(
            f"| {row['variant']} | {row['params'] / 1e6:.2f}M | {row['gflops_720p']} | {row['cpu_latency_s']} | "
            f"{cells} | {mean:.2f} | {mean - reference:+.2f} |"
        )
    print("\n| Q/DQ graph | INT8 convs | activation Q | absorbed by a conv epilogue | standalone | scales | rest |")
    print("|---|---:|---:|---:|---:|---|---|")
    for label, st in structures.items():
        print(
            f"| {label} | {st.int8_convs}/{st.convs} | {st.activation_quantizers} | {st.absorbable} | "
            f"{st.standalone} | {'/'.join(st.scale_types)} | {'/'.join(st.float_types)} |"
        )
    payload = {
        "date": dt.date.today().isoformat(),
        "qdq_structure": {label: dataclasses.asdict(st) for label, st in structures.items()},
        "checkpoint": str(args.checkpoint),
        "photos": str(args.photos),
        "crop": args.crop,
        "latency_size": args.latency_size,
        "calibration": {
            "photos": str(args.calib_photos),
            "count": args.calib_count,
            "size": args.calib_size,
            "crop": args.calib_crop,
        },
        "machine": machine_info(),
        "rows": rows,
    }
    write_text_atomic(args.output, json.dumps(payload, indent=2))
    print(f"\nwritten {args.output}")


if __name__ == "__main__":
    main()
