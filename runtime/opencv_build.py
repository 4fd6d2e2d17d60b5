"""What this OpenCV build can do, read from ``cv2.getBuildInformation()``: GStreamer, a GUI.

Sources (``csi://``, ``gst:``, RTSP through GStreamer) and sinks (``display://``, RTSP and ``gst:`` outputs) both
ask before they open anything, so a PyPI wheel gives one line that says what to install, not a silent failure.
"""

from __future__ import annotations

import functools
import re

import cv2

from dsrir.errors import DSRIRError


@functools.cache
def _build_info() -> str:
    return cv2.getBuildInformation()


def _build_flag(name: str) -> str:
    match = re.search(rf"^\s*{name}:\s*(.+)$", _build_info(), re.MULTILINE)
    return match.group(1).strip() if match else "NO"


def opencv_has_gstreamer() -> bool:
    """JetPack's system OpenCV has GStreamer; the PyPI wheels do not (csi://, gst: and RTSP sinks need it)."""
    return _build_flag("GStreamer").upper().startswith("YES")


def opencv_has_gui() -> bool:
    """``opencv-python-headless`` reports ``GUI: NONE``: imshow would raise."""
    return _build_flag("GUI").upper() not in ("NONE", "NO")


def gstreamer_error(flag: str, value: str) -> DSRIRError:
    """Why a GStreamer URI cannot work with this OpenCV, and what to install instead."""
    return DSRIRError(
        f"{flag} {value!r}: needs OpenCV built with GStreamer (this one has none: cv2.getBuildInformation()); "
        "on Jetson use JetPack's system OpenCV (python3-opencv, not the PyPI wheel)"
    )
