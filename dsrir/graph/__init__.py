"""ONNX contracts every stage shares: the ``dsrir.*`` metadata, op names, graph checks and edits,
the INT8 numbers, and the one ONNX Runtime session factory (with the one CPU path for plugin graphs)."""
