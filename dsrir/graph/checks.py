"""The checks every exported graph passes before it is written: ``onnx.checker``, strict shape inference, and the
ONNX import rules of the TensorRT version it is made for (:mod:`dsrir.trt.import_rules`)."""

from __future__ import annotations

import onnx

from dsrir.graph.metadata import PREFIX
from dsrir.trt.import_rules import require_importable
from dsrir.trt.version import Version

TARGET_KEY = PREFIX + "target_trt"  # metadata_props entry export.onnx writes: the TensorRT version checked for


def check_graph(model: onnx.ModelProto, target: Version | str | None = None) -> None:
    """Raise ``onnx.checker.ValidationError``/``InferenceError`` if the graph is malformed or its types clash, and
    a one-line ``DSRIRError`` if TensorRT ``target`` (default: the version the graph records, if any) would not
    import it.

    ``full_check`` runs the checker's own shape inference too; the explicit strict pass with data propagation
    also checks that the declared output shape follows from the input's (dynamic dims included).
    ``DSRIR_PatchAttention`` nodes have no ONNX schema (TensorRT owns them); the checker accepts them because
    their custom domain is in the model's ``opset_import``. Graphs derived from an export (FP16, uint8 I/O, Q/DQ)
    keep its metadata, so they are checked for the same TensorRT.
    """
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    wanted = target if target is not None else recorded_target(model)
    if wanted:
        require_importable(model, wanted, "the graph")


def recorded_target(model: onnx.ModelProto) -> str | None:
    """The TensorRT version ``export.onnx`` checked the graph for (``dsrir.target_trt``), or None."""
    return next((p.value for p in model.metadata_props if p.key == TARGET_KEY), None)
