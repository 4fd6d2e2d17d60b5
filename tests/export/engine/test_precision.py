"""export.engine.precision: the version switch from (TensorRT version, requested precision, graph, cache) to
builder and network flags, and what it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from dsrir.errors import DSRIRError
from export.engine.precision import decide_precision
from tests.dsrir.trt.helpers import V86, V103, V111

SWITCH = [
    # version, requested, graph, calib, expected (strongly typed, builder flags, network flags) or error text
    (V86, "fp32", "fp32", None, (False, (), ("EXPLICIT_BATCH",))),
    (V86, "fp16", "fp32", None, (False, ("FP16",), ("EXPLICIT_BATCH",))),
    (V86, "fp16", "fp16", None, (False, ("FP16",), ("EXPLICIT_BATCH",))),
    (V86, "int8", "qdq", None, (False, ("INT8",), ("EXPLICIT_BATCH",))),
    (V86, "int8", "fp32", "c.cache", (False, ("INT8",), ("EXPLICIT_BATCH",))),
    (V86, "int8", "fp32", None, "needs a calibration cache: pass --calib"),
    (V86, "best", "fp32", None, (False, ("FP16",), ("EXPLICIT_BATCH",))),
    (V86, "best", "fp32", "c.cache", (False, ("FP16", "INT8"), ("EXPLICIT_BATCH",))),
    (V86, "best", "qdq", None, (False, ("FP16", "INT8"), ("EXPLICIT_BATCH",))),
    (V103, "fp32", "fp32", None, (False, (), ())),
    (V103, "fp16", "fp32", None, (False, ("FP16",), ())),
    (V103, "fp16", "fp16", None, (True, (), ("STRONGLY_TYPED",))),
    (V103, "int8", "qdq", None, (True, (), ("STRONGLY_TYPED",))),
    (V103, "int8", "fp32", "c.cache", (False, ("INT8",), ())),
    (V103, "int8", "fp32", None, "needs a calibration cache: pass --calib CACHE from the calibration stage"),
    (V103, "best", "qdq", None, (False, ("FP16", "INT8"), ())),
    (V103, "best", "fp16", None, (True, (), ("STRONGLY_TYPED",))),
    (V103, "fp32", "qdq", None, "the graph is INT8 (Q/DQ): use --precision int8 or best"),
    (V103, "fp16", "qdq", None, "use --precision int8 or best"),
    (V103, "int8", "fp16", None, "INT8 needs the calibration stage's Q/DQ ONNX"),
    (V111, "fp32", "fp32", None, (True, (), ())),
    (V111, "fp16", "fp16", None, (True, (), ())),
    (V111, "int8", "qdq", None, (True, (), ())),
    (V111, "best", "fp32", None, (True, (), ())),
    (V111, "best", "qdq", None, (True, (), ())),
    (
        V111,
        "fp16",
        "fp32",
        None,
        "TensorRT 11 has no FP16 flag: export an FP16 graph with python -m export.onnx --precision fp16",
    ),
    (
        V111,
        "int8",
        "fp32",
        None,
        "TensorRT 11.1 removed INT8 calibrators: build from the calibration stage's Q/DQ ONNX",
    ),
    (V111, "int8", "fp32", "c.cache", "TensorRT 11.1 removed INT8 calibrators, so --calib cannot be used"),
    (V103, "fp16", "fp32", "c.cache", "use it with --precision int8 or best"),
    (V103, "int8", "qdq", "c.cache", "its scales are already in the graph; drop --calib"),
]


@pytest.mark.parametrize(("version", "requested", "graph", "calib", "expected"), SWITCH)
def test_version_switch(version: tuple[int, ...], requested: str, graph: str, calib: str | None, expected: Any) -> None:
    if isinstance(expected, str):
        with pytest.raises(DSRIRError, match=None) as info:
            decide_precision(version, requested, graph, calib)
        assert expected in str(info.value) and "\n" not in str(info.value)
        return
    plan = decide_precision(version, requested, graph, calib)
    assert (plan.strongly_typed, plan.builder_flags, plan.network_flags) == expected
    assert plan.calibration_cache == calib


def test_switch_notes_deprecations_and_skipped_int8() -> None:
    assert "deprecated from 10.12" in decide_precision(V103, "fp16", "fp32").notes[0]
    assert "deprecated from 10.1" in decide_precision(V103, "int8", "fp32", "c").notes[0]
    assert "INT8 left off" in decide_precision(V86, "best", "fp32").notes[0]
    assert decide_precision(V86, "fp16", "fp32").notes == ()
