"""A real Triton server (NVIDIA PyTriton's bundled ``tritonserver``, CPU) started by ``python -m runtime.serve``, and
the runtime's ``triton://`` backend against it.

PyTriton's Python-backend stub does not load models under CPython 3.11, so the server runs in its own interpreter:
``DSRIR_SERVE_PYTHON`` (``.ci/run`` makes ``.venv-serve`` with Python 3.12 and nvidia-pytriton) or, if it exists,
``.venv-serve/bin/python`` in the repository. Without one the tests are skipped with that reason.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from dsrir.errors import DSRIRError
from runtime.video import main as video_main
from tests.conftest import read_video
from tests.export.test_triton import tiny_graph
from tests.paths import REPO, SHIPPED_ONNX

pytest.importorskip("tritonclient.grpc", reason="the triton:// backend needs tritonclient[grpc]")

START_TIMEOUT_S = 120
FRAMES_BEFORE_KILL = 3000  # far more than a second's worth: the server dies mid-stream


def serve_python() -> str | None:
    explicit = os.environ.get("DSRIR_SERVE_PYTHON")
    if explicit:
        return explicit
    venv = REPO / ".venv-serve" / "bin" / "python"
    return str(venv) if venv.is_file() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``python -m runtime.serve`` in the serving interpreter, on free loopback ports."""

    def __init__(self, model: Path, log: Path) -> None:
        python = serve_python()
        if python is None:
            pytest.skip("no Python with nvidia-pytriton: set DSRIR_SERVE_PYTHON or create .venv-serve (see .ci/run)")
        self.grpc = free_port()
        ports = ["--grpc-port", str(self.grpc), "--http-port", str(free_port()), "--metrics-port", str(free_port())]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.log = log
        self.process = subprocess.Popen(
            [python, "-m", "runtime.serve", "--model", str(model), *ports],
            cwd=REPO,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: tritonserver dies with it
        )
        self._wait_ready()

    @property
    def uri(self) -> str:
        return f"triton://127.0.0.1:{self.grpc}/dsrir"

    def _wait_ready(self) -> None:
        import tritonclient.grpc as grpcclient

        client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{self.grpc}")
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"runtime.serve exited {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if client.is_model_ready("dsrir", client_timeout=1.0):
                    return
            except Exception:
                pass
            time.sleep(0.5)
        self.stop()
        raise AssertionError(f"runtime.serve not ready in {START_TIMEOUT_S} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL to the whole group (runtime.serve and its tritonserver), as a crash would."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            self.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("triton_tiny")
    server = Server(inverting_graph(folder / "invert.onnx"), folder / "serve.log")
    yield server
    server.stop()


def inverting_graph(path: Path) -> Path:
    """The exporter's metadata and I/O around ``1 - x``: every output is checkable per frame."""
    import onnx
    from onnx import helper, numpy_helper

    tiny_graph(path)
    model = onnx.load(str(path))
    graph = model.graph
    graph.initializer.append(numpy_helper.from_array(np.array(1.0, np.float32), "one"))
    graph.node[0].CopyFrom(helper.make_node("Sub", ["one", "input"], ["output"]))
    onnx.save(model, str(path))
    return path


def frame_with_value(value: int, hw: tuple[int, int] = (16, 24)) -> np.ndarray:
    return np.full((1, 3, *hw), value / 255.0, np.float32)


def test_concurrent_streams_get_every_frame_back_in_order(tiny_server: Server) -> None:
    """4 client streams x 30 frames at once: none lost, each stream's frames in its own order."""
    from runtime.backends.triton_backend import TritonBackend

    results: dict[int, list[float]] = {}
    errors: list[BaseException] = []

    def stream(index: int) -> None:
        try:
            backend = TritonBackend(tiny_server.uri)
            values = []
            for frame in range(30):
                output = backend.infer(frame_with_value(index * 50 + frame))
                values.append(float(output.mean()))
            results[index] = values
            backend.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for index in range(4):
        expected = [1 - (index * 50 + frame) / 255.0 for frame in range(30)]
        np.testing.assert_allclose(results[index], expected, atol=1e-6)


def test_backend_reads_io_from_the_server_and_refuses_what_is_not_there(tiny_server: Server) -> None:
    from runtime.backends.triton_backend import TritonBackend, parse_triton_uri

    backend = TritonBackend(tiny_server.uri)
    assert (backend.io, backend.input_name, backend.output_name) == ("float", "input", "output")
    assert "triton 127.0.0.1" in backend.description and "system shared memory" in backend.description  # local
    backend.close()
    missing = tiny_server.uri.replace("/dsrir", "/nosuchmodel")
    with pytest.raises(DSRIRError, match="no ready model 'nosuchmodel'|nosuchmodel"):
        TritonBackend(missing)
    with pytest.raises(DSRIRError, match="cannot reach a Triton server"):
        TritonBackend(f"triton://127.0.0.1:{free_port()}/dsrir")
    with pytest.raises(DSRIRError, match="expected triton://HOST"):
        parse_triton_uri("triton://localhost:8001")


def test_demo_clip_through_triton_equals_local_onnx_runtime(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped weights served by runtime.serve and run locally: the same restored frames (3 demo frames)."""
    server = Server(SHIPPED_ONNX, tmp_path / "serve.log")
    try:
        from runtime.backends.onnxruntime_backend import OrtBackend
        from runtime.backends.triton_backend import TritonBackend

        capture = cv2.VideoCapture(str(REPO / "runtime" / "assets" / "demo.mp4"))
        frames = [capture.read()[1] for _ in range(3)]
        capture.release()
        remote, local = TritonBackend(server.uri), OrtBackend(SHIPPED_ONNX, threads=2)
        for frame in frames:
            batch = (cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).astype(np.float32) / 255).transpose(2, 0, 1)[None]
            np.testing.assert_allclose(remote.infer(batch), local.infer(batch), atol=1e-5)
        remote.close()
    finally:
        server.stop()


def test_server_killed_mid_stream_is_one_line_and_the_file_is_finalised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = Server(inverting_graph(tmp_path / "invert.onnx"), tmp_path / "serve.log")
    source, output = tmp_path / "in.avi", tmp_path / "out.avi"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for value in range(FRAMES_BEFORE_KILL):
        writer.write(np.full((48, 64, 3), value % 256, np.uint8))
    writer.release()
    killer = threading.Timer(1.0, server.kill)
    killer.start()
    try:
        code = video_main(["--input", str(source), "--model", server.uri, "--output", str(output), "--no-progress"])
    finally:
        killer.cancel()
        server.stop()
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code != 0 and len(err) == 1 and "triton://" in err[0], err
    written = read_video(output)
    assert 0 < len(written) < FRAMES_BEFORE_KILL  # the frames so far, in a file that plays
