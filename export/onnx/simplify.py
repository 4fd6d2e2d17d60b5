"""Graph simplification with onnxslim, kept only when it keeps parity.

The dynamo exporter already folds constants and removes dead code, so onnxslim often finds nothing left;
it still runs (shape-op folding, fusing) and its result replaces the graph only when ONNX Runtime gives
the same output at two sizes (one of them batch 2) as the unsimplified graph, so dynamic shapes survive too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from dsrir.graph.session import cpu_session
from export.onnx.parity import run_float

TOLERANCE = 1e-5


@dataclass(frozen=True)
class Simplified:
    model: onnx.ModelProto
    note: str  # one line for the summary


def simplify(model: onnx.ModelProto, shape: tuple[int, int, int, int], multiple: int) -> Simplified:
    """onnxslim's version of a float32-I/O ``model`` if it matches the original at ``shape`` and a second size."""
    try:
        import onnxslim  # type: ignore[import-untyped]
    except ImportError:
        return Simplified(model, "not simplified: onnxslim is not installed (pip install onnxslim)")
    try:
        slim = onnxslim.slim(_copy(model))
    except Exception as exc:  # onnxslim raises many types; the unsimplified graph is still good
        return Simplified(model, f"not simplified: onnxslim failed ({type(exc).__name__}: {str(exc)[:120]})")
    if not isinstance(slim, onnx.ModelProto):
        return Simplified(model, "not simplified: onnxslim returned no model")
    before, after = len(model.graph.node), len(slim.graph.node)
    try:
        difference = _max_difference(model, slim, shape, multiple)
    except ImportError as exc:  # plugin graphs run on CPU only with onnxruntime-extensions
        return Simplified(model, f"not simplified: cannot check the simplified graph ({exc})")
    except Exception as exc:  # the simplified graph does not even run: keep the original
        return Simplified(model, f"not simplified: onnxslim's graph fails to run ({type(exc).__name__})")
    if difference > TOLERANCE:
        return Simplified(model, f"not simplified: onnxslim's graph differs by {difference:.1e}, original kept")
    if after == before:
        return Simplified(slim, f"onnxslim: nothing to simplify ({after} nodes)")
    return Simplified(slim, f"onnxslim: {before} -> {after} nodes, same output")


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copied = onnx.ModelProto()
    copied.CopyFrom(model)
    return copied


def _max_difference(
    original: onnx.ModelProto, slim: onnx.ModelProto, shape: tuple[int, int, int, int], multiple: int
) -> float:
    rng = np.random.default_rng(1)
    n, c, h, w = shape
    sizes = [(n, c, h, w), (2, c, h + multiple, w + 2 * multiple)]
    sessions = [cpu_session(original), cpu_session(slim)]
    worst = 0.0
    for size in sizes:
        image = rng.random(size, dtype=np.float32)
        a, b = (run_float(sess, image, multiple) for sess in sessions)
        worst = max(worst, float(np.abs(a - b).max()))
    return worst
