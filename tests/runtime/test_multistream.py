"""Several ``--input`` streams through one engine (``runtime.multistream``): batched inference, per-stream outputs,
frame counts and content, streams that die, stall or fall behind without holding the others, the no-overwrite rule
across every input/output pair, and one-line errors for ambiguous outputs.

End-to-end tests run ONNX Runtime on a tiny graph computing ``1 - x`` (every output frame is checkable against its
input); queueing rules use fake sources, sinks and backends, so every test here takes well under a second or two.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dsrir.errors import DSRIRError
from dsrir.graph.metadata import ExportMetadata, write_metadata
from runtime.backends import Backend
from runtime.frame_io import FrameSink, FrameSource
from runtime.frames import FrameRunner
from runtime.multistream import MultiPipeline, StreamSetup, backend_max_batch
from runtime.stats import MultiStats
from runtime.video import main, plan_outputs
from tests.conftest import read_video
from tests.runtime.fakes import FakeSource

METADATA = ExportMetadata("dsrir-xs", "all_in_one", "decomposed", "fp32", "float", 8, "0-1", "0.1.0")


def inverting_graph(path: Path, batch: str | int = "batch") -> Path:
    """The exporter's metadata and I/O around ``1 - x``."""
    shape: list[str | int] = [batch, 3, "height", "width"]
    graph = helper.make_graph(
        [helper.make_node("Sub", ["one", "input"], ["output"])],
        "dsrir",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(np.array(1.0, np.float32), "one")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    write_metadata(model, METADATA)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return inverting_graph(tmp_path_factory.mktemp("multistream_model") / "invert.onnx")


def value(stream: int, frame: int) -> int:
    return 10 + 60 * stream + 4 * frame


def write_clip(path: Path, stream: int, count: int, hw: tuple[int, int]) -> Path:
    """A lossless clip of uniform frames whose value says stream and frame number."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"FFV1"), 10.0, (hw[1], hw[0]))
    assert writer.isOpened()
    for index in range(count):
        writer.write(np.full((*hw, 3), value(stream, index), np.uint8))
    writer.release()
    return path


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


# -- fakes -----------------------------------------------------------------------------------------------------
class ListSink(FrameSink):
    def __init__(self, delay_s: float = 0.0) -> None:
        self.frames: list[np.ndarray] = []
        self.delay_s = delay_s
        self.closed_at: float | None = None
        self.closed = threading.Event()

    def write(self, frame: np.ndarray) -> None:
        time.sleep(self.delay_s)
        self.frames.append(frame)

    def close(self) -> None:
        self.closed_at = time.perf_counter()
        self.closed.set()


class CountingIdentity(Backend):
    """A float-I/O backend returning its input; records every batch size (``delay_s`` per inference)."""

    name, precision, io, size_multiple, profile, description = "fake", "fp32", "float", 8, None, "fake"
    activation_bytes_per_pixel = None

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.sizes: list[int] = []

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.sizes.append(int(batch.shape[0]))
        time.sleep(self.delay_s)
        return batch.copy()

    def close(self) -> None:
        pass


def constant(sink: ListSink) -> Callable[[tuple[int, int]], ListSink]:
    """An ``open_sink`` that hands out ``sink`` whatever the size."""
    return lambda size: sink


def frames_of(stream: int, count: int, hw: tuple[int, int] = (16, 24)) -> list[np.ndarray]:
    return [np.full((*hw, 3), value(stream, i) % 256, np.uint8) for i in range(count)]


def run_fakes(
    sources: list[FakeSource],
    backend: CountingIdentity,
    sinks: list[ListSink] | None = None,
    **options: object,
) -> tuple[MultiPipeline, list[ListSink], MultiStats]:
    sinks = sinks or [ListSink() for _ in sources]
    stats = MultiStats([f"fake{i}" for i in range(len(sources))])
    setups = [StreamSetup(source, open_sink=constant(sink)) for source, sink in zip(sources, sinks)]
    options.setdefault("max_batch", len(sources))
    pipeline = MultiPipeline(setups, FrameRunner(backend), stats, **options)  # type: ignore[arg-type]
    pipeline.run(handle_signals=False)
    return pipeline, sinks, stats


def values_of(sink: ListSink) -> list[int]:
    return [int(frame[0, 0, 0]) for frame in sink.frames]


# -- end to end through the CLI ---------------------------------------------------------------------------------
def test_three_files_of_different_lengths_give_three_outputs_with_their_frames(graph: Path, tmp_path: Path) -> None:
    """Streams 0 and 2 share a size (batched together), stream 1 has its own (its own inference)."""
    specs = [(5, (24, 40)), (9, (32, 48)), (3, (24, 40))]
    clips = [write_clip(tmp_path / f"in{i}.mkv", i, count, hw) for i, (count, hw) in enumerate(specs)]
    stats_path = tmp_path / "stats.json"
    argv = [arg for clip in clips for arg in ("--input", str(clip))]
    argv += ["--output", str(tmp_path / "out_{stream}.avi"), "--model", str(graph), "--no-progress"]
    assert main([*argv, "--stats", str(stats_path), "--warmup", "0"]) == 0
    for index, (count, hw) in enumerate(specs):
        frames = read_video(tmp_path / f"out_{index}.avi")
        assert len(frames) == count and frames[0].shape == (*hw, 3)
        means = [float(frame.mean()) for frame in frames]
        expected = [255 - value(index, i) for i in range(count)]
        assert np.allclose(means, expected, atol=3), (index, means, expected)  # MJPG output: near, not exact
    stats = json.loads(stats_path.read_text())
    assert [s["frames_out"] for s in stats["streams"]] == [5, 9, 3] and stats["frames_out"] == 17
    assert [s["state"] for s in stats["streams"]] == ["ended"] * 3
    assert stats["batch"]["max"] == 3 and stats["dropped"] == 0
    assert sum(int(size) * times for size, times in stats["batch"]["sizes"].items()) == 17
    for stream in stats["streams"]:
        assert {"p50", "p95"} <= set(stream["latency_ms"]["end_to_end"])


def test_a_truncated_input_ends_alone(graph: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = [write_clip(tmp_path / f"good{i}.mkv", i, 12, (16, 24)) for i in range(2)]
    broken = write_clip(tmp_path / "broken.mkv", 2, 20, (16, 24))
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 2])
    stats_path = tmp_path / "stats.json"
    argv = ["--input", str(good[0]), "--input", str(broken), "--input", str(good[1])]
    argv += ["--output", str(tmp_path / "out_{stream}.avi"), "--model", str(graph), "--no-progress"]
    assert main([*argv, "--stats", str(stats_path)]) == 0, capsys.readouterr().err
    stats = json.loads(stats_path.read_text())
    outs = [len(read_video(tmp_path / f"out_{i}.avi")) for i in range(3)]
    assert outs[0] == outs[2] == 12 and 0 < outs[1] < 20
    assert [s["frames_out"] for s in stats["streams"]] == outs and stats["streams"][1]["skipped"] > 0
    assert "total" in capsys.readouterr().err  # the per-stream and total table


def test_an_input_that_fails_mid_run_ends_alone_and_the_exit_status_says_so(
    graph: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from runtime import sources

    clips = [write_clip(tmp_path / f"in{i}.mkv", i, 10, (16, 24)) for i in range(3)]
    real_open = sources.open_source

    class Failing(FrameSource):
        def __init__(self, inner: FrameSource) -> None:
            self.inner, self.reads = inner, 0
            self.live, self.fps, self.frame_count, self.description = False, inner.fps, 10, inner.description

        def read(self) -> np.ndarray | None:
            self.reads += 1
            if self.reads > 3:
                raise OSError("device vanished")
            return self.inner.read()

        def close(self) -> None:
            self.inner.close()

    def open_source(spec: sources.SourceSpec, **options: object) -> object:
        source = real_open(spec, **options)  # type: ignore[arg-type]
        return Failing(source) if spec.location.endswith("in1.mkv") else source

    monkeypatch.setattr(sources, "open_source", open_source)
    argv = [arg for clip in clips for arg in ("--input", str(clip))]
    argv += ["--output", str(tmp_path / "out_{stream}.avi"), "--model", str(graph), "--no-progress"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"error: stream 1 ({clips[1]}): OSError: device vanished" in err
    assert [len(read_video(tmp_path / f"out_{i}.avi")) for i in range(3)] == [10, 3, 10]


def test_mosaic_tiles_every_stream_into_one_output(graph: Path, tmp_path: Path) -> None:
    clips = [write_clip(tmp_path / f"in{i}.mkv", i, 4 + 2 * i, (16, 24)) for i in range(3)]
    output = tmp_path / "mosaic.avi"
    argv = [arg for clip in clips for arg in ("--input", str(clip))]
    assert main([*argv, "--output", str(output), "--mosaic", "--model", str(graph), "--no-progress"]) == 0
    frames = read_video(output)
    assert frames[0].shape == (2 * 16, 2 * 24, 3)  # 3 streams: a 2 x 2 grid of 16 x 24 tiles
    assert 8 <= len(frames) <= 4 + 6 + 8
    last = frames[-1].astype(np.float32)
    assert abs(last[:16, :24].mean() - (255 - value(0, 3))) < 4  # each tile keeps its stream's latest frame
    assert abs(last[16:, :24].mean() - (255 - value(2, 7))) < 4
    assert last[16:, 24:].mean() < 4  # the empty fourth tile


def test_one_input_keeps_the_single_stream_path(graph: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mkv", 0, 4, (16, 24))
    argv = ["--input", str(clip), "--output", str(tmp_path / "out_{stream}.avi"), "--model", str(graph)]
    assert main([*argv, "--no-progress", "--max-batch", "4"]) == 0
    assert len(read_video(tmp_path / "out_0.avi")) == 4


# -- the no-overwrite rule and ambiguous outputs -----------------------------------------------------------------
def test_no_output_may_overwrite_any_input(graph: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clips = [write_clip(tmp_path / f"clip_{i}.mkv", i, 3, (16, 24)) for i in range(2)]
    inputs = ["--input", str(clips[0]), "--input", str(clips[1])]
    common = ["--model", str(graph), "--no-progress"]
    # stream 0 would write stream 1's input
    assert main([*inputs, "--output", str(clips[1]), "--output", str(tmp_path / "b.avi"), *common]) == 2
    assert f"is the input {clips[1]}" in one_line_error(capsys)
    # the placeholder expands onto the inputs themselves
    assert main([*inputs, "--output", str(tmp_path / "clip_{stream}.mkv"), *common]) == 2
    assert "an output may not overwrite an input" in one_line_error(capsys)
    # two spellings of one output
    twice = ["--output", str(tmp_path / "same.avi"), "--output", str(tmp_path / "." / "same.avi")]
    assert main([*inputs, *twice, *common]) == 2
    assert "both write" in one_line_error(capsys)
    # --stats onto an input; a mosaic onto an input
    assert main([*inputs, "--stats", str(clips[0]), *common]) == 2
    assert "--stats" in one_line_error(capsys)
    assert main([*inputs, "--output", str(clips[0]), "--mosaic", *common]) == 2
    assert f"is the input {clips[0]}" in one_line_error(capsys)
    assert not (tmp_path / "b.avi").exists() and not (tmp_path / "same.avi").exists()


@pytest.mark.parametrize(
    ("outputs", "extra", "words"),
    [
        (["out.avi"], [], ["for 2 inputs", "out_{stream}.avi", "--mosaic"]),
        (["a.avi", "b.avi", "c.avi"], [], ["given 3 times for 2 inputs"]),
        (["a.avi", "b.avi"], ["--mosaic"], ["--mosaic", "once"]),
        (["out_{stream}.avi"], ["--mosaic"], ["drop one"]),
        (["display://0", "display://0"], [], ["given for inputs 0 and 1"]),
    ],
)
def test_ambiguous_outputs_are_one_line_errors(
    outputs: list[str],
    extra: list[str],
    words: list[str],
    graph: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clips = [write_clip(tmp_path / f"in{i}.mkv", i, 2, (16, 24)) for i in range(2)]
    argv = ["--input", str(clips[0]), "--input", str(clips[1]), "--model", str(graph), "--no-progress", *extra]
    argv += [arg for out in outputs for arg in ("--output", str(tmp_path / out) if "://" not in out else out)]
    assert main(argv) == 2
    line = one_line_error(capsys)
    assert all(word in line for word in words), line


def test_output_plans() -> None:
    specs, mosaic = plan_outputs(["out_{stream}.mp4"], 3)
    assert [s.location for s in specs] == ["out_0.mp4", "out_1.mp4", "out_2.mp4"] and mosaic is None
    specs, mosaic = plan_outputs(["display://0"], 2)
    assert specs == [] and mosaic is not None and mosaic.kind == "display"
    specs, mosaic = plan_outputs(["a.mp4", "none"], 2)
    assert [s.kind for s in specs] == ["file", "none"] and mosaic is None
    assert [s.kind for s in plan_outputs([], 2)[0]] == ["none", "none"]
    assert [s.kind for s in plan_outputs(["a.mp4"], 2, no_output=True)[0]] == ["none", "none"]
    with pytest.raises(DSRIRError, match=r"frames_\{stream\}/"):
        plan_outputs(["frames/"], 2)


# -- batching and isolation, with fakes --------------------------------------------------------------------------
def test_frames_are_batched_and_each_stream_keeps_its_order() -> None:
    sources = [FakeSource(frames_of(i, 20)) for i in range(3)]
    backend = CountingIdentity(delay_s=0.002)
    pipeline, sinks, stats = run_fakes(sources, backend)
    assert max(backend.sizes) == 3 and sum(backend.sizes) == 60
    assert sum(size > 1 for size in backend.sizes) >= len(backend.sizes) // 2
    for index, sink in enumerate(sinks):
        assert values_of(sink) == [value(index, i) % 256 for i in range(20)] and sink.closed.is_set()
    summary = stats.summary()
    assert summary["frames_out"] == 60 and [s["frames_out"] for s in summary["streams"]] == [20, 20, 20]
    assert summary["batch"]["inferences"] == len(backend.sizes) and pipeline.failures == []


def test_max_batch_caps_the_batch_and_sizes_are_grouped() -> None:
    sources = [FakeSource(frames_of(0, 6)), FakeSource(frames_of(1, 6, (24, 32))), FakeSource(frames_of(2, 6))]
    backend = CountingIdentity()
    _, sinks, _ = run_fakes(sources, backend, max_batch=2)
    assert max(backend.sizes) <= 2 and sum(backend.sizes) == 18
    assert [len(sink.frames) for sink in sinks] == [6, 6, 6] and sinks[1].frames[0].shape == (24, 32, 3)


def test_a_failing_stream_ends_alone() -> None:
    sources = [FakeSource(frames_of(0, 15)), FakeSource(frames_of(1, 15), fail_at=4), FakeSource(frames_of(2, 3))]
    pipeline, sinks, stats = run_fakes(sources, CountingIdentity())
    assert [len(sink.frames) for sink in sinks] == [15, 4, 3]
    assert [index for index, _ in pipeline.failures] == [1] and all(sink.closed.is_set() for sink in sinks)
    states = [s["state"] for s in stats.summary()["streams"]]
    assert states == ["ended", "failed", "ended"] and "camera unplugged" in stats.table()


def test_a_failing_output_ends_its_stream_alone() -> None:
    class FullDisk(ListSink):
        def write(self, frame: np.ndarray) -> None:
            if len(self.frames) == 3:
                raise OSError("No space left on device")
            super().write(frame)

    sources = [FakeSource(frames_of(i, 200 if i == 0 else 20), period_s=0.001) for i in range(3)]
    sinks = [FullDisk(), ListSink(), ListSink()]
    pipeline, _, stats = run_fakes(sources, CountingIdentity(), sinks)
    assert [len(sink.frames) for sink in sinks] == [3, 20, 20] and all(sink.closed.is_set() for sink in sinks)
    assert [index for index, _ in pipeline.failures] == [0] and sources[0].index < 200  # its capture stopped
    assert [s["state"] for s in stats.summary()["streams"]] == ["failed", "ended", "ended"]


def test_a_blocked_stream_never_stalls_the_others() -> None:
    gate = threading.Event()
    sources = [FakeSource(frames_of(0, 2), gate=gate), FakeSource(frames_of(1, 30)), FakeSource(frames_of(2, 30))]
    sinks = [ListSink() for _ in sources]
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.update(run=run_fakes(sources, CountingIdentity(), sinks)))
    thread.start()
    try:
        assert sinks[1].closed.wait(10) and sinks[2].closed.wait(10)  # done while stream 0 is still blocked
        assert len(sinks[1].frames) == len(sinks[2].frames) == 30 and sinks[0].frames == []
    finally:
        gate.set()
        thread.join(10)
    assert not thread.is_alive() and len(sinks[0].frames) == 2


def test_a_slow_output_slows_only_its_own_stream() -> None:
    sources = [FakeSource(frames_of(i, 20)) for i in range(3)]
    sinks = [ListSink(delay_s=0.05), ListSink(), ListSink()]
    start = time.perf_counter()
    run_fakes(sources, CountingIdentity(), sinks, queue_size=2)
    assert [len(sink.frames) for sink in sinks] == [20, 20, 20]
    slow = sinks[0].closed_at - start  # type: ignore[operator]
    assert slow >= 1.0
    assert max(sinks[1].closed_at, sinks[2].closed_at) - start < slow / 2  # type: ignore[operator, type-var]


def test_live_streams_drop_their_oldest_and_files_lose_nothing_in_the_same_run() -> None:
    numbered = [np.full((16, 24, 3), i, np.uint8) for i in range(120)]
    sources = [FakeSource(numbered, live=True, period_s=0.001), FakeSource(frames_of(1, 20))]
    _, sinks, stats = run_fakes(sources, CountingIdentity(delay_s=0.02), queue_size=2)
    live, file = stats.summary()["streams"]
    assert live["dropped"] > 20 and live["frames_out"] + live["dropped"] == live["frames_in"] == 120
    assert values_of(sinks[0]) == sorted(values_of(sinks[0])) and values_of(sinks[0])[-1] == 119  # newest kept
    assert file["dropped"] == 0 and values_of(sinks[1]) == [value(1, i) % 256 for i in range(20)]


def test_stop_drains_every_stream() -> None:
    sources = [FakeSource(frames_of(i, 1000), period_s=0.002) for i in range(2)]
    sinks = [ListSink() for _ in sources]
    stats = MultiStats(["a", "b"])
    setups = [StreamSetup(source, open_sink=constant(sink)) for source, sink in zip(sources, sinks)]
    pipeline = MultiPipeline(setups, FrameRunner(CountingIdentity()), stats, max_batch=2)  # type: ignore[arg-type]
    threading.Timer(0.3, pipeline.request_stop).start()
    assert pipeline.run(handle_signals=False) == "interrupted"
    for sink, stream in zip(sinks, stats.streams):
        assert 0 < len(sink.frames) == stream.counts["frames_in"] < 1000 and sink.closed.is_set()


def test_ctrl_c_says_it_drains_every_stream(capsys: pytest.CaptureFixture[str]) -> None:
    """As a single stream: one line when the drain starts, one when a second Ctrl-C leaves the queued frames."""
    sources = [FakeSource(frames_of(i, 1000), period_s=0.002) for i in range(2)]
    sinks = [ListSink() for _ in sources]
    stats = MultiStats(["a", "b"])
    setups = [StreamSetup(source, open_sink=constant(sink)) for source, sink in zip(sources, sinks)]
    pipeline = MultiPipeline(setups, FrameRunner(CountingIdentity()), stats, max_batch=2)  # type: ignore[arg-type]
    threading.Timer(0.3, pipeline._on_signal, (signal.SIGINT, None)).start()
    assert pipeline.run(handle_signals=False) == "interrupted"
    line = capsys.readouterr().err.strip()
    assert line.startswith("stopping: finishing ") and line.endswith(" queued frame(s) (Ctrl-C again to stop now)")
    assert all(sink.closed.is_set() for sink in sinks)


def test_an_inference_error_ends_the_run() -> None:
    class Failing(CountingIdentity):
        def infer(self, batch: np.ndarray) -> np.ndarray:
            if len(self.sizes) == 3:
                raise RuntimeError("engine failed")
            return super().infer(batch)

    with pytest.raises(RuntimeError, match="engine failed"):
        run_fakes([FakeSource(frames_of(i, 50)) for i in range(2)], Failing())


# -- batched frames equal frames one at a time ---------------------------------------------------------------------
def test_a_batch_restores_each_frame_as_one_at_a_time(graph: Path) -> None:
    from runtime.backends.onnxruntime_backend import OrtBackend

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (30, 45, 3), dtype=np.uint8) for _ in range(3)]
    runner = FrameRunner(OrtBackend(graph, threads=1))
    batched = runner.run_batch(frames)
    assert runner.timings["infer"] > 0
    for frame, restored in zip(frames, batched):
        assert np.array_equal(restored, runner.run(frame)) and np.array_equal(restored, 255 - frame)
    assert backend_max_batch(runner.backend) is None
    assert backend_max_batch(OrtBackend(inverting_graph(graph.with_name("one.onnx"), batch=1), threads=1)) == 1
    assert backend_max_batch(type("Engine", (Backend,), {"name": "tensorrt"})()) == 1  # undeclared: one frame
    assert backend_max_batch(type("Declared", (Backend,), {"max_batch": 8})()) == 8
