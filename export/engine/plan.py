"""The build plan: every option checked against the graph, the TensorRT version and the GPU, before any
TensorRT call.

``make_plan`` is pure (no TensorRT, no GPU): the same plan drives the real build, ``--dry-run``, the
printed trtexec command and the sidecar, so what a dry run shows on a laptop is what the Jetson does.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsrir.errors import DSRIRError
from dsrir.graph.metadata import INT8_CPU
from dsrir.graph.ops import PLUGIN_OP
from dsrir.trt.calib_cache import read_calibration_cache
from dsrir.trt.gpu import AMPERE, GpuInfo, slug
from dsrir.trt.import_rules import rules_for, summary
from dsrir.trt.sidecar import EngineSidecar, sidecar_path
from dsrir.trt.version import Version, short
from export.engine.graph import GraphInfo
from export.engine.precision import PrecisionPlan, decide_precision
from export.engine.shapes import Profile, format_shape, make_profile

HARDWARE_LEVELS = ("none", "ampere+", "same-compute-capability")
PLUGIN_MODES = ("static", "dynamic")
MAX_OPT_LEVEL = 5


@dataclass(frozen=True)
class BuildOptions:
    """What was asked for, as the CLI spells it (None: not given)."""

    onnx: Path | None = None
    output: Path | None = None
    precision: str = "fp16"
    calib: Path | None = None
    plugin_lib: Path | None = None
    plugin_mode: str = "static"
    min_shape: str | None = None
    opt_shape: str | None = None
    max_shape: str | None = None
    workspace_mib: int | None = None
    timing_cache: Path | None = None
    optimization_level: int | None = None
    dla_core: int | None = None
    version_compatible: bool = False
    hardware_compatibility: str = "none"


@dataclass(frozen=True)
class EnginePlan:
    version: Version
    gpu: GpuInfo | None
    graph: GraphInfo
    options: BuildOptions
    precision: PrecisionPlan
    profile: Profile
    output: Path
    timing_cache: Path | None  # None: per-GPU default, resolved on the build machine
    notes: tuple[str, ...] = field(default=())

    @property
    def sidecar(self) -> Path:
        return sidecar_path(self.output)

    @property
    def needs_plugin(self) -> bool:
        return self.graph.plugin_nodes > 0


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dsrir"


def default_timing_cache(version: Version, gpu: GpuInfo) -> Path:
    """One timing cache per TensorRT version and GPU: a cache from another GPU or version is rejected or misleads."""
    major, minor = gpu.compute_capability
    return cache_root() / "timing" / f"trt{short(version)}_{slug(gpu.name)}_sm{major}{minor}.cache"


def timing_cache_pattern(version: Version) -> str:
    return str(cache_root() / "timing" / f"trt{short(version)}_<gpu>_sm<cc>.cache")


def _check_versions(options: BuildOptions, version: Version, gpu: GpuInfo | None) -> None:
    trt = f"TensorRT {short(version)}"
    if options.version_compatible and version[:2] < (8, 6):
        raise DSRIRError(f"--version-compatible needs TensorRT 8.6 or later; this is {trt}")
    level = options.hardware_compatibility
    if level not in HARDWARE_LEVELS:
        raise DSRIRError(f"--hardware-compatibility {level}: choose one of {', '.join(HARDWARE_LEVELS)}")
    if level == "ampere+" and version[:2] < (8, 6):
        raise DSRIRError(f"--hardware-compatibility ampere+ needs TensorRT 8.6 or later; this is {trt}")
    if level == "same-compute-capability" and version[:2] < (10, 9):
        raise DSRIRError(
            f"--hardware-compatibility same-compute-capability needs TensorRT 10.9 or later; this is {trt}"
        )
    if level != "none" and gpu is not None and gpu.compute_capability < AMPERE:
        raise DSRIRError(f"--hardware-compatibility {level} needs an Ampere or newer GPU to build on; this is {gpu.sm}")
    if options.optimization_level is not None:
        if not 0 <= options.optimization_level <= MAX_OPT_LEVEL:
            raise DSRIRError(
                f"--builder-optimization-level {options.optimization_level}: expected 0 to {MAX_OPT_LEVEL}"
            )
        if version[:2] < (8, 6):
            raise DSRIRError(f"--builder-optimization-level needs TensorRT 8.6 or later; this is {trt}")
    if options.workspace_mib is not None and options.workspace_mib <= 0:
        raise DSRIRError(f"--workspace {options.workspace_mib}: expected a positive size in MiB")


def _check_dla(options: BuildOptions, precision: PrecisionPlan, graph_kind: str) -> None:
    if options.dla_core is None:
        return
    if options.dla_core < 0:
        raise DSRIRError(f"--dla-core {options.dla_core}: expected a DLA core index (0 or 1 on Orin/Xavier)")
    reduced = {"FP16", "INT8"} & set(precision.builder_flags) or (precision.strongly_typed and graph_kind != "fp32")
    if not reduced:
        raise DSRIRError("--dla-core: DLA runs FP16 or INT8 layers only; use --precision fp16, int8 or best")
    if options.hardware_compatibility != "none":
        raise DSRIRError("--dla-core with --hardware-compatibility: DLA engines are tied to their Jetson")


def _check_plugin(options: BuildOptions, graph: GraphInfo, version: Version) -> list[str]:
    notes: list[str] = []
    lib = options.plugin_lib
    if options.plugin_mode not in PLUGIN_MODES:
        raise DSRIRError(f"--plugin-mode {options.plugin_mode}: choose static or dynamic")
    if lib is None:
        if graph.plugin_nodes:
            raise DSRIRError(
                f"{graph.path}: the graph has {graph.plugin_nodes} {PLUGIN_OP} node(s): pass --plugin-lib "
                f"build/libdsrir_trt_plugins.so (see plugins/README.md), or export the decomposed graph"
            )
        return notes
    if not lib.is_file():
        raise DSRIRError(f"--plugin-lib {lib}: file not found (build it: see plugins/README.md)")
    if not graph.plugin_nodes:
        notes.append(f"--plugin-lib given but the graph has no {PLUGIN_OP} node: the library is loaded anyway")
    if options.plugin_mode == "dynamic" and version[:2] < (8, 6):
        raise DSRIRError("--plugin-mode dynamic (IPluginRegistry.load_library) needs TensorRT 8.6+; use static")
    if options.version_compatible and options.plugin_mode == "static":
        raise DSRIRError(
            "--version-compatible with a plugin: the library must be serialized with the engine, which needs "
            "--plugin-mode dynamic and a library built with -DDSRIR_TRT_STATIC_REGISTRATION=0"
        )
    return notes


def check_importable(graph: GraphInfo, version: Version) -> None:
    """Refuse, in one line, a graph TensorRT ``version``'s ONNX parser would not import (dsrir.trt.import_rules)."""
    if graph.metadata.precision == INT8_CPU:
        raise DSRIRError(
            f"{graph.path} is the CPU INT8 graph (dsrir.precision {INT8_CPU}): its UINT8 zero points import into no "
            "TensorRT version; build from the FP32/FP16 export or calibration's model_qdq.onnx"
        )
    problems = graph.import_problems(version)
    if problems:
        rules = rules_for(version)
        line = "" if rules.line == short(version) else f" (checked with the {rules.line} rules)"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        fix = f"re-export with python -m export.onnx --target-trt {short(version)}"
        raise DSRIRError(
            f"{graph.path}: TensorRT {short(version)}{line} would not import it: {problems[0]}{more}; {fix}"
        )


def import_report(graph: GraphInfo, targets: tuple[str, ...]) -> list[tuple[str, str]]:
    """``(version, "ok" | "N problems: ...")`` for each of ``targets``: what --dry-run prints without --target-trt."""
    if graph.metadata.precision == INT8_CPU:
        return [(target, "CPU INT8 graph (UINT8 zero points): no TensorRT imports it") for target in targets]
    return [(target, summary(graph.import_problems(target))) for target in targets]


def make_plan(options: BuildOptions, graph: GraphInfo, version: Version, gpu: GpuInfo | None) -> EnginePlan:
    """Check every option and decide everything a build needs; raises DSRIRError naming the flag at fault."""
    check_importable(graph, version)
    calib = options.calib
    if calib is not None and not calib.is_file():
        raise DSRIRError(f"--calib {calib}: calibration cache not found")
    precision = decide_precision(version, options.precision, graph.kind, str(calib) if calib else None)
    if calib is not None:
        read_calibration_cache(calib)  # its format, before minutes of building
    _check_versions(options, version, gpu)
    _check_dla(options, precision, graph.kind)
    notes = list(precision.notes) + _check_plugin(options, graph, version)
    profile = make_profile(
        graph.input.name,
        graph.layout,
        graph.input.dims,
        graph.metadata.size_multiple,
        options.min_shape,
        options.opt_shape,
        options.max_shape,
    )
    if options.dla_core is not None and profile.min != profile.max:
        notes.append(
            "DLA takes static shapes only: layers with dynamic H/W fall back to the GPU; give equal "
            "--min/--opt/--max-shape for a DLA engine"
        )
    output = options.output or graph.path.with_suffix(".engine")
    if output.resolve() == graph.path.resolve():
        raise DSRIRError(f"--output {output}: would overwrite the ONNX file")
    timing = options.timing_cache or (default_timing_cache(version, gpu) if gpu else None)
    return EnginePlan(version, gpu, graph, options, precision, profile, output, timing, tuple(notes))


def dsrir_command(plan: EnginePlan) -> str:
    """The ``python -m export.build_engine`` command that rebuilds this engine (stored in the sidecar)."""
    options = plan.options
    args = ["python", "-m", "export.build_engine", "--onnx", str(plan.graph.path), "--precision", options.precision]
    if options.calib:
        args += ["--calib", str(options.calib)]
    if options.plugin_lib:
        args += ["--plugin-lib", str(options.plugin_lib)]
        if options.plugin_mode != "static":
            args += ["--plugin-mode", options.plugin_mode]
    for which in ("min", "opt", "max"):
        args += [f"--{which}-shape", format_shape(getattr(plan.profile, which))]
    if options.workspace_mib:
        args += ["--workspace", str(options.workspace_mib)]
    if options.optimization_level is not None:
        args += ["--builder-optimization-level", str(options.optimization_level)]
    if options.dla_core is not None:
        args += ["--dla-core", str(options.dla_core)]
    if options.version_compatible:
        args.append("--version-compatible")
    if options.hardware_compatibility != "none":
        args += ["--hardware-compatibility", options.hardware_compatibility]
    args += ["--output", str(plan.output)]
    return shlex.join(args)


def engine_sidecar(
    engine: bytes,
    seconds: float,
    tensorrt_version: str,
    gpu: GpuInfo,
    options: BuildOptions,
    profile: Profile,
    **facts: Any,
) -> EngineSidecar:
    """The sidecar of an engine just built, whichever frontend built it: the build (:meth:`EngineSidecar.for_build`),
    what the options and the profile record the same way for every frontend, and the frontend's own ``facts``."""
    return EngineSidecar.for_build(
        engine,
        seconds,
        tensorrt_version,
        gpu,
        precision=options.precision,
        profile={"input": profile.input_name, "layout": profile.layout, **profile.as_dict()},
        dla_core=options.dla_core,
        version_compatible=options.version_compatible,
        hardware_compatibility=options.hardware_compatibility,
        **facts,
    )
