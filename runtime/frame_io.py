"""Frame sources and sinks as the pipelines see them: the bases every source and sink derives from.

What a source or sink can tell is declared here, with the value every one has unless it says otherwise, so
:mod:`runtime.pipeline` and :mod:`runtime.multistream` read attributes instead of guessing with ``getattr`` (as
:class:`runtime.backends.Backend` does for backends). The sources and sinks themselves are in :mod:`runtime.sources`
and :mod:`runtime.sinks`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import numpy as np

_Closing = TypeVar("_Closing", bound="Closing")


class Closing:
    """``close()`` is safe to call twice; ``with`` closes on the way out."""

    def close(self) -> None:
        """Release what is held; safe to call twice."""

    def __enter__(self: _Closing) -> _Closing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FrameSource(Closing):
    """Base of every source: ``read()`` gives the next BGR uint8 frame or ``None`` at the end; ``close()`` releases
    the device or file.

    ``live``: a camera or stream (the pipelines drop its oldest queued frame when behind; a file blocks instead);
    ``fps``: the nominal rate (None: unknown); ``frame_count``: the frames a file holds (None: unknown, or live);
    ``skipped_frames``: unreadable frames passed over; ``reconnects``: reopens after an outage.
    """

    live: bool = False
    fps: float | None = None
    frame_count: int | None = None
    description: str = ""
    skipped_frames: int = 0
    reconnects: int = 0

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def __iter__(self) -> Iterator[np.ndarray]:
        while (frame := self.read()) is not None:
            yield frame


class FrameSink(Closing):
    """Base of every sink: ``write()`` BGR uint8 frames, then ``close()`` to finish the output. ``description``
    names the output (the statistics' ``output``)."""

    description: str = ""
    frames_written: int = 0

    def write(self, frame: np.ndarray) -> None:
        raise NotImplementedError
