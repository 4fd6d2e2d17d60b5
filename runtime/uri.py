"""Parse jetson-utils style ``--input`` / ``--output`` URIs into small specs, before anything is opened.

Parsing is separate from opening so a bad flag fails at once with one line listing what is accepted, and so the
paths an input reads and an output writes are known before any work (an output never overwrites an input).
"""

from __future__ import annotations

import functools
import glob
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from dsrir.errors import DSRIRError
from dsrir.imageio import IMAGE_EXTENSIONS, is_image_file, list_images

INPUT_FORMS = (
    "camN, csiN/csi://N, v4l2:///dev/videoN, a video file or file://PATH, rtsp://... / http(s)://..., "
    "an image folder or glob, gst:PIPELINE, or demo"
)
OUTPUT_FORMS = (
    "none, display://0, a video file (.mp4, .avi, .mkv), an image folder (ending in /) or pattern like "
    "frames/%06d.png, rtsp://... (GStreamer), or gst:PIPELINE"
)
OUTPUT_VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv")
LIVE_KINDS = frozenset({"camera", "csi", "stream", "gst"})

_CAM = re.compile(r"cam(\d+)")
_DEV_VIDEO = re.compile(r"/dev/video(\d+)")
_CSI = re.compile(r"csi(?:://)?(\d+)")
_DISPLAY = re.compile(r"display(?:://(\d+))?")
_FRAME_NUMBER = re.compile(r"%0?\d*d")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class SourceSpec:
    """What ``--input`` names: ``kind`` is camera, csi, file, stream, images, gst or demo; ``text`` is the value as
    typed (``cam7`` for location ``7``), which errors quote."""

    kind: str
    location: str
    text: str = field(default="", compare=False)

    @property
    def typed(self) -> str:
        return self.text or self.location

    @property
    def live(self) -> bool:
        """Live sources cannot rewind and may drop; they get reconnects instead of loops."""
        return self.kind in LIVE_KINDS


@dataclass(frozen=True)
class SinkSpec:
    """What ``--output`` names: ``kind`` is file, images, display, stream, gst or none."""

    kind: str
    location: str


def demo_clip_path() -> Path:
    """The clean demo clip shipped inside the package (made by ``python -m runtime.make_demo``)."""
    return Path(__file__).resolve().parent / "assets" / "demo.mp4"


def _uri_error(flag: str, forms: str, text: str, why: str = "") -> DSRIRError:
    reason = f"{why}; " if why else ""
    return DSRIRError(f"{flag} {text!r}: {reason}expected {forms}")


_input_error = functools.partial(_uri_error, "--input", INPUT_FORMS)
_output_error = functools.partial(_uri_error, "--output", OUTPUT_FORMS)


def _gst_pipeline(value: str, error: Callable[[str], DSRIRError]) -> str | None:
    """The pipeline of a ``gst:PIPELINE`` value (``--input`` and ``--output`` alike); None for any other value."""
    if not value.startswith("gst:"):
        return None
    pipeline = value[len("gst:") :].strip()
    if not pipeline:
        raise error("gst: needs a pipeline")
    return pipeline


def _local_path(value: str, error: Callable[[str], DSRIRError]) -> str:
    """A value that names no scheme the caller knows: a local path (``file://`` removed), or an unknown scheme."""
    if "://" in value and not value.startswith("file://"):
        raise error("unknown scheme")
    return value.removeprefix("file://")


def parse_input(text: str) -> SourceSpec:
    """Classify an ``--input`` value; local paths must exist (a typo fails here, not mid-run)."""
    return replace(_classify_input(text), text=text)


def _classify_input(text: str) -> SourceSpec:
    value = text.strip()
    if not value:
        raise _input_error(text, "empty")
    if value == "demo":
        return SourceSpec("demo", str(demo_clip_path()))
    if match := _CAM.fullmatch(value):
        return SourceSpec("camera", match.group(1))
    if value.startswith("v4l2://"):
        device = value[len("v4l2://") :]
        if not _DEV_VIDEO.fullmatch(device):
            raise _input_error(text, "v4l2:// needs a device like v4l2:///dev/video0")
        return SourceSpec("camera", device)
    if _DEV_VIDEO.fullmatch(value):
        return SourceSpec("camera", value)
    if match := _CSI.fullmatch(value):
        return SourceSpec("csi", match.group(1))
    if value.startswith(("rtsp://", "rtsps://", "http://", "https://")):
        return SourceSpec("stream", value)
    fail = functools.partial(_input_error, text)
    if (pipeline := _gst_pipeline(value, fail)) is not None:
        return SourceSpec("gst", pipeline)
    return _parse_local_input(text, _local_path(value, fail))


def _parse_local_input(text: str, value: str) -> SourceSpec:
    if _GLOB_CHARS.search(value):
        if not any(is_image_file(p) for p in glob.glob(value)):
            raise _input_error(text, "the glob matches no image files")
        return SourceSpec("images", value)
    path = Path(value).expanduser()
    if path.is_dir():
        return SourceSpec("images", str(path))
    if path.is_file():
        return SourceSpec("images" if is_image_file(path) else "file", str(path))
    raise _input_error(text, f"{path} does not exist")


def parse_output(text: str | None) -> SinkSpec:
    """Classify an ``--output`` value; nothing is created until the sink is opened."""
    if text is None or text.strip() in ("", "none"):
        return SinkSpec("none", "")
    value = text.strip()
    if match := _DISPLAY.fullmatch(value):
        return SinkSpec("display", match.group(1) or "0")
    if value.startswith(("rtsp://", "rtsps://")):
        return SinkSpec("stream", value)
    fail = functools.partial(_output_error, text)
    if (pipeline := _gst_pipeline(value, fail)) is not None:
        return SinkSpec("gst", pipeline)
    value = _local_path(value, fail)
    suffix = Path(value).suffix.lower()
    if "%" in value:
        if not _FRAME_NUMBER.search(value) or not is_image_file(value):
            raise _output_error(text, f"an image pattern needs %d or %06d and one of {', '.join(IMAGE_EXTENSIONS)}")
        return SinkSpec("images", value)
    if suffix in OUTPUT_VIDEO_EXTENSIONS:
        return SinkSpec("file", value)
    if value.endswith(("/", "\\")) or Path(value).is_dir() or not suffix:
        return SinkSpec("images", value)
    raise _output_error(text, f"unsupported extension {suffix}")


def image_files(location: str) -> list[Path]:
    """The image files an ``images`` input reads: a folder's images, or what a glob (or a single path) matches."""
    path = Path(location).expanduser()
    if path.is_dir():
        return list_images(path)
    return [Path(p) for p in glob.glob(str(path)) if Path(p).is_file() and is_image_file(p)]


def input_paths(spec: SourceSpec) -> list[Path]:
    """The local files and folders ``spec`` reads (none for cameras, streams and pipelines)."""
    if spec.kind in ("file", "demo"):
        return [Path(spec.location)]
    if spec.kind == "images":
        files = image_files(spec.location)
        return [Path(spec.location).expanduser(), *files] if Path(spec.location).expanduser().is_dir() else files
    return []


def output_folder(spec: SinkSpec) -> Path | None:
    """The folder an ``images`` output writes into (a pattern's folder), else ``None``."""
    if spec.kind != "images":
        return None
    return Path(spec.location).parent if "%" in spec.location else Path(spec.location)


def keeps_input_names(sink: SinkSpec, source: SourceSpec) -> bool:
    """An image folder restored into a folder keeps the inputs' names; a pattern, or frames of a video, are
    numbered."""
    return sink.kind == "images" and "%" not in sink.location and source.kind == "images"


def output_paths(sink: SinkSpec, source: SourceSpec) -> list[Path]:
    """What ``sink`` writes that is known before the run: the file, or the folder and the first pass of images."""
    if sink.kind == "file":
        return [Path(sink.location)]
    folder = output_folder(sink)
    if folder is None:
        return []
    if source.kind != "images":
        return [folder]
    files = image_files(source.location)
    if keeps_input_names(sink, source):
        names = [file.name for file in files]
        duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
        if duplicates:
            raise DSRIRError(
                f"--input {source.typed!r}: several images are named {duplicates[0]} and the output keeps the "
                f"names; use an --output pattern such as {folder / '%06d.png'}"
            )
        return [folder, *(folder / name for name in names)]
    pattern = sink.location if "%" in sink.location else str(folder / "%06d.png")
    return [folder, *(Path(pattern % index) for index in range(len(files)))]
