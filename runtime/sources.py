"""Frame sources for ``--input``: cameras, CSI sensors, files, streams, image folders, GStreamer and the demo clip.

Every source yields BGR uint8 H x W x 3 frames and ``None`` at the end. Live sources are wrapped in a
``ReconnectingSource`` so a camera or stream hiccup costs a pause instead of the run.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from dsrir.errors import DSRIRError
from runtime.frame_io import FrameSource
from runtime.opencv_build import gstreamer_error, opencv_has_gstreamer
from runtime.uri import SourceSpec, demo_clip_path, image_files, parse_input

__all__ = [
    "FrameSource",
    "ImageFolderSource",
    "ReconnectingSource",
    "SourceSpec",
    "VideoCaptureSource",
    "csi_pipeline",
    "demo_clip_path",
    "open_source",
    "parse_input",
    "video_devices",
]

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0
MAX_CONSECUTIVE_SKIPS = 5  # grab failures in a row inside a file before we call it the end
OPEN_TIMEOUT_MS = 5000  # FFmpeg streams: never hang on a dead host
APPSINK = "appsink drop=true max-buffers=1"


def video_devices() -> list[str]:
    """V4L2 devices present now, for error messages that say what could have been opened."""
    return sorted(glob.glob("/dev/video*"), key=lambda p: int(re.sub(r"\D", "", p) or 0))


def csi_pipeline(sensor_id: int, width: int = 1280, height: int = 720, rate: float = 30.0) -> str:
    """nvarguscamerasrc -> NVMM NV12 -> nvvidconv BGRx -> videoconvert BGR -> appsink, dropping stale frames."""
    fps = Fraction(rate).limit_denominator(1001)
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM), width=(int){width}, height=(int){height}, "
        f"framerate=(fraction){fps.numerator}/{fps.denominator}, format=(string)NV12 ! "
        "nvvidconv ! video/x-raw, format=(string)BGRx ! videoconvert ! video/x-raw, format=(string)BGR ! "
        f"{APPSINK}"
    )


def rtsp_pipeline(url: str, latency_ms: int | None) -> str:
    """rtspsrc with a jitter-buffer latency (ms), decoded to BGR for appsink."""
    latency = f" latency={latency_ms}" if latency_ms is not None else ""
    return f"rtspsrc location={url}{latency} ! decodebin ! videoconvert ! video/x-raw, format=(string)BGR ! {APPSINK}"


def gst_source_pipeline(pipeline: str) -> str:
    """A user pipeline gets a BGR appsink appended when it does not end in one."""
    if "appsink" in pipeline:
        return pipeline
    return f"{pipeline} ! videoconvert ! video/x-raw, format=(string)BGR ! {APPSINK}"


def _as_bgr(frame: np.ndarray) -> np.ndarray:
    """Gray or BGRA captures become BGR uint8 so every consumer sees one layout."""
    if frame.dtype != np.uint8:
        frame = cv2.convertScaleAbs(frame, alpha=255.0 / max(float(np.iinfo(frame.dtype).max), 1.0))
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


class VideoCaptureSource(FrameSource):
    """OpenCV VideoCapture over a camera index/device, file, URL or GStreamer pipeline.

    On a file, a failed grab before the known frame count is skipped and counted (a damaged packet); after
    ``MAX_CONSECUTIVE_SKIPS`` in a row the file is taken to end there (truncated), and every frame its container still
    counts is skipped too. The end of the file ends the stream or, with ``loop``, rewinds to the first frame.
    """

    def __init__(
        self,
        target: str | int,
        api: int = cv2.CAP_ANY,
        *,
        live: bool,
        description: str,
        loop: bool = False,
        params: list[int] | None = None,
        width: int | None = None,
        height: int | None = None,
        rate: float | None = None,
    ) -> None:
        self.description = description
        self.live = live
        self.loop = loop and not live
        self.skipped_frames = 0
        self._delivered = 0  # frames delivered in the current pass over a file
        self._pass_skipped = 0  # and frames skipped in it
        self._closed = False
        self._cap = cv2.VideoCapture(target, api, params or [])
        if not self._cap.isOpened():
            self._cap.release()
            raise DSRIRError(f"{description}: OpenCV could not open it")
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height)):
            if value is not None:
                self._cap.set(prop, value)
        if rate is not None:
            self._cap.set(cv2.CAP_PROP_FPS, rate)
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if 0 < fps < 1000 else None
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 and not live else None

    def read(self) -> np.ndarray | None:
        if self._closed:
            return None
        failures = 0
        while True:
            ok, frame = self._cap.read()
            if ok and frame is not None:
                self._delivered += 1
                return _as_bgr(frame)
            if self.live:
                return None
            missing = (self.frame_count or 0) - self._delivered - self._pass_skipped
            if missing > 0 and failures < MAX_CONSECUTIVE_SKIPS:
                failures += 1
                self._skip(1)
                log.warning("%s: skipped an unreadable frame", self.description)
                continue
            if missing > 0:  # gave up inside the file: the frames it still counts never come
                self._skip(missing)
                log.warning("%s: ends %d frame(s) before its frame count (truncated?)", self.description, missing)
            if self.loop and self._delivered > 0 and self._rewind():
                failures = 0
                continue
            return None

    def _skip(self, frames: int) -> None:
        self._pass_skipped += frames
        self.skipped_frames += frames

    def _rewind(self) -> bool:
        self._delivered = self._pass_skipped = 0
        return bool(self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._cap.release()


class ImageFolderSource(FrameSource):
    """Sorted images from a folder or glob; an unreadable image is skipped and counted, never fatal."""

    def __init__(self, paths: list[Path], *, description: str, fps: float | None = None, loop: bool = False) -> None:
        if not paths:
            raise DSRIRError(f"{description}: no image files found")
        self.paths = paths
        self.description = description
        self.fps = fps
        self.frame_count = len(paths)
        self.loop = loop
        self.skipped_frames = 0
        self._index = 0
        self._delivered_pass = 0
        self.delivered: deque[Path] | None = None  # see record_names()

    @classmethod
    def from_location(cls, location: str, fps: float | None = None, loop: bool = False) -> ImageFolderSource:
        """A folder lists its images; anything else is a glob (natural order: frame2 before frame10)."""
        paths = sorted(image_files(location), key=_natural_key)
        return cls(paths, description=f"images {location}", fps=fps, loop=loop)

    def record_names(self) -> deque[Path]:
        """From now on, the path of every frame ``read()`` returns, in order: an image-folder sink takes its names
        from here (a file source drops no frame, so the n-th frame written is the n-th delivered)."""
        if self.delivered is None:
            self.delivered = deque()
        return self.delivered

    def read(self) -> np.ndarray | None:
        while True:
            if self._index >= len(self.paths):
                if not (self.loop and self._delivered_pass):
                    return None  # the end, or a loop over images that are all unreadable
                self._index, self._delivered_pass = 0, 0
            path = self.paths[self._index]
            self._index += 1
            frame = _read_bgr(path)
            if frame is None:
                self.skipped_frames += 1
                log.warning("%s: skipped unreadable image %s", self.description, path)
                continue
            self._delivered_pass += 1
            if self.delivered is not None:
                self.delivered.append(path)
            return frame


def _natural_key(path: Path) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _read_bgr(path: Path) -> np.ndarray | None:
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return None if image is None else _as_bgr(image)


class ReconnectingSource(FrameSource):
    """Reopens a live source when a read fails, with bounded exponential back-off.

    ``reconnect`` is the budget per outage (it refills once a frame arrives), so a camera that hiccups once a
    day keeps running for weeks. ``reconnects`` counts successful reopens, ``failed_reopens`` the others.
    """

    def __init__(
        self,
        opener: Callable[[], FrameSource],
        *,
        reconnect: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = MAX_BACKOFF_S,
        first: FrameSource | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._opener = opener
        self._budget = max(0, reconnect)
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._sleep = sleep
        self._source: FrameSource | None = first if first is not None else opener()
        self.live = True
        self.reconnects = 0
        self.failed_reopens = 0
        self.ended = False
        self.description = self._source.description

    @property
    def fps(self) -> float | None:  # type: ignore[override]
        return self._source.fps if self._source is not None else None

    @property
    def frame_count(self) -> int | None:  # type: ignore[override]
        return None

    def read(self) -> np.ndarray | None:
        if self.ended:
            return None
        attempt = 0
        while True:
            frame = self._try_read()
            if frame is not None:
                return frame
            if attempt >= self._budget:
                log.warning("%s: lost; gave up after %d reconnect attempt(s)", self.description, attempt)
                self.close()
                self.ended = True
                return None
            self._sleep(min(self._backoff_s * 2**attempt, self._max_backoff_s))
            attempt += 1
            self._reopen(attempt)

    def _try_read(self) -> np.ndarray | None:
        if self._source is None:
            return None
        try:
            return self._source.read()
        except Exception as exc:  # a driver error mid-stream is an outage, not a crash
            log.warning("%s: read failed: %s", self.description, exc)
            return None

    def _reopen(self, attempt: int) -> None:
        self._close_current()
        try:
            self._source = self._opener()
        except Exception as exc:
            self.failed_reopens += 1
            log.warning("%s: reconnect %d/%d failed: %s", self.description, attempt, self._budget, exc)
            return
        self.reconnects += 1
        log.info("%s: reconnected (attempt %d)", self.description, attempt)

    def _close_current(self) -> None:
        if self._source is not None:
            try:
                self._source.close()
            finally:
                self._source = None

    def close(self) -> None:
        self._close_current()


def _camera_target(location: str) -> tuple[str | int, str]:
    if location.isdigit():
        return int(location), f"/dev/video{location}"
    return location, location


def _open_camera(spec: SourceSpec, width: int | None, height: int | None, rate: float | None) -> FrameSource:
    """Check the device node first: OpenCV on a missing index only warns, and a useful error lists devices."""
    target, device = _camera_target(spec.location)
    found = video_devices()
    listing = ", ".join(found) if found else "none found"
    if os.name == "posix" and not Path(device).exists():
        raise DSRIRError(f"--input {spec.typed!r}: no camera at {device}; video devices: {listing}")
    api = getattr(cv2, "CAP_V4L2", cv2.CAP_ANY)
    try:
        return VideoCaptureSource(
            target, api, live=True, description=f"camera {device}", width=width, height=height, rate=rate
        )
    except DSRIRError:
        raise DSRIRError(f"--input {spec.typed!r}: cannot open camera {device}; video devices: {listing}") from None


def _open_stream(spec: SourceSpec, latency_ms: int | None) -> FrameSource:
    """RTSP goes through GStreamer's rtspsrc (latency=) when OpenCV has it, else FFmpeg with timeouts.

    With FFmpeg, ``latency_ms`` becomes ``max_delay`` in OPENCV_FFMPEG_CAPTURE_OPTIONS (set only for this
    open, and only when the user has not set the variable), plus ``rtsp_transport;tcp`` for RTSP.
    """
    url = spec.location
    if url.startswith(("rtsp://", "rtsps://")) and opencv_has_gstreamer():
        return VideoCaptureSource(
            rtsp_pipeline(url, latency_ms), cv2.CAP_GSTREAMER, live=True, description=f"stream {url}"
        )
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, OPEN_TIMEOUT_MS]
    options = []
    if url.startswith(("rtsp://", "rtsps://")):
        options.append("rtsp_transport;tcp")
    if latency_ms is not None:
        options.append(f"max_delay;{int(latency_ms) * 1000}")
    key = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
    set_here = bool(options) and key not in os.environ
    if set_here:
        os.environ[key] = "|".join(options)
    try:
        return VideoCaptureSource(url, cv2.CAP_FFMPEG, live=True, description=f"stream {url}", params=params)
    finally:
        if set_here:
            os.environ.pop(key, None)


def _open_gstreamer(spec: SourceSpec, width: int | None, height: int | None, rate: float | None) -> FrameSource:
    if not opencv_has_gstreamer():
        value = f"csi://{spec.location}" if spec.kind == "csi" else f"gst:{spec.location}"
        raise gstreamer_error("--input", value)
    if spec.kind == "csi":
        pipeline = csi_pipeline(int(spec.location), width or 1280, height or 720, rate or 30.0)
        description = f"csi://{spec.location}"
    else:
        pipeline, description = gst_source_pipeline(spec.location), f"gst:{spec.location}"
    return VideoCaptureSource(pipeline, cv2.CAP_GSTREAMER, live=True, description=description)


def _open_live(
    spec: SourceSpec, width: int | None, height: int | None, rate: float | None, latency_ms: int | None
) -> FrameSource:
    if spec.kind == "camera":
        return _open_camera(spec, width, height, rate)
    if spec.kind == "stream":
        return _open_stream(spec, latency_ms)
    return _open_gstreamer(spec, width, height, rate)


def open_source(
    spec: SourceSpec,
    width: int | None = None,
    height: int | None = None,
    rate: float | None = None,
    loop: bool = False,
    latency_ms: int | None = None,
    reconnect: int = 3,
    backoff_s: float = 0.5,
) -> FrameSource:
    """Open what ``spec`` names. The first open of a live source fails loudly; later outages reconnect.

    ``width``/``height``/``rate`` configure cameras and CSI sensors; ``rate`` is the nominal fps of an image
    folder; ``loop`` rewinds files, the demo and image folders; ``latency_ms`` tunes RTSP buffering.
    """
    if spec.kind in ("camera", "csi", "stream", "gst"):
        if spec.kind in ("csi", "gst") and not opencv_has_gstreamer():
            _open_gstreamer(spec, width, height, rate)  # raises the explanation without touching OpenCV

        def opener() -> FrameSource:
            return _open_live(spec, width, height, rate, latency_ms)

        return ReconnectingSource(opener, reconnect=reconnect, backoff_s=backoff_s)
    if spec.kind in ("file", "demo"):
        path = Path(spec.location)
        if not path.is_file():
            raise DSRIRError(f"--input {spec.typed!r}: {path} does not exist")
        description = "demo clip" if spec.kind == "demo" else f"file {path}"
        return VideoCaptureSource(str(path), cv2.CAP_FFMPEG, live=False, description=description, loop=loop)
    if spec.kind == "images":
        return ImageFolderSource.from_location(spec.location, fps=rate, loop=loop)
    raise DSRIRError(f"source kind {spec.kind!r}: expected camera, csi, file, stream, images, gst or demo")
