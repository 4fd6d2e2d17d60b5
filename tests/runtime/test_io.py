"""runtime.sources / runtime.sinks / runtime.uri: URI parsing, frame-exact reads, reconnects, atomic and checked
writers (a video is read back before it is published), image folders that keep names and sizes."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from dsrir.errors import DSRIRError
from dsrir.paths import InputSet
from runtime import sinks, sources
from runtime.opencv_build import opencv_has_gstreamer
from runtime.sinks import NullSink, VideoFileSink, open_sink, parse_output
from runtime.sources import (
    FrameSource,
    ImageFolderSource,
    ReconnectingSource,
    SourceSpec,
    VideoCaptureSource,
    csi_pipeline,
    demo_clip_path,
    open_source,
    parse_input,
)
from runtime.uri import INPUT_FORMS, OUTPUT_FORMS, input_paths, output_paths
from tests.conftest import read_video
from tests.paths import REPO


def _frames(count: int, height: int = 48, width: int = 64, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def _write_lossless(path: Path, frames: list[np.ndarray], fps: float = 12.0) -> None:
    """FFV1 is lossless, so the read-back can be compared pixel for pixel."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"FFV1"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


# --- parsing ---------------------------------------------------------------------------------------------------


def _parses_as(parse: Callable[[Any], object], spec: Callable[[str, str], object], cases: dict[Any, Any]) -> None:
    """Every text in ``cases`` parses to ``spec(kind, location)`` of its ``(kind, location)``."""
    for text, (kind, location) in cases.items():
        assert parse(text) == spec(kind, location), text


def _refused_with_the_listing(parse: Callable[[str], object], flag: str, bad: str, forms: str) -> None:
    """``parse(bad)`` refuses in one line that starts with the flag and the value and lists the accepted forms."""
    with pytest.raises(DSRIRError) as info:
        parse(bad)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{flag} {bad!r}") and forms in message


def test_parse_input_accepts_every_documented_form(tmp_path: Path) -> None:
    clip = tmp_path / "a.mp4"
    clip.write_bytes(b"x")
    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "0001.png"), _frames(1)[0])
    cases = {
        "cam0": ("camera", "0"),
        "cam12": ("camera", "12"),
        "/dev/video2": ("camera", "/dev/video2"),
        "v4l2:///dev/video1": ("camera", "/dev/video1"),
        "csi0": ("csi", "0"),
        "csi://1": ("csi", "1"),
        str(clip): ("file", str(clip)),
        f"file://{clip}": ("file", str(clip)),
        "rtsp://cam.local:8554/live": ("stream", "rtsp://cam.local:8554/live"),
        "http://host/v.mjpg": ("stream", "http://host/v.mjpg"),
        "https://host/v.m3u8": ("stream", "https://host/v.m3u8"),
        str(tmp_path / "frames"): ("images", str(tmp_path / "frames")),
        str(tmp_path / "frames" / "*.png"): ("images", str(tmp_path / "frames" / "*.png")),
        "gst:videotestsrc ! appsink": ("gst", "videotestsrc ! appsink"),
        "demo": ("demo", str(demo_clip_path())),
    }
    _parses_as(parse_input, SourceSpec, cases)
    assert parse_input("cam0").live and parse_input("csi://0").live and parse_input("gst:x").live
    assert not parse_input("demo").live and not parse_input(str(clip)).live


@pytest.mark.parametrize("bad", ["", "webcam", "ftp://x/y", "v4l2://video0", "gst:", "csi://a", "nowhere/clip.mp4"])
def test_parse_input_rejects_with_the_listing(bad: str) -> None:
    _refused_with_the_listing(parse_input, "--input", bad, INPUT_FORMS)


def test_parse_input_says_a_missing_path_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(DSRIRError, match="does not exist"):
        parse_input(str(tmp_path / "missing.mp4"))
    with pytest.raises(DSRIRError, match="matches no image files"):
        parse_input(str(tmp_path / "*.png"))


def test_parse_output_accepts_every_documented_form() -> None:
    cases = {
        None: ("none", ""),
        "none": ("none", ""),
        "display://0": ("display", "0"),
        "display://1": ("display", "1"),
        "rtsp://0.0.0.0:8554/out": ("stream", "rtsp://0.0.0.0:8554/out"),
        "gst:appsrc ! fakesink": ("gst", "appsrc ! fakesink"),
        "out/x.mp4": ("file", "out/x.mp4"),
        "out/x.AVI": ("file", "out/x.AVI"),
        "file://out/x.mkv": ("file", "out/x.mkv"),
        "out/frames/": ("images", "out/frames/"),
        "out/frames": ("images", "out/frames"),
        "out/f_%06d.png": ("images", "out/f_%06d.png"),
        "out/%d.jpg": ("images", "out/%d.jpg"),
    }
    _parses_as(parse_output, sinks.SinkSpec, cases)


@pytest.mark.parametrize("bad", ["out.mov", "out/%s.png", "out/%06d", "ftp://x", "gst:", "x.png"])
def test_parse_output_rejects_with_the_listing(bad: str) -> None:
    _refused_with_the_listing(parse_output, "--output", bad, OUTPUT_FORMS)


# --- sources ---------------------------------------------------------------------------------------------------


def test_video_file_reads_back_frame_exact(tmp_path: Path) -> None:
    frames = _frames(9)
    clip = tmp_path / "clip.avi"
    _write_lossless(clip, frames, fps=12.0)
    with open_source(parse_input(str(clip))) as source:
        assert isinstance(source, VideoCaptureSource) and not source.live
        assert source.frame_count == 9 and source.fps == pytest.approx(12.0)
        got = list(source)
    assert len(got) == 9 and source.skipped_frames == 0
    for expected, actual in zip(frames, got):
        assert actual.dtype == np.uint8 and actual.shape == (48, 64, 3)
        np.testing.assert_array_equal(actual, expected)


def test_loop_rewinds_a_file(tmp_path: Path) -> None:
    frames = _frames(4)
    clip = tmp_path / "clip.avi"
    _write_lossless(clip, frames)
    source = open_source(parse_input(str(clip)), loop=True)
    got = [source.read() for _ in range(10)]
    source.close()
    source.close()
    for i, frame in enumerate(got):
        assert frame is not None
        np.testing.assert_array_equal(frame, frames[i % 4])
    assert source.read() is None


def test_image_folder_skips_a_corrupt_image(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    frames = _frames(3)
    for i, name in ((0, "f1.png"), (1, "f2.png"), (2, "f10.png")):
        cv2.imwrite(str(tmp_path / name), frames[i])
    (tmp_path / "f3.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored")
    source = open_source(parse_input(str(tmp_path)), rate=8.0)
    assert isinstance(source, ImageFolderSource) and source.fps == 8.0 and source.frame_count == 4
    with caplog.at_level(logging.WARNING):
        got = list(source)
    assert len(got) == 3 and source.skipped_frames == 1 and "f3.png" in caplog.text
    for expected, actual in zip(frames, got):  # natural order: f1, f2, (f3 skipped), f10
        np.testing.assert_array_equal(actual, expected)
    globbed = open_source(parse_input(str(tmp_path / "f1*.png")))
    assert globbed.frame_count == 2


class _FakeSource(FrameSource):
    """Delivers ``good`` frames then fails (read returns None), like a camera that unplugs."""

    def __init__(self, good: int, value: int) -> None:
        self.live, self.description, self.fps = True, "fake camera", 30.0
        self.good, self.value, self.closed = good, value, False

    def read(self) -> np.ndarray | None:
        if self.good == 0:
            return None
        self.good -= 1
        return np.full((4, 4, 3), self.value, np.uint8)

    def close(self) -> None:
        self.closed = True


def test_reconnecting_source_recovers_after_two_failures() -> None:
    """The stream dies twice; each time one reopen succeeds, and the last source keeps going."""
    opened = [_FakeSource(2, 0), _FakeSource(2, 1), _FakeSource(50, 2)]
    sleeps: list[float] = []
    source = ReconnectingSource(lambda: opened.pop(0), reconnect=3, backoff_s=0.5, sleep=sleeps.append)
    values = [int(source.read()[0, 0, 0]) for _ in range(10)]  # type: ignore[index]
    assert values == [0, 0, 1, 1, 2, 2, 2, 2, 2, 2]
    assert source.reconnects == 2 and source.failed_reopens == 0 and sleeps == [0.5, 0.5]


def test_reconnecting_source_backs_off_then_gives_up(caplog: pytest.LogCaptureFixture) -> None:
    calls = {"n": 0}

    def opener() -> FrameSource:
        calls["n"] += 1
        if calls["n"] == 1:
            return _FakeSource(1, 7)
        if calls["n"] in (2, 3):
            raise OSError("device busy")
        return _FakeSource(1, 9)  # recovers on the third attempt

    sleeps: list[float] = []
    source = ReconnectingSource(opener, reconnect=3, backoff_s=1.0, max_backoff_s=1.5, sleep=sleeps.append)
    assert source.read()[0, 0, 0] == 7  # type: ignore[index]
    assert source.read()[0, 0, 0] == 9  # type: ignore[index]
    assert sleeps == [1.0, 1.5, 1.5] and source.failed_reopens == 2 and source.reconnects == 1

    dead = ReconnectingSource(lambda: _FakeSource(0, 0), first=_FakeSource(1, 3), reconnect=2, sleep=sleeps.append)
    with caplog.at_level(logging.WARNING):
        assert dead.read() is not None
        assert dead.read() is None and dead.read() is None
    assert dead.ended and dead.reconnects == 2 and "gave up after 2" in caplog.text


def test_missing_camera_lists_devices() -> None:
    found = sources.video_devices()
    with pytest.raises(DSRIRError) as info:
        open_source(parse_input("cam7"))
    message = str(info.value)
    assert "\n" not in message and "/dev/video7" in message
    if not found:
        assert "none found" in message


@pytest.mark.skipif(opencv_has_gstreamer(), reason="this OpenCV has GStreamer")
@pytest.mark.parametrize("text", ["csi://0", "gst:videotestsrc ! appsink"])
def test_gstreamer_inputs_explain_without_gstreamer(text: str) -> None:
    with pytest.raises(DSRIRError, match="GStreamer") as info:
        open_source(parse_input(text))
    assert "\n" not in str(info.value) and "JetPack" in str(info.value)


def test_csi_pipeline_string() -> None:
    pipeline = csi_pipeline(1, 1920, 1080, 29.97)
    assert pipeline.startswith("nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM)")
    assert "width=(int)1920, height=(int)1080" in pipeline and "framerate=(fraction)2997/100" in pipeline
    assert "nvvidconv" in pipeline and pipeline.endswith("appsink drop=true max-buffers=1")


def test_demo_clip_exists_small_and_opens() -> None:
    path = demo_clip_path()
    assert path.is_file() and path.stat().st_size < 2 * 1024 * 1024
    with open_source(parse_input("demo")) as source:
        first = source.read()
        assert first is not None and first.shape == (360, 640, 3)
        assert source.frame_count is not None and 60 <= source.frame_count <= 125
        assert source.fps is not None and 15 <= source.fps <= 25


def test_runtime_never_imports_torch() -> None:
    code = "import sys, runtime.sources, runtime.sinks, runtime.uri; sys.exit('torch' in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# --- sinks -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.mp4", "out.avi", "out.mkv"])
def test_video_file_sink_writes_a_playable_file(tmp_path: Path, name: str) -> None:
    frames = _frames(7)
    sink = open_sink(parse_output(str(tmp_path / name)), fps=15.0, size=(64, 48))
    assert isinstance(sink, VideoFileSink) and sink.codec in sink.description
    assert sink.codec == "MJPG" if name.endswith(".avi") else sink.codec in ("avc1", "mp4v")
    for frame in frames:
        sink.write(frame)
    assert not (tmp_path / name).exists()  # only the temporary file so far
    sink.close()
    sink.close()
    got = read_video(tmp_path / name)
    assert len(got) == 7 and got[0].shape == (48, 64, 3) and sink.frames_written == 7
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_interrupted_writer_leaves_n_frames_and_handles_size_changes(tmp_path: Path) -> None:
    path = tmp_path / "run.mp4"
    sink = VideoFileSink(path, fps=10.0, size=(64, 48))
    for frame in _frames(3) + _frames(2, height=96, width=128):  # the source changed size mid-stream
        sink.write(frame)
    sink.close()  # what the pipeline does on Ctrl-C
    got = read_video(path)
    assert len(got) == 5 and all(f.shape == (48, 64, 3) for f in got)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.mp4"]


def test_video_file_sink_without_frames_leaves_nothing(tmp_path: Path) -> None:
    VideoFileSink(tmp_path / "empty.avi", fps=10.0, size=(64, 48)).close()
    assert list(tmp_path.iterdir()) == []


def test_image_folder_sink_numbers_frames(tmp_path: Path) -> None:
    frames = _frames(3)
    sink = open_sink(parse_output(str(tmp_path / "out") + "/"), fps=10.0, size=(64, 48))
    for frame in frames:
        sink.write(frame)
    sink.close()
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["000000.png", "000001.png", "000002.png"]
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "out" / "000002.png")), frames[2])  # BGR kept
    pattern = open_sink(parse_output(str(tmp_path / "p_%03d.jpg")), fps=10.0, size=(64, 48))
    pattern.write(frames[0])
    assert (tmp_path / "p_000.jpg").is_file()


def test_a_video_that_does_not_read_back_is_an_error_and_is_not_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenCV's writer ignores write errors (a full disk): the closed file is read back before it is published."""
    path = tmp_path / "out.mp4"
    path.write_bytes(b"an earlier run")
    sink = VideoFileSink(path, fps=10.0, size=(64, 48))
    for frame in _frames(3):
        sink.write(frame)
    monkeypatch.setattr(sinks, "unplayable", lambda tmp, frames: "the container does not open")
    with pytest.raises(DSRIRError) as info:
        sink.close()
    assert str(info.value).startswith(f"{path}: could not write: ") and "does not read back" in str(info.value)
    assert path.read_bytes() == b"an earlier run" and [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    sink.close()  # idempotent, raises once


def test_unplayable_names_what_is_wrong(tmp_path: Path) -> None:
    good = tmp_path / "good.avi"
    _write_lossless(good, _frames(4))
    assert sinks.unplayable(good, 4) is None
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes((tmp_path / "good.avi").read_bytes()[:200])
    assert sinks.unplayable(truncated, 4) is not None


def test_image_folder_sink_keeps_the_input_names_and_sizes(tmp_path: Path) -> None:
    names = deque([Path("in/small.png"), Path("in/b.jpg")])
    sink = open_sink(parse_output(str(tmp_path / "out") + "/"), fps=10.0, size=(64, 48), names=names)
    assert "input names" in sink.description
    sink.write(_frames(1, height=5, width=7)[0])
    sink.write(_frames(1, height=30, width=20)[0])
    assert cv2.imread(str(tmp_path / "out" / "small.png")).shape == (5, 7, 3)
    assert cv2.imread(str(tmp_path / "out" / "b.jpg")).shape == (30, 20, 3)
    assert not names


def test_image_folder_sink_rechecks_every_file_against_the_inputs(tmp_path: Path) -> None:
    """A pattern's later names are only known at write time (``--input-loop``): each is checked before writing."""
    (tmp_path / "000001.png").write_bytes(b"input")
    inputs = InputSet([tmp_path / "000001.png"])
    sink = sinks.ImageFolderSink(str(tmp_path / "%06d.png"), inputs=inputs)
    sink.write(_frames(1)[0])
    with pytest.raises(DSRIRError, match="is the input"):
        sink.write(_frames(1)[0])
    assert (tmp_path / "000001.png").read_bytes() == b"input"


def test_output_paths_are_known_before_the_run(tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(frames / name), _frames(1)[0])
    source = parse_input(str(frames))
    assert input_paths(source) == [frames, frames / "a.png", frames / "b.png"]
    out = tmp_path / "out"
    assert output_paths(parse_output(f"{out}/"), source) == [out, out / "a.png", out / "b.png"]
    assert output_paths(parse_output(f"{out}/f%02d.jpg"), source) == [out, out / "f00.jpg", out / "f01.jpg"]
    assert output_paths(parse_output(str(tmp_path / "x.mp4")), source) == [tmp_path / "x.mp4"]
    assert output_paths(parse_output("display://0"), source) == []
    (tmp_path / "other").mkdir()
    cv2.imwrite(str(tmp_path / "other" / "a.png"), _frames(1)[0])
    both = parse_input(str(tmp_path / "*" / "a.png"))
    with pytest.raises(DSRIRError, match="several images are named a.png"):
        output_paths(parse_output(f"{out}/"), both)
    assert len(output_paths(parse_output(f"{out}/%03d.png"), both)) == 3  # numbered: no clash


def test_display_headless_becomes_null(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    for headless in (True, False):
        with caplog.at_level(logging.WARNING):
            sink = open_sink(parse_output("display://0"), fps=10.0, size=(64, 48), headless=headless)
        assert isinstance(sink, NullSink) and sink.description == "display://0 skipped: no display (headless)"
        sink.write(_frames(1)[0])
        assert sink.frames_written == 1
    assert "display://0 skipped: no display (headless)" in caplog.text
    assert isinstance(open_sink(parse_output(None), fps=1.0, size=(8, 8)), NullSink)


@pytest.mark.skipif(opencv_has_gstreamer(), reason="this OpenCV has GStreamer")
@pytest.mark.parametrize("text", ["rtsp://0.0.0.0:8554/out", "gst:appsrc ! fakesink"])
def test_gstreamer_outputs_explain_without_gstreamer(text: str) -> None:
    with pytest.raises(DSRIRError, match="GStreamer") as info:
        open_sink(parse_output(text), fps=10.0, size=(64, 48))
    assert "\n" not in str(info.value)


def test_rain_degrader_draws_near_vertical_streaks() -> None:
    from runtime.video import degrader

    rain = degrader("rain", seed=3)
    assert rain is not None
    flat = np.full((240, 320, 3), 60, np.uint8)
    streaks = rain(flat).astype(np.float32).mean(axis=2) - 60
    assert streaks.min() >= 0 and 0.01 < (streaks > 5).mean() < 0.4
    centred = streaks - streaks.mean()
    along = (centred[1:, :] * centred[:-1, :]).mean()  # neighbours one row apart: same streak at ~80 degrees
    across = (centred[:, 1:] * centred[:, :-1]).mean()
    assert along > 2 * across


def test_haze_degrader_lowers_contrast_toward_the_airlight() -> None:
    from runtime.video import degrader

    haze = degrader("haze")
    assert haze is not None
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 120, (120, 160, 3), dtype=np.uint8)
    hazy = haze(frame).astype(np.float32)
    assert hazy.std() < 0.8 * frame.std() and hazy.mean() > frame.mean() + 20
    assert np.abs(hazy - 0.8 * 255).mean() < np.abs(frame.astype(np.float32) - 0.8 * 255).mean()
