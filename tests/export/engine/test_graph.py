"""export.engine.graph: the ONNX side of the plan (graph kind, input, layout, plugin nodes) and one-line problems."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from dsrir.errors import DSRIRError
from export.engine.graph import inspect_onnx
from tests.export.engine.helpers import make_onnx


def test_graph_inspection(work: Path) -> None:
    qdq = inspect_onnx(make_onnx(work / "q.onnx", "qdq"))
    assert (qdq.kind, qdq.input.name, qdq.layout, qdq.plugin_nodes) == ("qdq", "input", "NCHW", 0)
    frames = inspect_onnx(make_onnx(work / "u.onnx", "fp16", io="uint8", plugin=True))
    assert (frames.kind, frames.input.name, frames.input.dtype, frames.layout, frames.plugin_nodes) == (
        "fp16",
        "frames",
        "uint8",
        "NHWC",
        1,
    )
    assert inspect_onnx(make_onnx(work / "f.onnx")).kind == "fp32"


def test_graph_problems_are_one_line(work: Path) -> None:
    (work / "junk.onnx").write_bytes(b"not a model")
    bare = make_onnx(work / "bare.onnx")
    model = onnx.load(str(bare))
    del model.metadata_props[:]
    onnx.save(model, str(bare))
    for path, message in (
        (work / "missing.onnx", "ONNX file not found"),
        (work / "junk.onnx", "not a valid ONNX model"),
        (bare, "ONNX metadata lacks dsrir.preset: not exported by export.onnx (export it with python -m export.onnx)"),
    ):
        with pytest.raises(DSRIRError, match=None) as info:
            inspect_onnx(path)
        assert message in str(info.value) and "\n" not in str(info.value)
