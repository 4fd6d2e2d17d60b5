"""Export stage: DSRIR to ONNX (``python -m export.onnx``) and ONNX to TensorRT engines
(``python -m export.build_engine``)."""
