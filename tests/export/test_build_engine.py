"""python -m export.build_engine (export/build_engine.py) without TensorRT: dry runs and their plans, the ONNX
import check for every targeted TensorRT, refusals as one error line, --help. The modules behind it are tested in
tests/export/engine/ and tests/dsrir/trt/.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dsrir.trt.import_rules import TARGETS
from export import build_engine
from tests.dsrir.trt.helpers import CALIB, ORIN
from tests.export.engine.helpers import make_onnx, run_cli
from tests.paths import REPO


def test_dry_run_int8_needs_qdq_or_a_calibration_cache(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_onnx(Path("fp32.onnx"))
    make_onnx(Path("int8.onnx"), "qdq")
    code, out, err = run_cli(["--precision", "int8", "--dry-run", "--onnx", "fp32.onnx"], capsys)
    assert code == 2 and out.startswith("ONNX import check") and "engine plan" not in out
    assert err.startswith("error: INT8 from an FP32 graph needs a calibration cache: pass --calib CACHE")
    assert err.count("\n") == 1
    code, out, err = run_cli(["--precision", "int8", "--dry-run", "--onnx", "int8.onnx"], capsys)
    assert code == 0 and err == ""
    assert "TensorRT        10.3 (target; not installed here)" in out
    assert "int8: INT8 via explicit quantization (Q/DQ, strongly typed)" in out
    assert "profile         min 1x3x256x256  opt 1x3x720x1280  max 1x3x1080x1920" in out
    assert out.rstrip().endswith("--maxShapes=input:1x3x1080x1920 --stronglyTyped")


def test_dry_run_with_a_calibration_cache_on_86(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_onnx(Path("fp32.onnx"))
    Path("cal.cache").write_text(CALIB)
    args = ["--precision", "int8", "--calib", "cal.cache", "--dry-run", "--onnx", "fp32.onnx", "--target-trt", "8.6"]
    code, out, _ = run_cli(args, capsys)
    assert code == 0
    assert "builder flags   INT8" in out and "calibration     cal.cache" in out and "--int8 --calib=cal.cache" in out


def test_trt11_fp16_flag_request_is_refused(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_onnx(Path("fp32.onnx"))
    code, _, err = run_cli(["--precision", "fp16", "--dry-run", "--onnx", "fp32.onnx", "--target-trt", "11.1"], capsys)
    assert code == 2
    assert (
        err == "error: TensorRT 11 has no FP16 flag: export an FP16 graph with python -m export.onnx --precision fp16\n"
    )


# ---- the ONNX import check ---------------------------------------------------------------------------


def import_rows(out: str) -> dict[str, str]:
    """The per-target rows a dry run without --target-trt prints before the plan: version -> result."""
    lines = out.split("engine plan:")[0].splitlines()
    assert lines[0] == "ONNX import check (dsrir/trt/import_rules.py):"
    rows = [line.split(None, 2)[1:] for line in lines[1:]]
    return {version: result for version, result in rows}


def test_dry_run_reports_the_import_check_for_every_target(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_onnx(Path("new.onnx"))  # opset 17, as export.onnx --target-trt 8.x writes
    make_onnx(Path("old.onnx"), opset=18)
    code, out, err = run_cli(["--dry-run", "--onnx", "new.onnx"], capsys)
    assert code == 0, err
    assert import_rows(out) == dict.fromkeys(TARGETS, "ok")
    assert "ONNX import     ok for 10.3 (rules: onnx/onnx-tensorrt 96e7811 (branch 10.1-GA" in out
    code, out, err = run_cli(["--dry-run", "--onnx", "old.onnx"], capsys)
    assert code == 0, err  # the plan's TensorRT (10.3 by default) parses opset 18
    rows = import_rows(out)
    for old in ("8.5", "8.6"):
        assert rows[old] == f"1 problem: the model: opset 18: TensorRT {old}'s parser implements opset 17 at most"
    assert rows["10.3"] == rows["10.16"] == rows["11.1"] == "ok"


def test_a_graph_the_target_cannot_import_is_one_line(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_onnx(Path("old.onnx"), opset=18)
    code, out, err = run_cli(["--dry-run", "--onnx", "old.onnx", "--target-trt", "8.6"], capsys)
    assert code == 2 and out == ""
    assert err == (
        "error: old.onnx: TensorRT 8.6 would not import it: the model: opset 18: TensorRT 8.6's parser implements "
        "opset 17 at most; re-export with python -m export.onnx --target-trt 8.6\n"
    )
    code, out, err = run_cli(["--dry-run", "--onnx", "old.onnx", "--target-trt", "10.3"], capsys)
    assert code == 0 and "ONNX import     ok for 10.3" in out and "ONNX import check" not in out


def test_the_cpu_int8_graph_is_refused_for_every_tensorrt(
    work: Path, with_fake_trt: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_onnx(Path("cpu.onnx"), "cpu_int8")
    refusal = (
        "error: cpu.onnx is the CPU INT8 graph (dsrir.precision int8-cpu): its UINT8 zero points import into no "
        "TensorRT version; build from the FP32/FP16 export or calibration's model_qdq.onnx\n"
    )
    for target in TARGETS:
        args = ["--precision", "int8", "--dry-run", "--onnx", "cpu.onnx", "--target-trt", target]
        assert run_cli(args, capsys) == (2, "", refusal)
    code, out, err = run_cli(["--precision", "int8", "--dry-run", "--onnx", "cpu.onnx"], capsys)
    assert (code, err) == (2, refusal)
    assert import_rows(out) == dict.fromkeys(TARGETS, "CPU INT8 graph (UINT8 zero points): no TensorRT imports it")
    trt = with_fake_trt()
    monkeypatch.setattr(build_engine, "query_gpu", lambda: ORIN)
    assert run_cli(["--precision", "int8", "--onnx", "cpu.onnx"], capsys) == (2, "", refusal)
    assert not [call for call in trt.calls if call[0] in ("network", "parse")]  # refused before TensorRT saw it


def test_build_without_tensorrt_says_how_to_install(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_onnx(Path("m.onnx"))
    code, out, err = run_cli(["--onnx", "m.onnx"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: TensorRT is not installed: on Jetson it comes with JetPack (sudo apt install")
    assert "pip install tensorrt" in err and err.count("\n") == 1


def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_engine.main(["--help"])
    out = capsys.readouterr().out
    assert "(default: fp16)" in out and "1x3x720x1280, 720p video" in out and "(default: None)" not in out


def test_dry_run_as_a_module(work: Path) -> None:
    make_onnx(Path("int8.onnx"), "qdq")
    result = subprocess.run(
        [sys.executable, "-m", "export.build_engine", "--precision", "int8", "--dry-run", "--onnx", "int8.onnx"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "trtexec equivalent:" in result.stdout
