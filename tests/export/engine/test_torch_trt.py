"""export.engine.torch_trt: the Torch-TensorRT frontend's option checks, profile and sidecar."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest

from dsrir.errors import DSRIRError
from dsrir.trt.compat import incompatibility
from dsrir.trt.gpu import GpuInfo
from export.engine.plan import BuildOptions
from export.engine.torch_trt import check_options, torch_profile
from tests.dsrir.trt.helpers import ORIN, V103
from tests.export.engine.helpers import run_cli


def test_torch_tensorrt_frontend_validates_its_options(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = Path("w.pth")
    for options, message in (
        (BuildOptions(), "builds from --checkpoint PATH"),
        (BuildOptions(precision="int8"), "only fp32 and fp16"),
        (BuildOptions(plugin_lib=Path("lib.so")), "--plugin-lib with --frontend torch-tensorrt"),
        (BuildOptions(dla_core=0), "--dla-core with --frontend torch-tensorrt"),
        (BuildOptions(onnx=Path("m.onnx")), "--onnx with --frontend torch-tensorrt"),
    ):
        with pytest.raises(DSRIRError, match=message):
            check_options(options, None if "checkpoint PATH" in message else ckpt)
    with pytest.raises(DSRIRError, match="batch size must be the same"):
        torch_profile(BuildOptions(max_shape="2x3x512x512"), 8)
    code, _, err = run_cli(["--frontend", "torch-tensorrt", "--checkpoint", "w.pth"], capsys)
    assert code == 2 and ("torch-tensorrt is not installed: pip install torch-tensorrt" in err or "TensorRT" in err)
    code, _, err = run_cli(["--onnx", "m.onnx", "--checkpoint", "w.pth"], capsys)
    assert code == 2 and "--checkpoint is for --frontend torch-tensorrt" in err


def test_torch_tensorrt_sidecar_names_the_engine_io(work: Path, with_fake_trt: Any) -> None:
    from export.engine.torch_trt import torch_sidecar

    with_fake_trt()
    weights = types.SimpleNamespace(config=types.SimpleNamespace(size_multiple=8), preset="dsrir-xs")
    options = BuildOptions(precision="fp16", hardware_compatibility="ampere+")
    profile = torch_profile(options, 8)
    meta = torch_sidecar(
        b"serialized-engine", weights, Path("w.pth"), options, profile, Path("w.engine"), 1.0, "10.3.0.30", ORIN
    )
    assert (
        meta.inputs == [{"name": "input", "dtype": "float16", "layout": "NCHW"}] and meta.frontend == "torch-tensorrt"
    )
    assert meta.rebuild_command == (
        "python -m export.build_engine --frontend torch-tensorrt --checkpoint w.pth --precision fp16 "
        "--min-shape 1x3x256x256 --opt-shape 1x3x720x1280 --max-shape 1x3x1080x1920 --hardware-compatibility ampere+ "
        "--output w.engine"
    )
    assert incompatibility(meta, V103, GpuInfo("RTX 4090", (8, 9))) is None
