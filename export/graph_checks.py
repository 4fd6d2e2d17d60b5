"""The checks every exported graph passes before it is written: ``onnx.checker`` and strict shape inference."""

from __future__ import annotations

import onnx


def check_graph(model: onnx.ModelProto) -> None:
    """Raise ``onnx.checker.ValidationError``/``InferenceError`` if the graph is malformed or its types clash.

    ``full_check`` runs the checker's own shape inference too; the explicit strict pass with data propagation
    also checks that the declared output shape follows from the input's (dynamic dims included).
    ``DSRIR_PatchAttention`` nodes have no ONNX schema (TensorRT owns them); the checker accepts them because
    their custom domain is in the model's ``opset_import``.
    """
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
