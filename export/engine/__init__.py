"""ONNX to a TensorRT engine: the plan, the builder and its frontends, behind
``python -m export.build_engine``."""
