"""export.engine.builder and the engine loader (dsrir.trt.engine): the thin TensorRT layer against a recording fake
module (call order and arguments; mypy checks the real API in tests/test_mypy_tensorrt.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import onnx
import pytest

from dsrir.errors import DSRIRError
from dsrir.trt import engine as engine_io
from export import build_engine
from tests.dsrir.trt.helpers import CALIB, ORIN, XAVIER
from tests.export.engine.helpers import fake_tensorrt, make_onnx, run_cli


def test_fake_parser_refuses_what_its_version_cannot_import(tmp_path: Path, with_fake_trt: Any) -> None:
    """The builder's parse step surfaces the parser's first error in one line (a graph made for 10.x on 8.6)."""
    from types import SimpleNamespace

    from export.engine.builder import _parse

    graph = tmp_path / "opset18.onnx"
    make_onnx(graph)
    onnx_model = onnx.load(str(graph))
    onnx_model.opset_import[0].version = 18
    onnx.save(onnx_model, str(graph))
    with_fake_trt(version="8.6.1")
    plan = SimpleNamespace(graph=SimpleNamespace(path=graph))
    with pytest.raises(DSRIRError, match="TensorRT's ONNX parser failed"):
        _parse(plan, "network", None)  # type: ignore[arg-type]
    with_fake_trt(version="10.3.0")
    _parse(plan, "network", None)  # type: ignore[arg-type]


def test_build_and_load_through_the_thin_layer(
    work: Path, with_fake_trt: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    trt = with_fake_trt()
    monkeypatch.setattr(build_engine, "query_gpu", lambda: ORIN)
    monkeypatch.setattr(engine_io, "query_gpu", lambda: ORIN)
    make_onnx(Path("dsrir.onnx"), "fp16")
    code, out, err = run_cli(["--onnx", "dsrir.onnx", "--workspace", "1024", "--output", "dsrir.engine"], capsys)
    assert code == 0, err
    assert ("network", 1 << 1) in trt.calls  # STRONGLY_TYPED by name, whatever its value
    assert ("pool", 0, 1024 << 20) in trt.calls
    assert ("shape", "input", [1, 3, 256, 256], [1, 3, 720, 1280], [1, 3, 1080, 1920]) in trt.calls
    assert Path("dsrir.engine").read_bytes() == b"serialized-engine"
    timing = work / "xdg" / "dsrir" / "timing" / "trt10.3_orin_sm87.cache"
    assert timing.read_bytes() == b"timing-cache" and f"timing cache    {timing}" in out
    meta = json.loads(Path("dsrir.engine.json").read_text())
    assert meta["tensorrt_version"] == "10.3.0.30" and meta["compute_capability"] == "8.7"
    assert meta["strongly_typed"] and meta["profile"]["opt"] == [1, 3, 720, 1280] and meta["onnx_sha256"]
    assert meta["trtexec_command"].startswith("trtexec --onnx=dsrir.onnx") and meta["io"] == "float"

    engine, loaded = engine_io.load_engine("dsrir.engine")
    assert loaded is not None and loaded.preset == "dsrir-xs" and engine_io.io_tensors(engine)["output"] == "output"

    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(version="8.6.2.3"))
    monkeypatch.setattr(engine_io, "query_gpu", lambda: XAVIER)
    with pytest.raises(DSRIRError) as info:
        engine_io.load_engine("dsrir.engine")
    assert str(info.value).startswith(
        "engine built with TensorRT 10.3 for sm_87; this is 8.6 on sm_72: rebuild with python -m export.build_engine "
        "--onnx dsrir.onnx --precision fp16"
    )


def test_thin_layer_plugin_dla_and_calibrator(
    work: Path, with_fake_trt: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(build_engine, "query_gpu", lambda: ORIN)
    make_onnx(Path("p.onnx"), plugin=True)
    Path("lib.so").write_bytes(b"")
    with_fake_trt(creator=False)
    code, _, err = run_cli(["--onnx", "p.onnx", "--plugin-lib", "lib.so", "--plugin-mode", "dynamic"], capsys)
    assert code == 2 and 'no plugin creator DSRIR_PatchAttention version "1" namespace ""' in err
    trt = with_fake_trt(dla_cores=0)
    code, _, err = run_cli(
        ["--onnx", "p.onnx", "--plugin-lib", "lib.so", "--plugin-mode", "dynamic", "--dla-core", "0"], capsys
    )
    assert code == 2 and err == "error: --dla-core 0: this platform has no DLA (Orin and Xavier have 2)\n"
    assert ("load_library", str(Path("lib.so").resolve())) in trt.calls
    assert ("get_creator", "DSRIR_PatchAttention", "1", "") in trt.calls

    make_onnx(Path("f.onnx"))
    Path("cal.cache").write_text(CALIB)
    trt = with_fake_trt(dla_cores=2)
    code, _, err = run_cli(
        ["--onnx", "f.onnx", "--precision", "best", "--calib", "cal.cache", "--dla-core", "1"], capsys
    )
    assert code == 0, err
    flags = [c[1] for c in trt.calls if c[0] == "flag"]
    assert flags == [trt.BuilderFlag.FP16, trt.BuilderFlag.INT8, trt.BuilderFlag.GPU_FALLBACK]
    calibrator = next(c[2] for c in trt.calls if c[:2] == ("config", "int8_calibrator"))
    assert calibrator.read_calibration_cache() == CALIB.encode() and calibrator.get_batch(["input"]) == []
    assert ("config", "DLA_core", 1) in trt.calls and ("config", "default_device_type", trt.DeviceType.DLA) in trt.calls
    assert ("network", 0) in trt.calls  # 10.x without strong typing: no creation flags
