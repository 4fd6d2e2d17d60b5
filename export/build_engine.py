"""``python -m export.build_engine --onnx dsrir.onnx``: a TensorRT engine plus its ``.json`` sidecar.

trtexec's options under their usual names; the installed TensorRT's major version decides how a
precision is obtained (``export.engine.precision``), and a request it cannot honour fails with one line.
The plan and the equivalent trtexec command are printed before building; ``--dry-run`` stops there and
needs no TensorRT and no GPU (``--target-trt`` picks the version to plan for). Every plan first runs the ONNX
import rules of its TensorRT version (:mod:`dsrir.trt.import_rules`): a graph that parser would refuse or misread
(the CPU INT8 graph, an opset-18 export for 8.x...) fails with one line; ``--dry-run`` without ``--target-trt``
also reports the check for every TensorRT line it knows.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from dsrir.atomic import atomic_path
from dsrir.cli import command
from dsrir.cli_help import DefaultsHelpFormatter
from dsrir.digest import file_sha256
from dsrir.errors import DSRIRError
from dsrir.graph.ops import PLUGIN_OP
from dsrir.trt.gpu import GpuInfo, query_gpu
from dsrir.trt.import_rules import TARGETS, rules_for
from dsrir.trt.sidecar import EngineSidecar, sidecar_path, write_sidecar
from dsrir.trt.version import DEFAULT_TARGET, INSTALL_HINT, full, installed_version, resolve_target, short
from export.engine.graph import onnx_digest
from export.engine.plan import (
    HARDWARE_LEVELS,
    PLUGIN_MODES,
    BuildOptions,
    EnginePlan,
    dsrir_command,
    engine_sidecar,
    import_report,
    make_plan,
    timing_cache_pattern,
)
from export.engine.precision import PRECISIONS
from export.engine.shapes import Profile, format_shape
from export.engine.trtexec import trtexec_command

FRONTENDS = ("onnx", "torch-tensorrt")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m export.build_engine",
        description="Build a TensorRT engine (and its .json sidecar) from a DSRIR ONNX export, trtexec-style.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--onnx", type=Path, help="ONNX file from python -m export.onnx")
    parser.add_argument("--output", type=Path, help="engine file to write (default: the ONNX path with .engine)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp16", help="what the engine should compute in")
    parser.add_argument("--calib", type=Path, help="INT8 calibration cache for an FP32 graph (TensorRT 8.x/10.x)")
    parser.add_argument("--plugin-lib", type=Path, help=f"library with the {PLUGIN_OP} plugin (plugins/README.md)")
    parser.add_argument(
        "--plugin-mode",
        choices=PLUGIN_MODES,
        default="static",
        help="static: ctypes.CDLL (default build); dynamic: IPluginRegistry.load_library "
        "(built with -DDSRIR_TRT_STATIC_REGISTRATION=0; needed with --version-compatible)",
    )
    shape_help = "[input:]NxCxHxW ({}); NHWC uint8 graphs: NxHxWx3 (default: {})"
    parser.add_argument("--min-shape", help=shape_help.format("smallest frame", "1x3x256x256"))
    parser.add_argument("--opt-shape", help=shape_help.format("tuned for", "1x3x720x1280, 720p video"))
    parser.add_argument("--max-shape", help=shape_help.format("largest frame", "1x3x1080x1920"))
    parser.add_argument(
        "--workspace", type=int, metavar="MIB", help="workspace pool limit in MiB (default: TensorRT's)"
    )
    parser.add_argument(
        "--timing-cache",
        type=Path,
        help="timing cache to read and update (default: ~/.cache/dsrir/timing/trt<major>.<minor>_<gpu>_sm<cc>.cache)",
    )
    parser.add_argument(
        "--builder-optimization-level", type=int, metavar="N", help="0-5, TensorRT 8.6+ (default: TensorRT's, 3)"
    )
    parser.add_argument("--dla-core", type=int, metavar="N", help="build for DLA core N with GPU fallback (Jetson)")
    parser.add_argument(
        "--version-compatible", action="store_true", help="engine that also runs on later TensorRT releases (8.6+)"
    )
    parser.add_argument(
        "--hardware-compatibility",
        choices=HARDWARE_LEVELS,
        default="none",
        help="ampere+: one engine for every sm_80+ GPU (8.6+); same-compute-capability: 10.9+",
    )
    parser.add_argument(
        "--target-trt",
        metavar="VERSION",
        help=f"TensorRT version to plan and check the ONNX for with --dry-run (default: the installed one, else "
        f"{DEFAULT_TARGET}; a dry run without it checks the ONNX for {', '.join(TARGETS)})",
    )
    parser.add_argument("--dry-run", action="store_true", help="check the ONNX and the options, print the plan, stop")
    parser.add_argument("--frontend", choices=FRONTENDS, default="onnx", help="torch-tensorrt: build from --checkpoint")
    parser.add_argument("--checkpoint", type=Path, help="DSRIR weights for --frontend torch-tensorrt")
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> BuildOptions:
    return BuildOptions(
        onnx=args.onnx,
        output=args.output,
        precision=args.precision,
        calib=args.calib,
        plugin_lib=args.plugin_lib,
        plugin_mode=args.plugin_mode,
        min_shape=args.min_shape,
        opt_shape=args.opt_shape,
        max_shape=args.max_shape,
        workspace_mib=args.workspace,
        timing_cache=args.timing_cache,
        optimization_level=args.builder_optimization_level,
        dla_core=args.dla_core,
        version_compatible=args.version_compatible,
        hardware_compatibility=args.hardware_compatibility,
    )


def _shapes_line(profile: Profile) -> str:
    return "  ".join(f"{which} {format_shape(getattr(profile, which))}" for which in ("min", "opt", "max"))


def format_plan(plan: EnginePlan, installed: bool) -> str:
    """The plan as a small two-column table, then its notes."""
    graph, options, precision = plan.graph, plan.options, plan.precision
    meta = graph.metadata
    version = (
        f"{full(plan.version)} (installed)" if installed else f"{short(plan.version)} (target; not installed here)"
    )
    plugin = "not needed"
    if options.plugin_lib is not None:
        how = "ctypes.CDLL, RTLD_GLOBAL" if options.plugin_mode == "static" else "IPluginRegistry.load_library"
        plugin = f"{graph.plugin_nodes} {PLUGIN_OP} node(s); {options.plugin_lib} ({how})"
    timing = str(plan.timing_cache) if plan.timing_cache else f"{timing_cache_pattern(plan.version)} (per GPU)"
    exported = f"exported for {graph.target_trt}; " if graph.target_trt else ""
    rows = [
        ("TensorRT", version),
        ("GPU", f"{plan.gpu.name} ({plan.gpu.sm})" if plan.gpu else "unknown until the build"),
        ("ONNX", f"{graph.path} ({graph.kind} graph, preset {meta.preset}, io {meta.io})"),
        ("ONNX import", f"{exported}ok for {short(plan.version)} (rules: {rules_for(plan.version).source})"),
        ("input", f"{graph.input.name} {graph.input.dtype} {graph.layout}, H/W multiples of {meta.size_multiple}"),
        ("precision", f"{options.precision}: {precision.summary}"),
        ("strongly typed", "yes" if precision.strongly_typed else "no"),
        ("network flags", ", ".join(precision.network_flags) or "-"),
        ("builder flags", ", ".join(precision.builder_flags) or "-"),
        ("calibration", precision.calibration_cache or "-"),
        ("profile", _shapes_line(plan.profile)),
        ("plugin", plugin),
        ("workspace", f"{options.workspace_mib} MiB" if options.workspace_mib else "TensorRT default"),
        ("optimization", str(options.optimization_level) if options.optimization_level is not None else "default (3)"),
        ("DLA", f"core {options.dla_core}, GPU fallback" if options.dla_core is not None else "off"),
        (
            "compatibility",
            f"version: {'yes' if options.version_compatible else 'no'}, hardware: {options.hardware_compatibility}",
        ),
        ("timing cache", timing),
        ("engine", str(plan.output)),
        ("sidecar", str(plan.sidecar)),
    ]
    width = max(len(name) for name, _ in rows)
    lines = ["engine plan:"] + [f"  {name:<{width}}  {value}" for name, value in rows]
    lines += [f"  note: {note}" for note in plan.notes]
    return "\n".join(lines)


def sidecar_for(plan: EnginePlan, engine: bytes, seconds: float, tensorrt_version: str, gpu: GpuInfo) -> EngineSidecar:
    """Everything the runtime (and a person) needs to know about the engine, from the plan and the build."""
    graph, options, meta = plan.graph, plan.options, plan.graph.metadata
    plugin = options.plugin_lib
    return engine_sidecar(
        engine,
        seconds,
        tensorrt_version,
        gpu,
        options,
        plan.profile,
        precision_summary=plan.precision.summary,
        strongly_typed=plan.precision.strongly_typed,
        flags=[*plan.precision.network_flags, *plan.precision.builder_flags],
        inputs=[{"name": graph.input.name, "dtype": graph.input.dtype, "layout": graph.layout}],
        outputs=[{"name": o.name, "dtype": o.dtype} for o in graph.outputs],
        io=meta.io,
        size_multiple=meta.size_multiple,
        preset=meta.preset,
        onnx=str(graph.path),
        onnx_sha256=onnx_digest(graph.path),
        plugin_library=str(plugin) if plugin else None,
        plugin_sha256=file_sha256(plugin) if plugin else None,
        plugin_mode=options.plugin_mode if plugin else None,
        calibration_cache=plan.precision.calibration_cache,
        timing_cache=str(plan.timing_cache) if plan.timing_cache else None,
        rebuild_command=dsrir_command(plan),
        trtexec_command=trtexec_command(plan),
        extra={"mode": meta.mode, "input_range": meta.input_range, "onnx_precision": meta.precision},
    )


def write_engine(path: Path, engine: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(engine)


def run_onnx(args: argparse.Namespace, options: BuildOptions) -> int:
    from export.engine.graph import inspect_onnx

    if options.onnx is None:
        raise DSRIRError("--onnx PATH is required (or --frontend torch-tensorrt --checkpoint PATH)")
    graph = inspect_onnx(options.onnx)
    installed = installed_version()
    if installed is None and not args.dry_run:
        raise DSRIRError(f"{INSTALL_HINT}; --dry-run checks and plans without it")
    gpu = query_gpu() if installed is not None else None
    if args.dry_run and args.target_trt is None:
        report = import_report(graph, TARGETS)
        width = max(len(target) for target, _ in report)
        print("ONNX import check (dsrir/trt/import_rules.py):")
        print("\n".join(f"  TensorRT {target:<{width}}  {result}" for target, result in report))
    plan = make_plan(options, graph, resolve_target(installed, args.target_trt, args.dry_run), gpu)
    print(format_plan(plan, installed is not None and installed[:2] == plan.version[:2]))
    print(f"trtexec equivalent:\n  {trtexec_command(plan)}")
    if args.dry_run:
        return 0
    if gpu is None:
        raise DSRIRError("no CUDA GPU visible (libcuda.so.1 found no device): TensorRT builds on the target GPU")
    from export.engine.builder import build_serialized_engine

    started = time.perf_counter()
    engine = build_serialized_engine(plan)
    seconds = time.perf_counter() - started
    write_engine(plan.output, engine)
    write_sidecar(plan.sidecar, sidecar_for(plan, engine, seconds, full(installed or plan.version), gpu))
    print(f"wrote {plan.output} ({len(engine) / 2**20:.1f} MiB, built in {seconds:.0f} s) and {plan.sidecar.name}")
    return 0


def run_torch_tensorrt(args: argparse.Namespace, options: BuildOptions) -> int:
    from export.engine.torch_trt import build_with_torch_tensorrt, check_options, require_torch_tensorrt, torch_sidecar

    check_options(options, args.checkpoint)
    if args.dry_run:
        from dsrir.checkpoint import read_weights
        from export.engine.torch_trt import torch_profile

        multiple = read_weights(args.checkpoint).config.size_multiple
        output = options.output or args.checkpoint.with_suffix(".engine")
        print(f"torch-tensorrt frontend: {args.checkpoint} -> {output}, {options.precision}")
        print(f"  profile: {_shapes_line(torch_profile(options, multiple))} (H/W multiples of {multiple})")
        print("no trtexec equivalent: this frontend has no ONNX file (use --frontend onnx for one)")
        return 0
    require_torch_tensorrt()
    installed = installed_version()
    if installed is None:
        raise DSRIRError(INSTALL_HINT)
    gpu = query_gpu()
    if gpu is None:
        raise DSRIRError("no CUDA GPU visible (libcuda.so.1 found no device)")
    output = options.output or args.checkpoint.with_suffix(".engine")
    from export.engine.plan import default_timing_cache

    timing = options.timing_cache or default_timing_cache(installed, gpu)
    started = time.perf_counter()
    engine, profile, weights = build_with_torch_tensorrt(args.checkpoint, options, timing)
    seconds = time.perf_counter() - started
    write_engine(output, engine)
    sidecar = torch_sidecar(engine, weights, args.checkpoint, options, profile, output, seconds, full(installed), gpu)
    sidecar.timing_cache = str(timing)
    write_sidecar(sidecar_path(output), sidecar)
    print(f"wrote {output} ({len(engine) / 2**20:.1f} MiB, built in {seconds:.0f} s) and {sidecar_path(output).name}")
    return 0


@command(memory_hint="build a smaller profile (--max-shape) or limit --workspace")
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = options_from(args)
    if args.frontend == "torch-tensorrt":
        return run_torch_tensorrt(args, options)
    if args.checkpoint is not None:
        raise DSRIRError("--checkpoint is for --frontend torch-tensorrt; the ONNX frontend builds from --onnx")
    return run_onnx(args, options)


if __name__ == "__main__":
    sys.exit(main())
