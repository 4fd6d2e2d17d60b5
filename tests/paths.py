"""Paths every test agrees on, wherever its file sits in the tests/ tree (which mirrors the packages).

Import these instead of counting ``Path(__file__).parents``: a test file that moves keeps working.
"""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"  # small reference files copied from the official release
TRT_FAKES = TESTS / "trt_fakes"  # fake tensorrt and pycuda modules (tests/trt_fakes/README.md)
WEIGHTS = REPO / "weights"
# The shipped edge weights (small and fast) and their ONNX export, which compute the same image.
SHIPPED_CHECKPOINT = WEIGHTS / "dsrir-xs-p50_all_in_one.safetensors"
SHIPPED_ONNX = WEIGHTS / "dsrir-xs-p50_all_in_one.onnx"
