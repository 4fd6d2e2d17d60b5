"""``python -m calibration --onnx MODEL.onnx --synthetic photos/``: INT8 ranges and every artefact built from them.

Writes into ``--output-dir``: ``ranges.json`` (amax per ONNX tensor, per-channel conv weights), ``calib.cache``
(TensorRT 8.x/10.x EntropyCalibration2 cache), ``manifest.json`` (the calibration set), ``model_qdq.onnx``
(TensorRT-style Q/DQ graph) and ``model_int8_cpu.onnx`` (ONNX Runtime CPU INT8).
``ranges.json`` is written last and vouches for the rest: a second run with the same model, frames and settings
reuses it instead of calibrating again.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import onnx

from calibration.calibrators import CALIBRATORS
from calibration.collect import calibration_settings, check_calibratable, collect_ranges
from calibration.dataset import (
    DEFAULT_COUNT,
    DEFAULT_CROP,
    SOURCE_KINDS,
    CalibrationSet,
    build_calibration_set,
    check_size,
    parse_crop,
    parse_size,
)
from calibration.ort_int8 import quantize_for_cpu, weight_bits_of
from calibration.qdq import high_precision_for, insert_qdq, insert_qdq_plugin
from calibration.ranges import RANGES_FILE, Ranges
from calibration.trt_cache import check_cache_names
from dsrir.cli import command, hidden_alias, positive_float, positive_int
from dsrir.cli_help import DefaultsHelpFormatter
from dsrir.digest import file_sha256
from dsrir.errors import DSRIRError, error_line
from dsrir.graph.save import save_onnx
from dsrir.onnx_file import load_onnx
from dsrir.paths import refuse_overwriting_inputs
from dsrir.trt.calib_cache import read_calibration_cache, write_calibration_cache
from dsrir.trt.import_rules import check_for_target
from dsrir.trt.import_rules import summary as import_summary
from dsrir.trt.version import DEFAULT_TARGET, LAST_WITH_CALIBRATORS, parse_version, short, strongly_typed_only

RANGES, CACHE, MANIFEST = RANGES_FILE, "calib.cache", "manifest.json"
QDQ_MODEL, QDQ_PLUGIN_MODEL, CPU_INT8_MODEL = "model_qdq.onnx", "model_qdq_plugin.onnx", "model_int8_cpu.onnx"
ARTEFACTS = (RANGES, CACHE, MANIFEST, QDQ_MODEL, QDQ_PLUGIN_MODEL, CPU_INT8_MODEL)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m calibration",
        description="Calibrate INT8 ranges of an FP32 DSRIR ONNX export (decomposed patch attention, float I/O) on "
        "frames at the deployment size, and write a TensorRT calibration cache, a Q/DQ ONNX and a CPU INT8 ONNX.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--onnx", required=True, type=Path, help="FP32 ONNX from python -m export.onnx (its defaults)")
    parser.add_argument(
        "--plugin-onnx",
        type=Path,
        default=None,
        help=f"the plugin flavour of the same checkpoint (python -m export.onnx --patch-attention plugin): also write "
        f"{QDQ_PLUGIN_MODEL}, the same Q/DQ with the ranges measured on --onnx",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", metavar="DIR|GLOB", help="real frames: a folder of images or a quoted glob")
    source.add_argument("--video", metavar="FILE", help="real frames sampled evenly from a video file")
    source.add_argument(
        "--synthetic", metavar="CLEAN_DIR", help="clean photos, degraded with noise, rain and haze in equal shares"
    )
    parser.add_argument(
        "--count", type=positive_int, default=DEFAULT_COUNT, help="frames (images and videos: at most all)"
    )
    parser.add_argument(
        "--size", default="640x360", metavar="WxH", help="deployment frame size; multiples of the model's 8"
    )
    parser.add_argument(
        "--crop",
        default="{}x{}".format(*DEFAULT_CROP),
        metavar="WxH|none",
        help="calibrate on a seeded random window of each frame (made and degraded at --size first; multiples of 8, "
        "clamped to --size): ranges follow content, not frame size, and the run takes minutes instead of hours; "
        "none: whole frames",
    )
    parser.add_argument(
        "--calibrator",
        choices=tuple(CALIBRATORS),
        default="entropy",
        help="how amax is chosen: entropy = TensorRT's EntropyCalibration2 (KL divergence), percentile = that "
        "percentile of |x|, max = the largest |x|",
    )
    parser.add_argument("--percentile", type=float, default=99.99, help="for --calibrator percentile: of |x|")
    parser.add_argument(
        "--output-dir", type=Path, default=None, help="where the files go; None: MODEL_STEM.calib beside the ONNX"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="synthetic degradations, the photo order and the crop positions"
    )
    parser.add_argument(
        "--strict", action="store_true", help="stop at the first unreadable image instead of skipping and naming it"
    )
    parser.add_argument(
        "--max-memory-gb",
        type=positive_float,
        default=4.0,
        help="GiB of activations ONNX Runtime may return per run (tensors that do not fit go to further runs of "
        "the same frame); peak memory is higher (6 GB for dsrir-xs at 640x360 with 4)",
    )
    parser.add_argument(
        "--cpu-weight-bits",
        type=int,
        choices=(7, 8),
        default=7,
        help=f"weights of {CPU_INT8_MODEL}: 7 is right on every CPU and in any ONNX Runtime; 8 is a little more "
        "precise where u8 x s8 products do not saturate (x86 with VNNI/AMX, ARM), and python -m runtime.video "
        "halves them to 7 at load on x86 CPUs without VNNI",
    )
    parser.add_argument(
        "--target-trt",
        default=DEFAULT_TARGET,
        help="the TensorRT release the artefacts are for, with its patch number if not 0 (JetPack 6.0: 8.6.2; "
        "6.1/6.2: 10.3): calib.cache's header carries it (TensorRT skips a cache from another release; "
        f"{LAST_WITH_CALIBRATORS + 1}+ has no calibrators, so no cache), and {QDQ_MODEL} is FP16 outside the INT8 "
        "layers for 10+ (strongly typed builds), FP32 for 8.x",
    )
    # The earlier spelling still works, unlisted: --target-trt is what export.onnx, build_engine and train.qat take.
    hidden_alias(parser, "--trt-version", "target_trt")
    return parser.parse_args(argv)


def reusable(path: Path, model_sha256: str, dataset: CalibrationSet, settings: dict[str, object]) -> Ranges | None:
    """Earlier ranges for the same model bytes, frames and calibrator settings, else None (with the reason)."""
    if not path.is_file():
        return None
    try:
        ranges = Ranges.load(path)
    except DSRIRError as exc:
        print(f"recalibrating: {error_line(exc)}")
        return None
    differs = [
        what
        for what, same in (
            ("model", ranges.model_sha256 == model_sha256),
            ("calibration set", ranges.manifest_sha256 == dataset.manifest_sha256),
            ("calibrator settings", all(ranges.settings.get(k) == v for k, v in settings.items())),
        )
        if not same
    ]
    if differs:
        print(f"recalibrating: {path} was made with another {', '.join(differs)}")
        return None
    return ranges


def write_artefacts(
    args: argparse.Namespace,
    out: Path,
    model: onnx.ModelProto,
    plugin: onnx.ModelProto | None,
    ranges: Ranges,
    dataset: CalibrationSet,
    reused: bool,
) -> tuple[list[Path], list[str]]:
    """Everything derived from the ranges, before ``ranges.json`` itself; what was written and what not."""
    written, notes = [out / MANIFEST], []
    dataset.write_manifest(out / MANIFEST)
    version = parse_version(args.target_trt, "--target-trt")
    if strongly_typed_only(version):
        notes.append(f"{CACHE}: not written (TensorRT {short(version)} has no calibrators; use {QDQ_MODEL})")
    else:
        write_calibration_cache(ranges.scales(), out / CACHE, version)
        written.append(out / CACHE)
        notes.append(f"{CACHE} names: {check_cache_names(read_calibration_cache(out / CACHE).scales, model).line()}")
    if reused and weight_bits_of(out / CPU_INT8_MODEL) == args.cpu_weight_bits:
        notes.append(f"{CPU_INT8_MODEL}: kept (made with these ranges' model, frames, calibrator and weight bits)")
    else:
        method = "minmax" if args.calibrator == "max" else args.calibrator  # ONNX Runtime's name
        written.append(quantize_for_cpu(args.onnx, dataset, out / CPU_INT8_MODEL, method, args.cpu_weight_bits))
        notes.append(f"{CPU_INT8_MODEL}: {args.cpu_weight_bits}-bit weights")
    high_precision = high_precision_for(version)  # FP16 around INT8 for strongly typed TensorRT 10/11
    graphs = [(QDQ_MODEL, insert_qdq(model, ranges, high_precision))]
    if plugin is not None:
        what = f"--plugin-onnx {args.plugin_onnx}"
        graphs.append((QDQ_PLUGIN_MODEL, insert_qdq_plugin(plugin, model, ranges, high_precision, what)))
    for name, graph in graphs:
        save_onnx(graph, out / name)
        notes.append(f"{name}: for TensorRT {short(version)}, {high_precision} outside the INT8 layers")
        problems = check_for_target(graph, version)
        if problems:  # the FP32 graph was exported for another TensorRT line
            notes.append(
                f"{name}: TensorRT {short(version)} would not import it ({import_summary(problems)}): export "
                f"the FP32 graphs with python -m export.onnx --target-trt {short(version)} and calibrate them"
            )
        written.append(out / name)
    return written, notes


def load_plugin_flavour(path: Path | None, model: onnx.ModelProto) -> onnx.ModelProto | None:
    """``--plugin-onnx``, checked before calibrating: the plugin flavour of the same weights as ``--onnx``."""
    if path is None:
        return None
    from calibration.fp32_export import fp32_export_metadata
    from calibration.qdq import matching_sites

    plugin = load_onnx(path, "--plugin-onnx")
    what = f"--plugin-onnx {path}"
    if fp32_export_metadata(plugin, what, allow_plugin=True).patch_attention != "plugin":
        raise DSRIRError(
            f"{what}: not the plugin flavour; export it with python -m export.onnx --patch-attention plugin"
        )
    matching_sites(model, plugin, what)
    return plugin


def summary(ranges: Ranges, dataset: CalibrationSet, seconds: float, written: list[Path], notes: list[str]) -> str:
    settings = ranges.settings
    how = ranges.calibrator + (f" {settings['percentile']}%" if "percentile" in settings else "")
    rows = [
        (
            "tensors calibrated",
            f"{len(ranges.activations)} activations, {len(ranges.weights)} conv weights (per channel)",
        ),
        ("calibrator", f"{how}, {settings.get('runs_per_frame', '?')} ONNX Runtime runs per frame"),
        ("frames", f"{len(dataset)} {dataset.kind}, {frames_line(dataset)}, seed {dataset.seed}"),
        ("time", f"{seconds:.1f} s (calibration {settings.get('seconds', '?')} s)"),
        ("written", ", ".join(str(path) for path in written)),
        *(("note", note) for note in notes),
    ]
    return "\n".join(f"{name:<20}{value}" for name, value in rows)


def frames_line(dataset: CalibrationSet) -> str:
    size = f"{dataset.size[0]}x{dataset.size[1]}"
    if dataset.crop is None:
        return size
    return f"{size}, each cropped to {dataset.crop[0]}x{dataset.crop[1]} at a random place"


def check_args(args: argparse.Namespace) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """Flag values that would otherwise fail after minutes of calibration; the frame size and the crop."""
    parse_version(args.target_trt, "--target-trt")
    if not 0 < args.percentile <= 100:
        raise DSRIRError(f"--percentile {args.percentile}: expected a percentage in (0, 100]")
    return parse_size(args.size), parse_crop(args.crop)


def run(args: argparse.Namespace) -> tuple[str, int]:
    """The summary, and how many unreadable inputs were skipped."""
    started = time.perf_counter()
    size, crop = check_args(args)
    model = load_onnx(args.onnx, "--onnx")
    check_size(size, check_calibratable(model, args.onnx))
    plugin = load_plugin_flavour(args.plugin_onnx, model)
    kind = next(kind for kind in SOURCE_KINDS if getattr(args, kind) is not None)
    out: Path = args.output_dir if args.output_dir is not None else args.onnx.with_suffix(".calib")
    refuse_overwriting_inputs(
        [("--output-dir", out), *(("--output-dir", out / name) for name in ARTEFACTS)],
        [args.onnx, args.plugin_onnx, getattr(args, kind)],
    )
    dataset = build_calibration_set(kind, getattr(args, kind), args.count, size, args.seed, crop, args.strict)
    for line in dataset.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    settings = calibration_settings(args.calibrator, args.percentile)
    ranges = reusable(out / RANGES, file_sha256(args.onnx), dataset, settings)
    reused = ranges is not None
    if ranges is not None:
        print(f"reusing ranges from {out / RANGES} (same model, calibration set and calibrator settings)")
    else:
        ranges = collect_ranges(args.onnx, dataset, args.calibrator, args.percentile, args.max_memory_gb)
    written, notes = write_artefacts(args, out, model, plugin, ranges, dataset, reused)
    ranges.save(out / RANGES)
    if dataset.skipped:
        notes.append(f"skipped {len(dataset.skipped)} unreadable image(s), named above and in {MANIFEST}")
    text = summary(ranges, dataset, time.perf_counter() - started, [*written, out / RANGES], notes)
    return text, len(dataset.skipped)


@command(
    interrupted="interrupted; ranges.json is written only by a finished run",
    memory_hint="lower --max-memory-gb, or calibrate on smaller frames (--size, --crop)",
)
def main(argv: Sequence[str] | None = None) -> int:
    text, skipped = run(parse_args(argv))
    print(text)
    return 1 if skipped else 0
