"""Frame sinks for ``--output``: video files, numbered images, a display window, GStreamer, or nothing.

Sinks take BGR uint8 frames. Files appear only complete: video goes to a temporary file beside the target and is
renamed by ``close()``, which the pipeline calls on Ctrl-C too, so an interrupted run still plays. Every write is
checked (``dsrir.atomic``): an image's bytes are counted, the video writer must stay open, and a closed video is read
back (it opens, has frames, its last frame decodes) before it is published, so a full disk is an error naming the
file and the cause, never a file that does not play.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from pathlib import Path

import cv2
import numpy as np

from dsrir.atomic import publish, temporary_beside, write_bytes_atomic, write_error
from dsrir.errors import DSRIRError
from dsrir.paths import InputSet, refuse_overwriting_inputs
from runtime.frame_io import FrameSink
from runtime.opencv_build import gstreamer_error, opencv_has_gstreamer, opencv_has_gui
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
# Free space below which a video that does not read back is put down to a full disk (FFmpeg writes in 32 KiB blocks).
FULL_DISK_MARGIN = 1 << 20


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
    With no frame written, ``close()`` leaves no file (an empty container does not play). ``close()`` reads the
    file back before publishing it; one that does not play is a ``DSRIRError`` and nothing is published.
    """

    def __init__(
        self, path: str | os.PathLike[str], fps: float, size: tuple[int, int], inputs: InputSet | None = None
    ) -> None:
        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.frames_written = 0
        self._closed = False
        self._failed = False
        self._warned_resize = False
        suffix = self.path.suffix.lower()
        if suffix not in CODECS:
            raise DSRIRError(f"--output {str(path)!r}: unsupported video extension; use one of {', '.join(CODECS)}")
        if inputs is not None:
            refuse_overwriting_inputs([("--output", self.path)], inputs)
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
        if not self._writer.isOpened():
            self._failed = True
            raise write_error(self.path, RuntimeError("OpenCV's video writer closed while writing"))
        self.frames_written += 1

    def close(self) -> None:
        """Finish, read back and publish the file; after a failed write, remove it and publish nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            self._writer.release()
            if self._failed:
                return
            if not self.frames_written:
                log.warning("%s: no frames written; no file created", self.path)
                return
            self._check_playable()
            publish(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)

    def _check_playable(self) -> None:
        """The container must open, count frames and decode the last one written: OpenCV's writer ignores write
        errors, so a full disk otherwise leaves a file without its index ("moov atom not found")."""
        problem = unplayable(self._tmp, self.frames_written)
        if problem is not None:
            cause = RuntimeError(f"the video does not read back: {problem}")
            raise write_error(self.path, cause, need=FULL_DISK_MARGIN)


def unplayable(path: Path, frames: int) -> str | None:
    """Why OpenCV cannot play ``path`` back (``None`` when it opens, counts frames and its frame ``frames`` decodes).

    FFmpeg reads it where OpenCV has FFmpeg (the runtime's file sources do too); another backend otherwise."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        for api in (cv2.CAP_FFMPEG, cv2.CAP_ANY):
            capture = cv2.VideoCapture(str(path), api)
            try:
                if capture.isOpened():
                    return _read_back(capture, frames)
            finally:
                capture.release()
        return "the container does not open"
    finally:
        cv2.utils.logging.setLogLevel(level)


def _read_back(capture: cv2.VideoCapture, frames: int) -> str | None:
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    if count <= 0:
        return "the container holds no frames"
    last = min(count, frames) - 1
    if last > 0:
        capture.set(cv2.CAP_PROP_POS_FRAMES, last)
    ok, _ = capture.read()
    return None if ok else f"frame {last + 1} of {frames} does not decode"


class ImageFolderSink(FrameSink):
    """Images, each written atomically (bytes checked), at their own size.

    A folder gets each frame under the name of the input image it came from when ``names`` (the source's paths in
    the order it delivered them) is given, else numbered ``%06d.png``; a pattern such as ``out/%06d.jpg`` is always
    numbered. ``inputs`` re-checks every target, so no frame lands on an input file.
    """

    def __init__(
        self,
        location: str,
        start: int = 0,
        names: deque[Path] | None = None,
        inputs: InputSet | None = None,
    ) -> None:
        self.numbered = "%" in location or names is None
        if "%" in location:
            self.pattern = location
            self.folder = Path(location).parent
        else:
            self.folder = Path(location)
            self.pattern = str(self.folder / "%06d.png")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DSRIRError(f"{self.folder}: could not create the output folder: {exc.strerror or exc}") from exc
        self.description = f"images {self.pattern}" if self.numbered else f"images {self.folder}/ (input names)"
        self.frames_written = 0
        self._next = start
        self._names = names
        self._inputs = inputs

    def _target(self) -> Path:
        if not self.numbered and self._names:
            return self.folder / self._names.popleft().name
        return Path(self.pattern % self._next)

    def write(self, frame: np.ndarray) -> None:
        _check_frame(frame)
        path = self._target()
        ok, encoded = cv2.imencode(path.suffix.lower(), frame)  # BGR in, as OpenCV expects
        if not ok:
            raise DSRIRError(f"{path}: OpenCV could not encode {path.suffix} images")
        write_bytes_atomic(path, encoded, inputs=self._inputs)
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


def open_sink(
    spec: SinkSpec,
    fps: float,
    size: tuple[int, int],
    headless: bool = False,
    names: deque[Path] | None = None,
    inputs: InputSet | None = None,
) -> FrameSink:
    """Open what ``spec`` names; ``size`` is (width, height) as OpenCV's VideoWriter takes it.

    ``names`` (an image source's paths as delivered) makes an image folder keep the input names; ``inputs`` are
    re-checked so no file lands on an input (the CLI has already refused overlaps it could see up front)."""
    if spec.kind == "none":
        return NullSink()
    if spec.kind == "file":
        return VideoFileSink(spec.location, fps, size, inputs=inputs)
    if spec.kind == "images":
        return ImageFolderSink(spec.location, names=names, inputs=inputs)
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
