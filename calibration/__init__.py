"""INT8 calibration: calibration sets, activation-range calibrators, and the artefacts built from the ranges.

``python -m calibration`` turns an FP32 ONNX export and a calibration set into a ranges JSON, a TensorRT calibration
cache, a TensorRT-style Q/DQ ONNX and an ONNX Runtime CPU INT8 ONNX.
"""
