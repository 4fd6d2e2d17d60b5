"""Fixtures of the export tests: a fresh recording fake of the tensorrt module."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from tests.export.engine.helpers import fake_tensorrt


@pytest.fixture
def with_fake_trt(monkeypatch: pytest.MonkeyPatch) -> Any:
    def install(**kwargs: Any) -> types.ModuleType:
        """A fresh TensorRT, as in a new process: no plugin library loaded yet (dsrir.trt.plugin loads each once)."""
        trt = fake_tensorrt(**kwargs)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        monkeypatch.setattr("dsrir.trt.plugin._loaded", {})
        monkeypatch.delitem(sys.modules, "export.engine.calibrator", raising=False)
        return trt

    return install
