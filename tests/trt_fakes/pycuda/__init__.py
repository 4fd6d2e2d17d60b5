"""Fake pycuda (tests/trt_fakes/README.md): enforces per-thread CUDA contexts."""
