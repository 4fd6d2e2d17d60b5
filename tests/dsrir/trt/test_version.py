"""dsrir.trt.version: which TensorRT a build targets (--target-trt against the installed one)."""

from __future__ import annotations

import pytest

from dsrir.errors import DSRIRError
from dsrir.trt.version import parse_version, resolve_target
from tests.dsrir.trt.helpers import V103


def test_target_version_resolution() -> None:
    assert resolve_target(None, None, dry_run=True) == (10, 3)
    assert resolve_target(None, "8.6", dry_run=True) == (8, 6)
    assert resolve_target(V103, None, dry_run=False) == V103
    assert resolve_target(V103, "11.1", dry_run=True) == (11, 1)
    with pytest.raises(DSRIRError, match="--target-trt 8.6 but TensorRT 10.3 is installed"):
        resolve_target(V103, "8.6", dry_run=False)
    with pytest.raises(DSRIRError, match="TensorRT 8.4 is too old"):
        resolve_target(None, "8.4", dry_run=True)
    with pytest.raises(DSRIRError, match="expected a TensorRT version"):
        parse_version("ten", "--target-trt")
