"""Operators shared by the model, the exporters and the plugin tests: the PyTorch reference and its CUDA kernel
(:mod:`dsrir.ops.patch_attention`), NumPy and ONNX Runtime CPU versions for graphs that run without PyTorch."""
