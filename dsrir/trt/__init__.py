"""TensorRT contracts every stage shares, none of which needs TensorRT to be imported: version rules,
the ONNX parser's import rules, GPU facts, the calibration cache format, the engine sidecar and engine
loading."""
