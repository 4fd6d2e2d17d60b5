"""DSRIR to ONNX: ``python -m export.onnx`` (:mod:`export.onnx.build`) and the passes it runs."""
