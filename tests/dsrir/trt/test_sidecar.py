"""dsrir.trt.sidecar and the loader's checks of it (dsrir.trt.engine): round trip, foreign files, plugin to load."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsrir.errors import DSRIRError
from dsrir.trt import engine as engine_io
from dsrir.trt.sidecar import read_sidecar, write_sidecar
from tests.dsrir.trt.helpers import ORIN, V103, sidecar


def test_sidecar_round_trip_and_checks(work: Path) -> None:
    write_sidecar("e.engine.json", sidecar(engine_sha256="0" * 64, extra={"mode": "all_in_one"}))
    loaded = read_sidecar("e.engine.json")
    assert loaded == sidecar(engine_sha256="0" * 64, extra={"mode": "all_in_one"})
    assert read_sidecar("missing.json") is None
    Path("bad.json").write_text("[1]")
    with pytest.raises(DSRIRError, match="not a JSON object"):
        read_sidecar("bad.json")
    Path("foreign.json").write_text('{"name": "x"}')
    with pytest.raises(DSRIRError, match="lacks tensorrt_version, compute_capability, gpu_name"):
        read_sidecar("foreign.json")
    with pytest.raises(DSRIRError, match="describes another engine"):
        engine_io.check_sidecar(Path("e.engine"), loaded, V103, ORIN, b"engine")
    assert "no sidecar" in engine_io.check_sidecar(Path("e.engine"), None, V103, ORIN)[0]
    assert engine_io.plugin_to_load(None, sidecar(plugin_library="lib.so", plugin_mode="dynamic")) == (
        Path("lib.so"),
        "dynamic",
    )
    assert engine_io.plugin_to_load(Path("mine.so"), None) == (Path("mine.so"), "static")
    serialized = sidecar(plugin_library="lib.so", plugin_mode="dynamic", version_compatible=True)
    assert engine_io.plugin_to_load(None, serialized) == (None, "dynamic")
