"""export.onnx.simplify: onnxslim's graph replaces the export only when it runs and gives the same output."""

from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.onnx.simplify import simplify

pytest.importorskip("onnxslim", reason="the fallback is only reachable with onnxslim installed")

SHAPE = (1, 3, 16, 24)
MULTIPLE = 8


def tiny_graph(weight_scale: float = 1.0, redundant: bool = False) -> onnx.ModelProto:
    """A 1x1 convolution with dynamic N/H/W (and, when ``redundant``, an Identity onnxslim removes)."""
    weight = numpy_helper.from_array((np.eye(3, dtype=np.float32) * weight_scale).reshape(3, 3, 1, 1), name="weight")
    nodes = [helper.make_node("Conv", ["input", "weight"], ["conv" if redundant else "output"])]
    if redundant:
        nodes.append(helper.make_node("Identity", ["conv"], ["output"]))
    dims = ["N", 3, "H", "W"]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, dims)],
        initializer=[weight],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_simplified_graph_with_the_same_output_replaces_the_export() -> None:
    original = tiny_graph(redundant=True)
    result = simplify(original, SHAPE, MULTIPLE)
    assert result.model is not original and len(result.model.graph.node) < len(original.graph.node)
    assert result.note == "onnxslim: 2 -> 1 nodes, same output"


def test_a_simplified_graph_that_computes_something_else_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxslim

    monkeypatch.setattr(onnxslim, "slim", lambda _model: tiny_graph(weight_scale=2.0))
    original = tiny_graph()
    result = simplify(original, SHAPE, MULTIPLE)
    assert result.model is original
    assert result.note.startswith("not simplified: onnxslim's graph differs by") and "original kept" in result.note


@pytest.mark.parametrize(
    ("slim", "note"),
    [
        (lambda _model: (_ for _ in ()).throw(RuntimeError("shape inference")), "onnxslim failed (RuntimeError"),
        (lambda _model: None, "onnxslim returned no model"),
        (lambda _model: helper.make_model(helper.make_graph([], "empty", [], [])), "onnxslim's graph fails to run"),
    ],
    ids=["raises", "returns-nothing", "does-not-run"],
)
def test_onnxslim_failures_keep_the_export(monkeypatch: pytest.MonkeyPatch, slim: object, note: str) -> None:
    import onnxslim

    monkeypatch.setattr(onnxslim, "slim", slim)
    original = tiny_graph()
    result = simplify(original, SHAPE, MULTIPLE)
    assert result.model is original and note in result.note, result.note


def test_without_onnxslim_the_export_is_kept_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxslim", None)
    original = tiny_graph()
    result = simplify(original, SHAPE, MULTIPLE)
    assert result.model is original and "pip install onnxslim" in result.note
