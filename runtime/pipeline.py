"""Capture, inference and output on three threads joined by bounded queues, so a slow stage shows up as queueing
(or, for a live source, as dropped frames) instead of ever-growing latency.

Live sources: when the input queue is full the OLDEST frame is dropped (counted), so what is restored is always
recent. Files: the capture thread blocks (back-pressure), no frame is lost. A stop (SIGINT/SIGTERM, end of input,
``max_frames``) ends capture and lets the queues drain before the sink is closed, so a file is finalised; an abort
(second SIGINT, or an error in a worker) leaves the queues and closes the sink with what was written.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol

import cv2
import numpy as np

from runtime.stats import RunStats, StatusLine

POLL_S = 0.05


class Runner(Protocol):
    """``runtime.frames.FrameRunner``: ``submit`` starts a frame, ``collect`` returns it restored (in order);
    ``in_flight`` frames may be started before the first is collected."""

    timings: dict[str, float]
    in_flight: int

    def submit(self, frame: np.ndarray) -> Any: ...

    def collect(self, ticket: Any) -> np.ndarray: ...


class Sink(Protocol):
    def write(self, frame: np.ndarray) -> None: ...

    def close(self) -> None: ...


@dataclass
class Item:
    """A frame on its way through, with the times latency is measured from."""

    frame: np.ndarray
    captured: float
    queued: float
    restored: np.ndarray | None = None


END = None  # queue sentinel: no more frames


@contextlib.contextmanager
def signals_to(handler: Callable[[int, FrameType | None], None], enabled: bool) -> Iterator[None]:
    """SIGINT and SIGTERM go to ``handler`` while the block runs (main thread only: Python delivers signals
    there), then back to the handlers they had."""
    previous: dict[int, Any] = {}
    if enabled and threading.current_thread() is threading.main_thread():
        for signum in (int(signal.SIGINT), int(signal.SIGTERM)):
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def announce_stop(status: StatusLine, stats: RunStats, first: bool) -> None:
    """Say at once what a stop signal does: finishing the queued frames can take many seconds at a few frames per
    second, and a second signal leaves them (the output is still closed, with the frames written so far)."""
    if first:
        status.note(f"stopping: finishing {stats.pending()} queued frame(s) (Ctrl-C again to stop now)")
    else:
        status.note("stopping now: the output keeps the frames written so far")


class Pipeline:
    """``run()`` returns how it ended: ``done``, ``interrupted`` (SIGINT), ``terminated`` (SIGTERM)."""

    def __init__(
        self,
        source: Any,
        runner: Runner,
        open_sink: Callable[[tuple[int, int]], Sink],
        stats: RunStats,
        queue_size: int = 4,
        max_frames: int | None = None,
        side_by_side: bool = False,
        degrade: Callable[[np.ndarray], np.ndarray] | None = None,
        status: bool = False,
        fixed_size: bool = True,
    ) -> None:
        self.source, self.runner, self.open_sink, self.stats = source, runner, open_sink, stats
        self.fixed_size = fixed_size  # a video file has one frame size; an image folder keeps each frame's own
        self.live = bool(getattr(source, "live", False))
        self.inbox: queue.Queue[Item | None] = queue.Queue(maxsize=queue_size)
        self.outbox: queue.Queue[Item | None] = queue.Queue(maxsize=queue_size)
        self.max_frames, self.side_by_side, self.degrade = max_frames, side_by_side, degrade
        self.stop = threading.Event()  # stop capturing, drain
        self.abort = threading.Event()  # leave now
        self.error: BaseException | None = None
        self.ended_by = "done"
        self.sink: Sink | None = None
        self.sink_size: tuple[int, int] | None = None
        total = getattr(source, "frame_count", None) if not self.live else None
        if total and max_frames:
            total = min(total, max_frames)
        self.status = StatusLine(stats, total, enabled=status)

    # -- queue helpers ------------------------------------------------------------------------------------------
    def _put(self, box: queue.Queue[Item | None], item: Item | None) -> bool:
        """Blocking put that gives up on abort; False when it gave up."""
        while not self.abort.is_set():
            try:
                box.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _put_latest(self, item: Item) -> None:
        """Put for live sources: make room by dropping the oldest queued frame."""
        while not self.abort.is_set():
            try:
                self.inbox.put_nowait(item)
                return
            except queue.Full:
                try:
                    self.inbox.get_nowait()
                    self.stats.count("dropped")
                except queue.Empty:
                    pass

    def _get(self, box: queue.Queue[Item | None]) -> Item | None:
        while not self.abort.is_set():
            try:
                return box.get(timeout=POLL_S)
            except queue.Empty:
                continue
        return END

    def _guarded(self, work: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                work()
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                if self.error is None:
                    self.error = exc
                self.abort.set()

        return body

    # -- stages -------------------------------------------------------------------------------------------------
    def _capture(self) -> None:
        read = 0
        try:
            while not self.stop.is_set() and not self.abort.is_set():
                if self.max_frames is not None and read >= self.max_frames:
                    break
                start = time.perf_counter()
                frame = self.source.read()
                if frame is None:
                    break
                if self.degrade is not None:
                    frame = self.degrade(frame)
                now = time.perf_counter()
                self.stats.add("capture", now - start)
                self.stats.count("frames_in")
                read += 1
                item = Item(frame, start, now)
                if self.live:
                    self._put_latest(item)
                elif not self._put(self.inbox, item):
                    break
        finally:
            self.stats.set_count("skipped", int(getattr(self.source, "skipped_frames", 0) or 0))
            self.stats.set_count("reconnects", int(getattr(self.source, "reconnects", 0) or 0))
            self._put(self.inbox, END)

    def _infer(self) -> None:
        """Keep up to ``runner.in_flight`` frames started; finish the oldest when that many are running, or as soon
        as no new frame is waiting (so a slow source never holds a restored frame back)."""
        running: deque[tuple[Item, Any]] = deque()
        while True:
            item: Item | None
            if running:
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    if not self._finish(*running.popleft()):
                        return
                    continue
            else:
                item = self._get(self.inbox)
            if item is END or self.abort.is_set():
                break
            self.stats.add("queue_wait", time.perf_counter() - item.queued)
            running.append((item, self.runner.submit(item.frame)))
            if len(running) >= self.runner.in_flight and not self._finish(*running.popleft()):
                return
        while running:
            if not self._finish(*running.popleft()):
                return
        self._put(self.outbox, END)

    def _finish(self, item: Item, ticket: Any) -> bool:
        """Collect one started frame and queue it for writing; False on abort."""
        restored = self.runner.collect(ticket)
        for stage, seconds in self.runner.timings.items():
            self.stats.add(stage, seconds)
        if self.side_by_side:
            restored = np.hstack([item.frame, restored])
        item.restored = restored
        return self._put(self.outbox, item)

    def _write(self) -> None:
        try:
            while True:
                item = self._get(self.outbox)
                if item is END:
                    break
                frame = item.restored
                assert frame is not None
                size = (frame.shape[1], frame.shape[0])
                if self.sink is None:
                    self.sink, self.sink_size = self.open_sink(size), size
                    self.stats.info["resolution"] = f"{item.frame.shape[1]}x{item.frame.shape[0]}"
                elif self.fixed_size and size != self.sink_size and self.sink_size is not None:
                    frame = cv2.resize(frame, self.sink_size, interpolation=cv2.INTER_AREA)  # a video keeps its size
                start = time.perf_counter()
                self.sink.write(frame)
                done = time.perf_counter()
                self.stats.add("write", done - start)
                self.stats.add("end_to_end", done - item.captured)
                self.stats.frame_written()
        finally:
            if self.sink is not None:
                self.sink.close()

    # -- control ------------------------------------------------------------------------------------------------
    def request_stop(self, how: str = "interrupted") -> None:
        """First call: stop capture and drain; a second call aborts."""
        if self.stop.is_set():
            self.abort.set()
        self.ended_by = how
        self.stop.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        announce_stop(self.status, self.stats, first=not self.stop.is_set())
        self.request_stop("terminated" if signum == signal.SIGTERM else "interrupted")

    def run(self, handle_signals: bool = True) -> str:
        """Run to the end of the input, ``max_frames`` or a signal; re-raise a worker's exception here."""
        with signals_to(self._on_signal, handle_signals):
            return self._run()

    def _run(self) -> str:
        threads = [
            threading.Thread(target=self._guarded(work), name=f"dsrir-{name}", daemon=True)
            for name, work in (("capture", self._capture), ("infer", self._infer), ("write", self._write))
        ]
        try:
            for thread in threads:
                thread.start()
            while any(thread.is_alive() for thread in threads):
                threads[-1].join(timeout=0.1)
                self.status.update()
                if self.abort.is_set() and self.error is None and not threads[-1].is_alive():
                    break
        finally:
            if self.error is not None:
                self.abort.set()
            for thread in threads:
                thread.join(timeout=5.0)
            try:
                self.source.close()
            finally:
                self.status.close()
        if self.error is not None:
            raise self.error
        return self.ended_by
