"""The runtime without PyTorch: a Jetson image may have onnxruntime and OpenCV only.

A subprocess makes ``import torch`` fail (``sys.modules['torch'] = None``) and then runs ``python -m runtime.video``
end to end with the ONNX Runtime backend on a hand-built graph that carries the dsrir metadata.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from dsrir.graph.metadata import ExportMetadata, write_metadata
from dsrir.graph.ops import PLUGIN_DOMAIN, PLUGIN_NAMESPACE, PLUGIN_OP, PLUGIN_VERSION
from tests.paths import REPO

NO_TORCH = "import sys; sys.modules['torch'] = None; "


def identity_onnx(path: Path) -> Path:
    """``output = input`` (as Mul by 1, N x 3 x H x W float) with the metadata an export writes."""
    shape = ["N", 3, "H", "W"]
    graph = helper.make_graph(
        [helper.make_node("Mul", ["input", "one"], ["output"])],
        "identity",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    write_metadata(model, ExportMetadata("dsrir-xs", "noise", "decomposed", "fp32", "float", 8, "0-1", "test"))
    onnx.save(model, str(path))
    return path


def plugin_onnx(path: Path) -> Path:
    """One ``DSRIR_PatchAttention`` node (``output = input * A + input``), the plugin flavour's form and metadata."""
    shape = ["N", 3, "H", "W"]
    rng = np.random.default_rng(0)
    weights = {"W1": (2, 3, 1, 1), "b1": (2,), "W2": (3, 2, 1, 1), "b2": (3,)}
    initializers = [
        helper.make_tensor(name, TensorProto.FLOAT, dims, rng.standard_normal(dims).astype(np.float32).ravel())
        for name, dims in weights.items()
    ]
    node = helper.make_node(
        PLUGIN_OP,
        ["input", *weights, "input"],
        ["output"],
        domain=PLUGIN_DOMAIN,
        grid_h=2,
        grid_w=2,
        plugin_version=PLUGIN_VERSION,
        plugin_namespace=PLUGIN_NAMESPACE,
    )
    graph = helper.make_graph(
        [node],
        "plugin",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
        initializers,
    )
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid(PLUGIN_DOMAIN, 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    write_metadata(model, ExportMetadata("dsrir-xs", "noise", "plugin", "fp32", "float", 8, "0-1", "test"))
    onnx.save(model, str(path))
    return path


def test_onnxruntime_pipeline_runs_without_torch(tmp_path: Path) -> None:
    model = identity_onnx(tmp_path / "identity.onnx")
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(frames / f"{i:02d}.png"), rng.integers(0, 256, (30, 44, 3), dtype=np.uint8))
    output, stats = tmp_path / "out", tmp_path / "stats.json"
    argv = ["--input", str(frames), "--output", f"{output}/", "--model", str(model), "--no-progress"]
    argv += ["--stats", str(stats)]
    code = (
        NO_TORCH + "from runtime.video import main; code = main(" + repr(argv) + "); "
        "assert sys.modules.get('torch') is None, 'torch was imported'; sys.exit(code)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    written = sorted(output.glob("*.png"))
    assert len(written) == 4 and stats.is_file()
    for source, restored in zip(sorted(frames.glob("*.png")), written):
        assert np.array_equal(cv2.imread(str(source)), cv2.imread(str(restored)))  # identity, lossless PNG


def test_torch_backend_says_torch_is_missing(tmp_path: Path) -> None:
    code = (
        NO_TORCH + "from runtime.video import main; "
        f"sys.exit(main(['--model', {str(tmp_path / 'm.pth')!r}, '--no-output', '--no-progress']))"
    )
    (tmp_path / "m.pth").write_bytes(b"x")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.strip().endswith(
        "the torch backend needs PyTorch (pip install torch); or export to ONNX"
    )


def test_degrade_rain_and_haze_run_without_torch(tmp_path: Path) -> None:
    """``--degrade`` uses dsrir.data.degrade, which must not pull in torch on a device."""
    model = identity_onnx(tmp_path / "identity.onnx")
    frames = tmp_path / "frames"
    frames.mkdir()
    dark = np.full((64, 96, 3), 40, np.uint8)
    for i in range(2):
        cv2.imwrite(str(frames / f"{i:02d}.png"), dark)
    for kind in ("rain", "haze"):
        output = tmp_path / kind
        argv = ["--input", str(frames), "--output", f"{output}/", "--model", str(model), "--no-progress"]
        code = NO_TORCH + "from runtime.video import main; sys.exit(main(" + repr(argv + ["--degrade", kind]) + "))"
        result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        written = [cv2.imread(str(path)).astype(np.int16) for path in sorted(output.glob("*.png"))]
        assert len(written) == 2
        for frame in written:
            assert (frame >= 40).all()  # rain adds light streaks, haze mixes in a bright airlight
            brighter = (frame > 45).mean()
            assert brighter > (0.9 if kind == "haze" else 0.01)
            assert kind == "haze" or brighter < 0.5  # streaks are sparse
        assert not np.array_equal(written[0], written[1]) or kind == "haze"  # rain is redrawn per frame


def test_plugin_graph_runs_on_the_cpu_path_without_torch(tmp_path: Path) -> None:
    """Plugin graphs run through onnxruntime-extensions (dsrir.graph.session): that path imports no torch either."""
    pytest.importorskip("onnxruntime_extensions", reason="the CPU path for plugin graphs needs onnxruntime-extensions")
    model = plugin_onnx(tmp_path / "plugin.onnx")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        cv2.imwrite(str(frames / f"{i:02d}.png"), np.full((30, 44, 3), 40 + i, np.uint8))
    output = tmp_path / "out"
    argv = ["--input", str(frames), "--output", f"{output}/", "--model", str(model), "--no-progress"]
    code = (
        NO_TORCH + "from runtime.video import main; code = main(" + repr(argv) + "); "
        "assert sys.modules.get('torch') is None, 'torch was imported'; sys.exit(code)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(sorted(output.glob("*.png"))) == 2
