"""The version switch: how a requested precision is obtained from a given graph with a given TensorRT.

| TensorRT | fp32 graph | fp16 graph | Q/DQ graph |
|---|---|---|---|
| 8.5/8.6 | fp16: FP16 flag; int8: INT8 flag + cache | FP16 flag | int8: INT8 flag; best: +FP16 |
| 10.x | fp16: FP16 flag; int8: INT8 flag + cache | strongly typed | int8: strongly typed; best: INT8+FP16 |
| 11.x | fp32 only (no FP16/INT8 flags, no calibrators) | strongly typed | strongly typed |

("cache": an INT8 calibration cache, ``--calib``; the FP16 flag is deprecated from 10.12 and calibrators from
10.1.) ``best`` adds INT8 only where the graph or a cache gives scales: trtexec's ``--best`` would guess them.

A request the installed TensorRT cannot honour is a one-line DSRIRError that says what to do instead.
Flags are returned by name (``FP16``, ``INT8``, ``STRONGLY_TYPED``): enum values differ between majors.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsrir.errors import DSRIRError
from dsrir.trt.version import Version, short, strongly_typed_only

PRECISIONS = ("fp32", "fp16", "int8", "best")
GRAPH_KINDS = ("fp32", "fp16", "qdq")
EXPORT_FP16 = "python -m export.onnx --precision fp16"
EXPORT_QDQ = "the calibration stage's Q/DQ ONNX"


@dataclass(frozen=True)
class PrecisionPlan:
    strongly_typed: bool
    builder_flags: tuple[str, ...]  # BuilderFlag names
    network_flags: tuple[str, ...]  # NetworkDefinitionCreationFlag names
    calibration_cache: str | None  # served by the calibrator bridge (TensorRT <= 10)
    summary: str  # one line for the plan and the sidecar
    notes: tuple[str, ...] = ()


def _network_flags(version: Version, strongly_typed: bool) -> tuple[str, ...]:
    if version[0] < 10:
        return ("EXPLICIT_BATCH",)  # required for dynamic shapes before 10.0, gone in 11
    if version[0] == 10 and strongly_typed:
        return ("STRONGLY_TYPED",)
    return ()  # 11.x: always strongly typed (the flag is deprecated and ignored)


def _plan(
    version: Version,
    strongly_typed: bool,
    flags: tuple[str, ...],
    calib: str | None,
    summary: str,
    notes: tuple[str, ...] = (),
) -> PrecisionPlan:
    return PrecisionPlan(strongly_typed, flags, _network_flags(version, strongly_typed), calib, summary, notes)


def decide_precision(version: Version, requested: str, graph_kind: str, calib: str | None = None) -> PrecisionPlan:
    """Pure: ``version`` (major, minor, ...), ``requested`` in PRECISIONS, ``graph_kind`` in GRAPH_KINDS."""
    if requested not in PRECISIONS or graph_kind not in GRAPH_KINDS:
        raise ValueError(f"precision {requested!r} / graph kind {graph_kind!r}")
    major, trt, typed_only = version[0], f"TensorRT {short(version)}", strongly_typed_only(version)
    if calib is not None:
        if typed_only:
            raise DSRIRError(f"{trt} removed INT8 calibrators, so --calib cannot be used: build from {EXPORT_QDQ}")
        if requested not in ("int8", "best"):
            raise DSRIRError("--calib is an INT8 calibration cache: use it with --precision int8 or best")
        if graph_kind == "qdq":
            raise DSRIRError("--calib with a Q/DQ graph: its scales are already in the graph; drop --calib")
        if graph_kind == "fp16":
            raise DSRIRError("--calib needs the FP32 graph (calibration scales refer to its tensors), not the FP16 one")

    if requested == "fp32":
        if graph_kind != "fp32":
            what = "INT8 (Q/DQ)" if graph_kind == "qdq" else "FP16"
            better = "int8 or best" if graph_kind == "qdq" else "fp16"
            raise DSRIRError(f"the graph is {what}: use --precision {better}, or export an FP32 graph for fp32")
        return _plan(version, typed_only, (), None, "FP32")

    if requested == "fp16":
        if graph_kind == "qdq":
            raise DSRIRError("the graph is INT8 (Q/DQ): use --precision int8 or best, or build from the FP16 graph")
        if graph_kind == "fp16":
            if major >= 10:
                return _plan(version, True, (), None, "FP16 from the graph's types (strongly typed)")
            return _plan(version, False, ("FP16",), None, "FP16 (FP16 graph, FP16 builder flag)")
        if typed_only:
            raise DSRIRError(f"TensorRT {major} has no FP16 flag: export an FP16 graph with {EXPORT_FP16}")
        notes: tuple[str, ...] = (
            f"{trt}: the FP16 flag is deprecated from 10.12; an FP16 graph ({EXPORT_FP16}) is the future path",
        )
        return _plan(version, False, ("FP16",), None, "FP16 (FP16 builder flag)", notes if major == 10 else ())

    if requested == "int8":
        if graph_kind == "qdq":
            if major >= 10:
                return _plan(version, True, (), None, "INT8 via explicit quantization (Q/DQ, strongly typed)")
            return _plan(version, False, ("INT8",), None, "INT8 via explicit quantization (Q/DQ, INT8 flag)")
        if graph_kind == "fp16":
            raise DSRIRError(f"INT8 needs {EXPORT_QDQ}, not the FP16 graph")
        if typed_only:
            raise DSRIRError(f"{trt} removed INT8 calibrators: build from {EXPORT_QDQ}")
        if calib is None:
            raise DSRIRError(
                f"INT8 from an FP32 graph needs a calibration cache: pass --calib CACHE from the calibration stage, "
                f"or build from {EXPORT_QDQ}"
            )
        notes = (
            (f"{trt}: implicit INT8 calibration is deprecated from 10.1; prefer the Q/DQ graph",) if major == 10 else ()
        )
        return _plan(version, False, ("INT8",), calib, "INT8 via calibration cache (implicit)", notes)

    # best: the fastest precisions the graph allows without guessing INT8 scales
    if typed_only:
        return _plan(version, True, (), None, f"as typed by the graph ({graph_kind}, strongly typed)")
    if graph_kind == "fp16":
        if major >= 10:
            return _plan(version, True, (), None, "FP16 from the graph's types (strongly typed)")
        return _plan(version, False, ("FP16",), None, "FP16 (FP16 graph, FP16 builder flag)")
    if graph_kind == "qdq":
        return _plan(version, False, ("FP16", "INT8"), None, "INT8 via Q/DQ, other layers FP16 (INT8+FP16 flags)")
    if calib is not None:
        return _plan(version, False, ("FP16", "INT8"), calib, "INT8 via calibration cache, other layers FP16")
    notes = ("INT8 left off: the graph has no Q/DQ nodes and no --calib was given (trtexec --best would guess scales)",)
    return _plan(version, False, ("FP16",), None, "FP16 (FP16 builder flag)", notes)
