"""dsrir.trt.calib_cache: the EntropyCalibration2 cache format TensorRT reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsrir.errors import DSRIRError
from dsrir.trt.calib_cache import read_calibration_cache
from tests.dsrir.trt.helpers import CALIB


def test_calibration_cache_format(tmp_path: Path) -> None:
    cache = tmp_path / "c.cache"
    cache.write_text(CALIB)
    assert (read_calibration_cache(cache).tensors, read_calibration_cache(cache).header_version) == (2, "8601")
    for text, message in (
        ("TRT-8601-MinMaxCalibration\n", "not an EntropyCalibration2 cache"),
        ("TRT-8601-EntropyCalibration2\ninput: zz\n", "malformed line 'input: zz'"),
        ("TRT-8601-EntropyCalibration2\n", "holds no tensor scales"),
    ):
        cache.write_text(text)
        with pytest.raises(DSRIRError, match=message):
            read_calibration_cache(cache)
