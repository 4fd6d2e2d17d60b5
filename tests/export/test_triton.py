"""``python -m export.triton``: model repositories that Triton's own model-config protobuf reads back."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from dsrir.graph.metadata import ExportMetadata, write_metadata
from dsrir.trt.sidecar import EngineSidecar, sidecar_path, write_sidecar
from export.triton import main, parse_config

pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="export.triton needs tritonclient[grpc]")

METADATA = ExportMetadata("dsrir-xs", "all_in_one", "decomposed", "fp32", "float", 8, "0-1", "0.1.0")


def tiny_graph(path: Path, io: str = "float") -> Path:
    """A checked graph with the exporter's metadata and I/O (an Identity stands in for the network)."""
    if io == "float":
        shape: list[str | int] = ["batch", 3, "height", "width"]
        elem = TensorProto.FLOAT
    else:
        shape, elem = ["batch", "height", "width", 3], TensorProto.UINT8
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])],
        "dsrir",
        [helper.make_tensor_value_info("input", elem, shape)],
        [helper.make_tensor_value_info("output", elem, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    write_metadata(model, dataclasses.replace(METADATA, io=io))
    onnx.save(model, str(path))
    return path


def engine_with_sidecar(path: Path, max_batch: int = 2, plugin: str | None = None) -> Path:
    path.write_bytes(b"serialized engine bytes")
    sidecar = EngineSidecar(
        tensorrt_version="10.3.0",
        gpu_name="Orin",
        compute_capability="8.7",
        precision="fp16",
        precision_summary="FP16 flag",
        strongly_typed=False,
        flags=["FP16"],
        profile={
            "input": "input",
            "layout": "NCHW",
            "min": [1, 3, 256, 256],
            "opt": [1, 3, 720, 1280],
            "max": [max_batch, 3, 1080, 1920],
        },
        inputs=[{"name": "input", "dtype": "float32", "layout": "NCHW"}],
        outputs=[{"name": "output", "dtype": "float32"}],
        io="float",
        size_multiple=8,
        preset="dsrir-xs",
        plugin_library=plugin,
    )
    write_sidecar(sidecar_path(path), sidecar)
    return path


def test_onnx_repository_reads_back_with_the_graphs_io(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, repo = tiny_graph(tmp_path / "dsrir.onnx"), tmp_path / "repo"
    argv = ["--model", str(model), "--output-dir", str(repo), "--preferred-batch-size", "2", "4"]
    assert main(argv) == 0
    config = parse_config((repo / "dsrir" / "config.pbtxt").read_text())
    assert (config.name, config.platform, config.max_batch_size) == ("dsrir", "onnxruntime_onnx", 4)
    assert [(t.name, list(t.dims)) for t in config.input] == [("input", [3, -1, -1])]  # batch is Triton's
    assert [(t.name, list(t.dims)) for t in config.output] == [("output", [3, -1, -1])]
    assert list(config.dynamic_batching.preferred_batch_size) == [2, 4]
    assert config.parameters["dsrir.preset"].string_value == "dsrir-xs"
    assert onnx.load(str(repo / "dsrir" / "1" / "model.onnx")).graph.output[0].name == "output"
    assert "tritonserver --model-repository=" in capsys.readouterr().out


def test_uint8_graph_keeps_nhwc_frames_and_uint8(tmp_path: Path) -> None:
    from tritonclient.grpc import model_config_pb2 as pb

    model, repo = tiny_graph(tmp_path / "dsrir.uint8.onnx", io="uint8"), tmp_path / "repo"
    assert main(["--model", str(model), "--output-dir", str(repo), "--max-batch-size", "0"]) == 0
    config = parse_config((repo / "dsrir" / "config.pbtxt").read_text())
    assert config.max_batch_size == 0 and list(config.input[0].dims) == [-1, -1, -1, 3]  # batch in dims when 0
    assert config.input[0].data_type == pb.TYPE_UINT8 and not config.HasField("dynamic_batching")


def test_engine_repository_takes_io_and_compatibility_from_the_sidecar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = engine_with_sidecar(tmp_path / "dsrir.engine", max_batch=2, plugin="/opt/dsrir/libdsrir_plugins.so")
    repo = tmp_path / "repo"
    assert main(["--model", str(engine), "--output-dir", str(repo), "--name", "restore"]) == 0
    config = parse_config((repo / "restore" / "config.pbtxt").read_text())
    assert (config.platform, config.max_batch_size) == ("tensorrt_plan", 2)  # capped at the profile's batch
    assert list(config.input[0].dims) == [3, -1, -1]
    assert config.parameters["dsrir.tensorrt_version"].string_value == "10.3.0"
    assert config.parameters["dsrir.compute_capability"].string_value == "8.7"
    assert (repo / "restore" / "1" / "model.plan").read_bytes() == engine.read_bytes()
    assert "--backend-config=tensorrt,plugins=/opt/dsrir/libdsrir_plugins.so" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--max-batch-size", "8"], ["--max-batch-size 8", "at most 2"]),
        (["--preferred-batch-size", "3"], ["--preferred-batch-size", "1..2"]),
        (["--instances", "0"], ["--instances 0"]),
    ],
)
def test_settings_the_engine_cannot_honour_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], words: list[str]
) -> None:
    engine = engine_with_sidecar(tmp_path / "dsrir.engine", max_batch=2)
    assert main(["--model", str(engine), "--output-dir", str(tmp_path / "repo"), *extra]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and all(word in lines[0] for word in words), lines
    assert not (tmp_path / "repo" / "dsrir").exists()


def test_an_existing_model_is_replaced_only_with_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, repo = tiny_graph(tmp_path / "dsrir.onnx"), tmp_path / "repo"
    assert main(["--model", str(model), "--output-dir", str(repo)]) == 0
    before = (repo / "dsrir" / "config.pbtxt").read_text()
    assert main(["--model", str(model), "--output-dir", str(repo), "--max-batch-size", "2"]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert (repo / "dsrir" / "config.pbtxt").read_text() == before
    assert main(["--model", str(model), "--output-dir", str(repo), "--max-batch-size", "2", "--force"]) == 0
    assert parse_config((repo / "dsrir" / "config.pbtxt").read_text()).max_batch_size == 2
    assert sorted(p.name for p in repo.iterdir()) == ["dsrir"]  # no staging or replaced folders left


def test_engine_without_sidecar_and_unknown_files_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bare.engine").write_bytes(b"x")
    (tmp_path / "m.pt").write_bytes(b"x")
    for path, words in ((tmp_path / "bare.engine", "no sidecar"), (tmp_path / "m.pt", "expected a TensorRT engine")):
        assert main(["--model", str(path), "--output-dir", str(tmp_path / "repo")]) == 2
        assert words in capsys.readouterr().err
