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
from typing import Any, Protocol, TypeVar

import cv2
import numpy as np

from runtime.frame_io import FrameSink, FrameSource
from runtime.stats import RunStats, StatusLine

POLL_S = 0.05
T = TypeVar("T")


class Runner(Protocol):
    """``runtime.frames.FrameRunner``: ``submit`` starts a frame, ``collect`` returns it restored (in order);
    ``in_flight`` frames may be started before the first is collected."""

    timings: dict[str, float]
    in_flight: int

    def submit(self, frame: np.ndarray) -> Any: ...

    def collect(self, ticket: Any) -> np.ndarray: ...


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


def capture(source: FrameSource, degrade: Callable[[np.ndarray], np.ndarray] | None) -> Item | None:
    """The source's next frame (``degrade`` applied), timed from the read; None at the end of the input."""
    start = time.perf_counter()
    frame = source.read()
    if frame is None:
        return None
    if degrade is not None:
        frame = degrade(frame)
    return Item(frame, start, time.perf_counter())


def record_source_counts(stats: RunStats, source: FrameSource) -> None:
    """The source's own counts once its capture has ended: frames it skipped, reconnects after outages."""
    stats.set_count("skipped", source.skipped_frames)
    stats.set_count("reconnects", source.reconnects)


def fit_to_sink(frame: np.ndarray, sink_size: tuple[int, int] | None, fixed_size: bool) -> np.ndarray:
    """A restored frame as its sink takes it: a sink of fixed size (a video) keeps the first frame's (width,
    height), so a frame of another size is resized to it; an image folder keeps each frame's own size."""
    if fixed_size and sink_size is not None and (frame.shape[1], frame.shape[0]) != sink_size:
        return cv2.resize(frame, sink_size, interpolation=cv2.INTER_AREA)
    return frame


class Workers:
    """What the single- and the multi-stream pipeline share: ``stop`` (capture ends, the queues drain) and ``abort``
    (leave now), the first error raised on a worker thread (re-raised by ``run()``), queue moves that give up on
    abort, and ``run()`` with SIGINT/SIGTERM turned into :meth:`request_stop`. A subclass sets ``status`` and
    implements ``_run()``."""

    status: StatusLine

    def __init__(self) -> None:
        self.stop = threading.Event()  # stop capturing, drain
        self.abort = threading.Event()  # leave now
        self.error: BaseException | None = None
        self.ended_by = "done"

    # -- queue helpers ------------------------------------------------------------------------------------------
    def _put(self, box: queue.Queue[T], item: T) -> bool:
        """Blocking put that gives up on abort; False when it gave up."""
        while not self.abort.is_set():
            try:
                box.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _put_latest(self, box: queue.Queue[T], item: T, dropped: Callable[[], None]) -> None:
        """Put for live sources: make room by dropping the oldest queued frame (``dropped`` counts each)."""
        while not self.abort.is_set():
            try:
                box.put_nowait(item)
                return
            except queue.Full:
                try:
                    box.get_nowait()
                    dropped()
                except queue.Empty:
                    pass

    def _enqueue(self, box: queue.Queue[T], item: T, live: bool, dropped: Callable[[], None]) -> bool:
        """A captured frame into its input queue: a live source drops its oldest, a file waits (back-pressure).
        False when the wait gave up (abort)."""
        if live:
            self._put_latest(box, item, dropped)
            return True
        return self._put(box, item)

    def _get(self, box: queue.Queue[T]) -> T | None:
        """Blocking get that gives up on abort (then ``END``)."""
        while not self.abort.is_set():
            try:
                return box.get(timeout=POLL_S)
            except queue.Empty:
                continue
        return END

    def _thread(self, work: Callable[[], None], name: str) -> threading.Thread:
        """A daemon thread running ``work``; an exception there is kept for ``run()`` and aborts the others."""

        def guarded() -> None:
            try:
                work()
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                if self.error is None:
                    self.error = exc
                self.abort.set()

        return threading.Thread(target=guarded, name=name, daemon=True)

    def _supervise(
        self, threads: list[threading.Thread], waited: list[threading.Thread], writers: list[threading.Thread]
    ) -> None:
        """Start ``threads``, then keep the status line current while any of ``waited`` runs. An abort that no error
        caused (a second signal) stops the wait once the ``writers`` have closed their outputs."""
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in waited):
            waited[-1].join(timeout=0.1)
            self.status.update()
            if self.abort.is_set() and self.error is None and not any(writer.is_alive() for writer in writers):
                break

    # -- control ------------------------------------------------------------------------------------------------
    def request_stop(self, how: str = "interrupted") -> None:
        """First call: stop capture and drain; a second call aborts."""
        if self.stop.is_set():
            self.abort.set()
        self.ended_by = how
        self.stop.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        announce_stop(self.status, self.status.stats, first=not self.stop.is_set())
        self.request_stop("terminated" if signum == signal.SIGTERM else "interrupted")

    def run(self, handle_signals: bool = True) -> str:
        """Run to the end of the input(s), ``max_frames`` or a signal; re-raise a worker's exception here. Returns
        how it ended: ``done``, ``interrupted`` (SIGINT), ``terminated`` (SIGTERM)."""
        with signals_to(self._on_signal, handle_signals):
            self._run()
        if self.error is not None:
            raise self.error
        return self.ended_by

    def _run(self) -> None:
        """Start the threads, wait for them (:meth:`_supervise`) and release the inputs, whatever happens."""
        raise NotImplementedError


class Pipeline(Workers):
    """``run()`` returns how it ended: ``done``, ``interrupted`` (SIGINT), ``terminated`` (SIGTERM)."""

    def __init__(
        self,
        source: FrameSource,
        runner: Runner,
        open_sink: Callable[[tuple[int, int]], FrameSink],
        stats: RunStats,
        queue_size: int = 4,
        max_frames: int | None = None,
        side_by_side: bool = False,
        degrade: Callable[[np.ndarray], np.ndarray] | None = None,
        status: bool = False,
        fixed_size: bool = True,
    ) -> None:
        super().__init__()
        self.source, self.runner, self.open_sink, self.stats = source, runner, open_sink, stats
        self.fixed_size = fixed_size  # a video file has one frame size; an image folder keeps each frame's own
        self.live = source.live
        self.inbox: queue.Queue[Item | None] = queue.Queue(maxsize=queue_size)
        self.outbox: queue.Queue[Item | None] = queue.Queue(maxsize=queue_size)
        self.max_frames, self.side_by_side, self.degrade = max_frames, side_by_side, degrade
        self.sink: FrameSink | None = None
        self.sink_size: tuple[int, int] | None = None
        total = source.frame_count if not self.live else None
        if total and max_frames:
            total = min(total, max_frames)
        self.status = StatusLine(stats, total, enabled=status)

    # -- stages -------------------------------------------------------------------------------------------------
    def _capture(self) -> None:
        read = 0
        try:
            while not self.stop.is_set() and not self.abort.is_set():
                if self.max_frames is not None and read >= self.max_frames:
                    break
                item = capture(self.source, self.degrade)
                if item is None:
                    break
                self.stats.add("capture", item.queued - item.captured)
                self.stats.count("frames_in")
                read += 1
                if not self._enqueue(self.inbox, item, self.live, self._dropped):
                    break
        finally:
            record_source_counts(self.stats, self.source)
            self._put(self.inbox, END)

    def _dropped(self) -> None:
        self.stats.count("dropped")

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
                if self.sink is None:
                    size = (frame.shape[1], frame.shape[0])
                    self.sink, self.sink_size = self.open_sink(size), size
                    self.stats.info["output"] = self.sink.description
                    self.stats.info["resolution"] = f"{item.frame.shape[1]}x{item.frame.shape[0]}"
                frame = fit_to_sink(frame, self.sink_size, self.fixed_size)
                start = time.perf_counter()
                self.sink.write(frame)
                done = time.perf_counter()
                self.stats.add("write", done - start)
                self.stats.add("end_to_end", done - item.captured)
                self.stats.frame_written()
        finally:
            if self.sink is not None:
                self.sink.close()

    def _run(self) -> None:
        threads = [
            self._thread(work, f"dsrir-{name}")
            for name, work in (("capture", self._capture), ("infer", self._infer), ("write", self._write))
        ]
        try:
            self._supervise(threads, threads, writers=threads[-1:])
        finally:
            if self.error is not None:
                self.abort.set()
            for thread in threads:
                thread.join(timeout=5.0)
            try:
                self.source.close()
            finally:
                self.status.close()
