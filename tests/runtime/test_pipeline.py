"""``python -m runtime.video`` end to end on a short noisy clip, plus the pipeline's queueing, stop and error rules.

One module fixture trains dsrir-xs to denoise for a few dozen steps (fixed seeds), saves it as a checkpoint and
exports it to ONNX once; every end-to-end test shares both (about 25 s on 2 CPU cores). Queueing rules are
checked with fake sources and a fake slow backend, so they cost milliseconds, not model time.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from dsrir.checkpoint import official_checkpoint, save_pth
from dsrir.errors import DSRIRError
from export.onnx.build import main as export_main
from runtime.backends import Backend, open_backend, resolve_kind
from runtime.backends.trt_buffers import BufferPlan, needs_realloc, plan_buffers, profile_from_shapes
from runtime.fit import Profile, fit_frame, padded_hw
from runtime.frame_io import FrameSink
from runtime.frames import FrameProcessor, FrameRunner
from runtime.pipeline import Pipeline
from runtime.stats import RunStats
from runtime.video import main
from tests.conftest import briefly_trained_denoiser, natural_like_image, read_video
from tests.paths import REPO
from tests.runtime.fakes import FakeSource

FRAMES, HEIGHT, WIDTH, SIGMA = 12, 64, 96, 25
STATS_KEYS = {"frames_in", "frames_out", "dropped", "skipped", "reconnects", "fps", "latency_ms", "backend"}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("runtime_model")
    checkpoint = folder / "model.pth"
    save_pth(checkpoint, official_checkpoint(briefly_trained_denoiser(sigma=SIGMA), "dsrir-xs", epoch=1, mode="noise"))
    onnx_path = folder / "model.onnx"
    assert export_main(["--checkpoint", str(checkpoint), "--output", str(onnx_path), "--check-size", "none"]) == 0
    return {"torch": checkpoint, "onnxruntime": onnx_path}


def moving_clip(count: int = FRAMES) -> list[np.ndarray]:
    """Clean BGR frames: a natural-like background panning right with a bright square moving across it."""
    background = cv2.cvtColor(natural_like_image(HEIGHT, WIDTH + 2 * count, seed=11), cv2.COLOR_RGB2BGR)
    frames = []
    for i in range(count):
        frame = np.ascontiguousarray(background[:, 2 * i : 2 * i + WIDTH])
        cv2.rectangle(frame, (5 + 6 * i, 20), (25 + 6 * i, 40), (40, 200, 230), -1)
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    """A noisy MJPG clip on disk and its clean frames."""
    clean = moving_clip()
    rng = np.random.default_rng(3)
    path = tmp_path_factory.mktemp("clip") / "noisy.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (WIDTH, HEIGHT))
    for frame in clean:
        noisy = np.clip(np.rint(frame + rng.standard_normal(frame.shape) * SIGMA), 0, 255).astype(np.uint8)
        writer.write(noisy)
    writer.release()
    return path, clean


# -- fakes following the runtime.sources / runtime.sinks interface --------------------------------------------
class ListSink(FrameSink):
    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.closed = 0

    def write(self, frame: np.ndarray) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        self.closed += 1


class SlowIdentity(Backend):
    """A float-I/O backend returning its input after ``delay_s``; ``fail_at`` raises on that call."""

    name, precision, io, size_multiple, profile, description = "fake", "fp32", "float", 8, None, "fake"
    activation_bytes_per_pixel = None

    def __init__(self, delay_s: float = 0.0, fail_at: int | None = None, profile: Profile | None = None) -> None:
        self.delay_s, self.fail_at, self.calls, self.profile = delay_s, fail_at, 0, profile

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise RuntimeError("fake backend failed")
        time.sleep(self.delay_s)
        return batch.copy()

    def close(self) -> None:
        pass


class TwoSlotBackend(SlowIdentity):
    """The TensorRT backend's ``submit``/``collect`` contract on threads: each slot copies its input, works for
    ``delay_s``, refuses a submit while busy, and records how many frames were ever in flight at once."""

    slots_in_flight = 2

    def __init__(self, delay_s: float = 0.0) -> None:
        super().__init__(delay_s)
        self.busy: dict[int, threading.Thread] = {}
        self.outputs: dict[int, np.ndarray] = {}
        self.next_slot, self.max_in_flight = 0, 0

    def submit(self, batch: np.ndarray) -> int:
        slot = self.next_slot
        if slot in self.busy:
            raise RuntimeError(f"slot {slot} is still in flight")
        copied = batch.copy()
        self.busy[slot] = threading.Thread(target=lambda: self.outputs.__setitem__(slot, self.infer(copied)))
        self.busy[slot].start()
        self.max_in_flight = max(self.max_in_flight, len(self.busy))
        self.next_slot = (slot + 1) % self.slots_in_flight
        return slot

    def collect(self, slot: int) -> np.ndarray:
        self.busy.pop(slot).join()
        return self.outputs.pop(slot)


def numbered(count: int, hw: tuple[int, int] = (24, 40)) -> list[np.ndarray]:
    return [np.full((*hw, 3), i % 256, np.uint8) for i in range(count)]


def run_fake(source: FakeSource, backend: SlowIdentity, **options: object) -> tuple[ListSink, RunStats]:
    sink, stats = ListSink(), RunStats()
    Pipeline(source, FrameRunner(backend), lambda size: sink, stats, **options).run(handle_signals=False)  # type: ignore[arg-type]
    return sink, stats


# -- end to end -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_clip_restored_end_to_end(
    backend: str, models: dict[str, Path], clip: tuple[Path, list[np.ndarray]], tmp_path: Path
) -> None:
    path, clean = clip
    output, stats_path = tmp_path / "restored.avi", tmp_path / "stats.json"
    argv = ["--input", str(path), "--output", str(output), "--model", str(models[backend]), "--no-progress"]
    assert main([*argv, "--stats", str(stats_path), "--warmup", "2"]) == 0
    restored, noisy = read_video(output), read_video(path)
    assert len(restored) == FRAMES and restored[0].shape == (HEIGHT, WIDTH, 3)
    psnr_in = np.mean([psnr(n, c) for n, c in zip(noisy, clean)])
    psnr_out = np.mean([psnr(r, c) for r, c in zip(restored, clean)])
    print(f"{backend}: PSNR noisy {psnr_in:.2f} dB -> restored {psnr_out:.2f} dB")
    assert psnr_out > psnr_in + 1.0
    stats = json.loads(stats_path.read_text())
    assert STATS_KEYS <= set(stats)
    assert stats["frames_in"] == stats["frames_out"] == FRAMES and stats["dropped"] == 0
    assert stats["backend"] == backend and stats["resolution"] == f"{WIDTH}x{HEIGHT}" and stats["fps"] > 0
    for stage in ("capture", "pre", "infer", "post", "write", "end_to_end"):
        assert set(stats["latency_ms"][stage]) == {"mean", "p50", "p95", "max"}


def test_side_by_side_doubles_the_width(
    models: dict[str, Path], clip: tuple[Path, list[np.ndarray]], tmp_path: Path
) -> None:
    output = tmp_path / "sbs.avi"
    argv = ["--input", str(clip[0]), "--output", str(output), "--model", str(models["onnxruntime"]), "--no-progress"]
    assert main([*argv, "--side-by-side", "--max-frames", "3"]) == 0
    frames = read_video(output)
    assert len(frames) == 3 and frames[0].shape == (HEIGHT, 2 * WIDTH, 3)


def test_sigint_finalises_a_playable_file(
    models: dict[str, Path], clip: tuple[Path, list[np.ndarray]], tmp_path: Path
) -> None:
    """Ctrl-C: capture stops, queues drain, the file is closed; exit status 130 (documented in --help)."""
    output, stats_path = tmp_path / "interrupted.avi", tmp_path / "stats.json"
    command = [sys.executable, "-m", "runtime.video", "--input", str(clip[0]), "--input-loop", "--output", str(output)]
    command += ["--model", str(models["onnxruntime"]), "--no-progress", "--stats", str(stats_path)]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    time.sleep(8.0)
    assert process.poll() is None, process.stderr.read() if process.stderr else ""
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    frames = read_video(output)
    stats = json.loads(stats_path.read_text())
    assert len(frames) > 0 and len(frames) == stats["frames_out"]
    assert stats["frames_in"] == stats["frames_out"]  # drained: nothing captured was left behind


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--input", "bogus://x"], ["unknown scheme", "expected", "demo"]),
        (["--input", "/no/such/clip.mp4"], ["does not exist"]),
    ],
)
def test_bad_input_is_one_line_error(
    argv: list[str], words: list[str], models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--model", str(models["onnxruntime"]), "--no-output", "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert all(word in lines[0] for word in words), lines[0]


def test_missing_default_model_is_one_line_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("runtime.video.DEFAULT_MODEL", tmp_path / "weights" / "dsrir-xs_all_in_one.onnx")
    assert main(["--no-output"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "no --model given and the shipped dsrir-xs_all_in_one.onnx is not in" in lines[0]


def test_demo_with_the_shipped_weights_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The quick start: no --model, the demo clip, ONNX Runtime on the CPU, a playable file and the summary."""
    output, stats = tmp_path / "restored.mp4", tmp_path / "stats.json"
    argv = ["--input", "demo", "--degrade", "noise", "--output", str(output), "--max-frames", "3", "--warmup", "1"]
    assert main([*argv, "--no-progress", "--stats", str(stats)]) == 0
    frames = read_video(output)
    assert len(frames) == 3 and frames[0].shape == (360, 640, 3)
    summary = json.loads(stats.read_text())
    assert summary["backend"] == "onnxruntime" and summary["frames_out"] == 3
    assert "frames in 3, out 3" in capsys.readouterr().err  # the summary goes with the status line, to stderr


def test_backend_chosen_from_suffix() -> None:
    assert [resolve_kind(Path(f"m{s}"), "auto") for s in (".engine", ".onnx", ".pth", ".safetensors")] == [
        "tensorrt",
        "onnxruntime",
        "torch",
        "torch",
    ]
    assert resolve_kind(Path("m.onnx"), "torch") == "torch"
    with pytest.raises(DSRIRError, match="cannot pick a backend"):
        resolve_kind(Path("m.bin"), "auto")


def test_tensorrt_backend_without_tensorrt_is_one_line(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"not an engine")
    with pytest.raises(DSRIRError, match="TensorRT is not installed"):
        open_backend(engine)


# -- queueing, stop and errors with fakes ----------------------------------------------------------------------
def test_live_source_drops_oldest_and_bounds_latency() -> None:
    source = FakeSource(numbered(150), live=True, period_s=0.001)
    sink, stats = run_fake(source, SlowIdentity(delay_s=0.02), queue_size=2)
    summary = stats.summary()
    assert summary["dropped"] > 50
    assert summary["frames_out"] + summary["dropped"] == summary["frames_in"] == 150
    values = [int(frame[0, 0, 0]) for frame in sink.frames]
    assert values == sorted(values) and values[-1] == 149  # newest kept, order preserved
    assert summary["latency_ms"]["queue_wait"]["max"] < 250  # ~2 frames x 20 ms; unbounded would be ~3 s
    assert summary["latency_ms"]["end_to_end"]["p95"] < 300


def test_file_source_loses_nothing_with_a_slow_backend() -> None:
    source = FakeSource(numbered(40), live=False)
    sink, stats = run_fake(source, SlowIdentity(delay_s=0.005), queue_size=2)
    assert [int(frame[0, 0, 0]) for frame in sink.frames] == list(range(40))
    assert stats.counts["dropped"] == 0 and sink.closed == 1


def test_worker_exception_stops_and_reaches_the_main_thread() -> None:
    sink = ListSink()
    with pytest.raises(RuntimeError, match="fake backend failed"):
        run_fake_sink = Pipeline(
            FakeSource(numbered(50), live=False), FrameRunner(SlowIdentity(fail_at=5)), lambda size: sink, RunStats()
        )
        run_fake_sink.run(handle_signals=False)
    # The sink opens with the first written frame: on a loaded machine the abort can come before any.
    assert len(sink.frames) <= 4 and sink.closed == (1 if sink.frames else 0)


def test_stop_request_drains_and_closes() -> None:
    source = FakeSource(numbered(1000), live=False, period_s=0.001)
    sink, stats = ListSink(), RunStats()
    pipeline = Pipeline(source, FrameRunner(SlowIdentity()), lambda size: sink, stats)
    threading.Timer(0.2, pipeline.request_stop).start()
    assert pipeline.run(handle_signals=False) == "interrupted"
    assert 0 < len(sink.frames) == stats.counts["frames_in"] < 1000 and sink.closed == 1


def test_ctrl_c_says_it_drains_and_a_second_one_stops_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C drained the queued frames (about 17 s at a few frames per second) without a word; now one line says
    so, and a second Ctrl-C leaves the queued frames and still closes (finalises) the output."""
    source = FakeSource(numbered(1000), live=False)
    sink, stats = ListSink(), RunStats()
    pipeline = Pipeline(source, FrameRunner(SlowIdentity(delay_s=0.2)), lambda size: sink, stats, queue_size=4)

    def press_ctrl_c_twice() -> None:
        while stats.counts["frames_out"] < 1 or not pipeline.inbox.full():
            time.sleep(0.01)
        pipeline._on_signal(signal.SIGINT, None)
        pipeline._on_signal(signal.SIGINT, None)

    threading.Thread(target=press_ctrl_c_twice, daemon=True).start()
    assert pipeline.run(handle_signals=False) == "interrupted"
    first, second = capsys.readouterr().err.strip().splitlines()
    queued = int(first.split()[2])
    assert first == f"stopping: finishing {queued} queued frame(s) (Ctrl-C again to stop now)" and queued >= 4
    assert second == "stopping now: the output keeps the frames written so far"
    assert len(sink.frames) < stats.counts["frames_in"] and sink.closed == 1


def test_frame_size_change_mid_stream() -> None:
    frames = numbered(3, (24, 40)) + numbered(3, (30, 50))
    sink, _ = run_fake(FakeSource(frames, live=False), SlowIdentity(), side_by_side=True)
    assert len(sink.frames) == 6 and all(frame.shape == (24, 80, 3) for frame in sink.frames)  # sink keeps its size


def test_two_frames_in_flight_keep_order_and_sizes() -> None:
    frames = numbered(12, (24, 40)) + numbered(12, (30, 50))[::-1] + numbered(6, (24, 40))
    backend = TwoSlotBackend(delay_s=0.01)
    sink, stats = ListSink(), RunStats()
    runner = FrameRunner(backend)
    assert runner.in_flight == 2
    pipeline = Pipeline(FakeSource(frames, live=False), runner, lambda size: sink, stats)  # type: ignore[arg-type]
    pipeline.run(handle_signals=False)
    assert backend.max_in_flight == 2
    assert len(sink.frames) == 30 and stats.counts["frames_out"] == 30
    # The sink keeps the first size; the (30, 50) frames come back at their own size, then are resized by the sink.
    expected = [int(frame[0, 0, 0]) for frame in frames]
    assert [int(frame[0, 0, 0]) for frame in sink.frames] == expected
    assert len(stats.samples["infer"]) == 30


def test_frames_in_flight_are_not_held_back_by_a_slow_source() -> None:
    source = FakeSource(numbered(8), live=True, period_s=0.05)
    backend = TwoSlotBackend(delay_s=0.005)
    sink, stats = ListSink(), RunStats()
    Pipeline(source, FrameRunner(backend), lambda size: sink, stats).run(handle_signals=False)  # type: ignore[arg-type]
    assert len(sink.frames) == 8
    # End to end counts from the start of the 50 ms read; waiting for the next capture before collecting would add
    # another whole source period to every frame (~110 ms).
    assert stats.summary()["latency_ms"]["end_to_end"]["p50"] < 90


def test_warmup_frames_are_not_timed() -> None:
    _, stats = run_fake(FakeSource(numbered(10), live=False), SlowIdentity())
    stats_w = RunStats(warmup=4)
    Pipeline(FakeSource(numbered(10), live=False), FrameRunner(SlowIdentity()), lambda size: ListSink(), stats_w).run(
        handle_signals=False
    )
    assert len(stats.samples["infer"]) == 10 and 5 <= len(stats_w.samples["infer"]) <= 7
    assert "frames in 10, out 10" in stats_w.table()


# -- frames ---------------------------------------------------------------------------------------------------
def test_preprocessing_reuses_buffers_and_round_trips() -> None:
    processor = FrameProcessor("float", 8)
    frame = np.random.default_rng(0).integers(0, 256, (30, 45, 3), dtype=np.uint8)
    first = processor.prepare(frame)
    assert first.shape == (1, 3, 32, 48) and first.dtype == np.float32
    np.testing.assert_allclose(first[0, 0, :30, :45], frame[..., 2] / 255, atol=1e-6)  # RGB order
    np.testing.assert_array_equal(first[0, :, 30, :45], first[0, :, 28, :45])  # reflection
    assert np.array_equal(processor.finish(first.copy()), frame)
    again = processor.prepare(frame[::-1].copy())
    assert again is first and processor.allocations == 1
    processor.prepare(np.zeros((16, 16, 3), np.uint8))
    assert processor.allocations == 2


@pytest.mark.parametrize(("io", "dtype"), [("float", np.float32), ("float", np.float16), ("uint8", np.uint8)])
def test_preprocessing_writes_into_a_given_buffer(io: str, dtype: type) -> None:
    """A backend's own input buffer (Backend.input_buffer) takes the frame as the processor's own would."""
    processor = FrameProcessor(io, 8)
    frames = [np.random.default_rng(seed).integers(0, 256, (30, 45, 3), dtype=np.uint8) for seed in range(2)]
    out = np.empty(processor.input_shape((30, 45)), dtype)
    assert processor.prepare(frames[0], out) is out
    np.testing.assert_allclose(out, processor.prepare(frames[0]), atol=1e-3)
    batch = np.empty(processor.input_shape((30, 45), 2), dtype)
    assert processor.prepare_batch(frames, batch) is batch
    np.testing.assert_allclose(batch, processor.prepare_batch(frames), atol=1e-3)
    with pytest.raises(ValueError, match="out= has shape"):
        processor.prepare(frames[0], np.empty(processor.input_shape((16, 16)), dtype))


def test_uint8_io_only_pads() -> None:
    processor = FrameProcessor("uint8", 8)
    frame = np.random.default_rng(1).integers(0, 256, (5, 9, 3), dtype=np.uint8)
    batch = processor.prepare(frame)
    assert batch.shape == (1, 8, 16, 3) and batch.dtype == np.uint8
    assert np.array_equal(processor.finish(batch), frame)


@pytest.mark.parametrize("fit", ["tile", "resize"])
def test_frames_beyond_the_profile_are_tiled_or_resized(fit: str) -> None:
    backend = SlowIdentity(profile=Profile((8, 8), (32, 32), (32, 40)))
    frame = natural_like_image(70, 90, seed=2)
    out = FrameRunner(backend, fit).run(frame)
    assert out.shape == frame.shape
    if fit == "tile":
        assert np.array_equal(out, frame)
    else:
        assert psnr(out, frame) > 20
    with pytest.raises(DSRIRError, match="--fit resize or --fit tile"):
        FrameRunner(backend, "error").run(frame)


# -- TensorRT buffer / shape / profile logic, without TensorRT -----------------------------------------------------
def test_fit_frame_decisions() -> None:
    profile = Profile((64, 64), (256, 256), (512, 640))
    assert fit_frame((480, 640), 8, profile, "error").mode == "direct"
    assert padded_hw((30, 30), 8, profile) == (64, 64)  # below the minimum: padded up
    resized = fit_frame((1080, 1920), 8, profile, "resize")
    assert resized.mode == "resize" and resized.size[1] <= 640 and resized.size[0] <= 512
    assert abs(resized.size[1] / resized.size[0] - 1920 / 1080) < 0.02
    tiled = fit_frame((1080, 1920), 8, profile, "tile")
    assert tiled.size == (512, 640) and tiled.tiling is not None and len(tiled.tiling) == 3 * 4
    covered = np.zeros((1080, 1920), bool)
    for top, left in tiled.tiling.boxes():
        covered[top : top + 512, left : left + 640] = True
    assert covered.all()
    assert fit_frame((1080, 1920), 8, None, "error").mode == "direct"
    with pytest.raises(DSRIRError, match="--fit"):
        fit_frame((10, 10), 8, profile, "crop")


def test_plan_buffers_and_reallocation() -> None:
    plan = plan_buffers((720, 1280), np.float32, "nchw")
    assert plan.input_shape == (1, 3, 720, 1280) and plan.input_bytes == 3 * 720 * 1280 * 4
    small = plan_buffers((720, 1280), np.uint8, "nhwc")
    assert small.input_shape == (1, 720, 1280, 3) and small.output_bytes == 3 * 720 * 1280
    assert needs_realloc(None, plan) and not needs_realloc(plan, small) and needs_realloc(small, plan)
    assert isinstance(plan, BufferPlan)
    assert profile_from_shapes((1, 3, 64, 64), (1, 3, 720, 1280), (1, 3, 1088, 1920), "nchw").max_hw == (1088, 1920)
    assert profile_from_shapes((1, 64, 64, 3), (1, 72, 128, 3), (1, 1088, 1920, 3), "nhwc").opt_hw == (72, 128)
