"""The calibrator bridge: hands TensorRT (8.x, 10.x) an INT8 calibration cache and nothing else.

TensorRT's implicit INT8 path wants an ``IInt8Calibrator``; with a cache, it reads the scales and never
asks for a batch. The calibration itself happens elsewhere (the calibration stage, on CPU or GPU), so
this class serves the file, returns no batches and never overwrites it. TensorRT 11 removed calibrators:
import this module only for 8.x/10.x builds, after ``dsrir.trt.version.load_tensorrt`` found TensorRT.
"""

from __future__ import annotations

from pathlib import Path

import tensorrt as trt


class CacheCalibrator(trt.IInt8EntropyCalibrator2):
    """Serves ``cache`` (an EntropyCalibration2 cache); has no calibration data of its own."""

    def __init__(self, cache: Path) -> None:
        trt.IInt8EntropyCalibrator2.__init__(self)  # pybind11 trampolines need the explicit base __init__
        self.cache = cache
        self._data = cache.read_bytes()

    def get_batch_size(self) -> int:
        return 1

    def get_batch(self, names: list[str]) -> list[int]:
        return []  # no batches: TensorRT uses the cache

    def read_calibration_cache(self) -> bytes:
        return self._data

    def write_calibration_cache(self, cache: object) -> None:
        """Keep the given file as it is: it is the calibration stage's output, not ours to rewrite."""
