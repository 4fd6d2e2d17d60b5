"""Frame sinks for ``--output``: video files, numbered images, a display window, GStreamer, or nothing.

Sinks take BGR uint8 frames. Files appear only complete: video goes to a temporary file beside the target
and is renamed by ``close()``, which the pipeline calls on Ctrl-C too, so an interrupted run still plays.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from dsrir.atomic import atomic_path, temporary_beside
from dsrir.errors import DSRIRError
from runtime.sources import gstreamer_error, opencv_has_gstreamer, opencv_has_gui
from runtime.uri import SinkSpec, parse_output

__all__ = [
    "DisplaySink",
    "FrameSink",
    "ImageFolderSink",
    "NullSink",
    "SinkSpec",
    "VideoFileSink",
    "open_sink",
    "parse_output",
]

log = logging.getLogger(__name__)

# Tried in order; the first that opens wins. avc1 (H.264) needs an encoder the PyPI wheel lacks.
CODECS = {".mp4": ("avc1", "mp4v"), ".avi": ("MJPG",), ".mkv": ("avc1", "mp4v", "MJPG")}
HEADLESS_MESSAGE = "display://{} skipped: no display (headless)"


def _check_frame(frame: np.ndarray) -> None:
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"sinks take BGR uint8 H x W x 3 frames, got {frame.dtype} {frame.shape}")


def _fit(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` (width, height) when it differs: a mid-stream size change must not end the file."""
    width, height = size
    if frame.shape[1] == width and frame.shape[0] == height:
        return frame
    shrink = frame.shape[1] * frame.shape[0] > width * height
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class FrameSink:
    """Base of every sink: ``write()`` BGR uint8 frames, then ``close()`` (idempotent) to finish."""

    description: str = ""
    frames_written: int = 0

    def write(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the output; safe to call twice."""

    def __enter__(self) -> FrameSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NullSink(FrameSink):
    """Counts frames and drops them: for benchmarks, and for a display on a headless machine."""

    def __init__(self, description: str = "none") -> None:
        self.description = description
        self.frames_written = 0

    def write(self, frame: np.ndarray) -> None:
        self.frames_written += 1


class VideoFileSink(FrameSink):
    """A .mp4/.avi/.mkv file written atomically; the codec is the first in ``CODECS`` that opens.

    Frames of another size are resized to the writer's ``size`` (width, height), fixed by the first call.
    With no frame written, ``close()`` leaves no file (an empty container does not play).
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.frames_written = 0
        self._closed = False
        self._warned_resize = False
        suffix = self.path.suffix.lower()
        if suffix not in CODECS:
            raise DSRIRError(f"--output {str(path)!r}: unsupported video extension; use one of {', '.join(CODECS)}")
        self._tmp = temporary_beside(self.path, f".tmp{suffix}")
        self.codec, self._writer = self._open_writer(CODECS[suffix])
        self.description = f"file {self.path} ({self.codec}, {self.size[0]}x{self.size[1]} @ {self.fps:g} fps)"

    def _open_writer(self, codecs: tuple[str, ...]) -> tuple[str, cv2.VideoWriter]:
        for codec in codecs:
            writer = _quiet_video_writer(str(self._tmp), codec, self.fps, self.size)
            if writer.isOpened():
                log.info("%s: writing with codec %s", self.path, codec)
                return codec, writer
            writer.release()
        self._tmp.unlink(missing_ok=True)
        raise DSRIRError(f"--output {str(self.path)!r}: OpenCV could not open a writer with {', '.join(codecs)}")

    def write(self, frame: np.ndarray) -> None:
        if self._closed:
            raise ValueError(f"{self.path}: write after close")
        _check_frame(frame)
        fitted = _fit(frame, self.size)
        if fitted is not frame and not self._warned_resize:
            self._warned_resize = True
            log.warning("%s: frame %dx%d resized to %dx%d", self.path, frame.shape[1], frame.shape[0], *self.size)
        self._writer.write(fitted)
        self.frames_written += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.release()
        try:
            if self.frames_written:
                os.replace(self._tmp, self.path)
            else:
                log.warning("%s: no frames written; no file created", self.path)
        finally:
            self._tmp.unlink(missing_ok=True)


class ImageFolderSink(FrameSink):
    """Numbered images (PNG unless the pattern says otherwise), each written atomically."""

    def __init__(self, location: str, start: int = 0) -> None:
        if "%" in location:
            self.pattern = location
        else:
            self.pattern = str(Path(location) / "%06d.png")
        Path(self.pattern).parent.mkdir(parents=True, exist_ok=True)
        self.description = f"images {self.pattern}"
        self.frames_written = 0
        self._next = start

    def write(self, frame: np.ndarray) -> None:
        _check_frame(frame)
        path = Path(self.pattern % self._next)
        ok, encoded = cv2.imencode(path.suffix.lower(), frame)  # BGR in, as OpenCV expects
        if not ok:
            raise DSRIRError(f"--output {self.pattern!r}: OpenCV could not encode {path.suffix} images")
        with atomic_path(path) as tmp:
            encoded.tofile(tmp)
        self._next += 1
        self.frames_written += 1


class DisplaySink(FrameSink):
    """An OpenCV window; ``quit_requested`` turns true when the user presses q or Esc in it."""

    def __init__(self, display: str = "0", title: str = "DSRIR Edge") -> None:
        self.title = title
        self.description = f"display://{display}"
        self.frames_written = 0
        self.quit_requested = False
        self._open = True

    def write(self, frame: np.ndarray) -> None:
        _check_frame(frame)
        cv2.imshow(self.title, frame)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.quit_requested = True
        self.frames_written += 1

    def close(self) -> None:
        if self._open:
            self._open = False
            cv2.destroyWindow(self.title)


def display_available() -> bool:
    """A window needs GUI support in OpenCV and a display server to talk to."""
    has_server = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or os.name == "nt"
    return has_server and opencv_has_gui()


def stream_pipeline(url: str, fps: float, bitrate_kbps: int = 4000) -> str:
    """Push H.264 to an existing RTSP server (e.g. mediamtx) with rtspclientsink; nvv4l2h264enc on Jetson."""
    if Path("/etc/nv_tegra_release").exists():
        encoder = f"nvvidconv ! nvv4l2h264enc bitrate={bitrate_kbps * 1000} insert-sps-pps=true ! h264parse"
    else:
        encoder = f"x264enc tune=zerolatency speed-preset=ultrafast bitrate={bitrate_kbps} ! h264parse"
    return f"appsrc ! videoconvert ! {encoder} ! rtspclientsink location={url}"


class GStreamerSink(FrameSink):
    """A VideoWriter on a GStreamer pipeline starting with appsrc (needs a GStreamer-enabled OpenCV)."""

    def __init__(self, pipeline: str, fps: float, size: tuple[int, int], description: str) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.description = description
        self.frames_written = 0
        self._closed = False
        self._writer = cv2.VideoWriter(pipeline, cv2.CAP_GSTREAMER, 0, float(fps), self.size)
        if not self._writer.isOpened():
            raise DSRIRError(f"--output {description!r}: GStreamer could not start the pipeline: {pipeline}")

    def write(self, frame: np.ndarray) -> None:
        _check_frame(frame)
        self._writer.write(_fit(frame, self.size))
        self.frames_written += 1

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._writer.release()


def _quiet_video_writer(path: str, codec: str, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """Try one codec with OpenCV's log muted: a codec that is not there is expected, not an error to print."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        return cv2.VideoWriter(path, cv2.VideoWriter.fourcc(*codec), fps, size)
    finally:
        cv2.utils.logging.setLogLevel(level)


def open_sink(spec: SinkSpec, fps: float, size: tuple[int, int], headless: bool = False) -> FrameSink:
    """Open what ``spec`` names; ``size`` is (width, height) as OpenCV's VideoWriter takes it."""
    if spec.kind == "none":
        return NullSink()
    if spec.kind == "file":
        return VideoFileSink(spec.location, fps, size)
    if spec.kind == "images":
        return ImageFolderSink(spec.location)
    if spec.kind == "display":
        if headless or not display_available():
            message = HEADLESS_MESSAGE.format(spec.location)
            log.warning(message)
            return NullSink(message)
        return DisplaySink(spec.location)
    if spec.kind in ("stream", "gst"):
        value = spec.location if spec.kind == "stream" else f"gst:{spec.location}"
        if not opencv_has_gstreamer():
            raise gstreamer_error("--output", value)
        pipeline = stream_pipeline(spec.location, fps) if spec.kind == "stream" else spec.location
        return GStreamerSink(pipeline, fps, size, value)
    raise DSRIRError(f"sink kind {spec.kind!r}: expected file, images, display, stream, gst or none")
