"""Fakes shared by the runtime tests, deriving from the bases the pipelines read (runtime.frame_io)."""

from __future__ import annotations

import threading
import time

import numpy as np

from runtime.frame_io import FrameSource


class FakeSource(FrameSource):
    """Frames from a list, ``period_s`` apart (``live``: no frame count, as from a camera); ``fail_at`` raises on that
    read, ``gate`` blocks every read until it is set."""

    def __init__(
        self,
        frames: list[np.ndarray],
        live: bool = False,
        period_s: float = 0.0,
        fail_at: int | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        self.frames, self.live, self.period_s, self.fail_at, self.gate = frames, live, period_s, fail_at, gate
        self.index, self.fps, self.description = 0, 30.0, "fake"
        self.frame_count = None if live else len(frames)

    def read(self) -> np.ndarray | None:
        if self.gate is not None:
            self.gate.wait()
        if self.fail_at is not None and self.index == self.fail_at:
            raise RuntimeError("camera unplugged")
        if self.index >= len(self.frames):
            return None
        time.sleep(self.period_s)
        self.index += 1
        return self.frames[self.index - 1]

    def close(self) -> None:
        pass
