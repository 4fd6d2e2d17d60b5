"""Several inputs through one engine: a capture and a writer thread per stream around ONE inference thread that
batches the streams' frames into one inference (the network's batch dimension), as DeepStream's nvstreammux does.

Each stream keeps the single-stream rules of :mod:`runtime.pipeline`: a live source drops its OLDEST queued frame
when its queue is full (counted), a file blocks (back-pressure, nothing lost); live sources reconnect on their own
(``ReconnectingSource``); each has its own FPS, drops and latency (:class:`runtime.stats.MultiStats`).

The batcher takes whatever frames are ready, at most one per stream and ``max_batch`` in all, starting after the
last stream it served (round robin); once it has a frame it waits at most ``max_wait_s`` for the other streams,
and never for a stream that has ended. A stream whose writer is behind (its output queue full) is skipped, so a
slow output only slows its own stream. Frames of one size make one inference; different sizes make one inference
per size (``--fit`` still decides what happens to frames beyond an engine's profile). With a batch of one, a
backend with several slots (TensorRT) keeps frames in flight as the single-stream pipeline does.

A stream whose source fails, or whose output fails, ends alone (its output is finalised with what it has; the
run's exit status says so); the others go on. An inference error ends the run, as in the single-stream pipeline.
A stop (SIGINT/SIGTERM, every input ended) drains every stream; a second SIGINT aborts.

Outputs: one sink per stream, or a mosaic (tiles on a grid, as DeepStream's tiler) written to one sink: a new
mosaic frame whenever a stream's tile would be replaced before the last one was shown, or nothing else is queued.
"""

from __future__ import annotations

import functools
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from dsrir.errors import error_line
from runtime.backends import Backend
from runtime.frame_io import FrameSink, FrameSource
from runtime.frames import FrameRunner, Ticket
from runtime.pipeline import END, POLL_S, Item, Workers, capture, fit_to_sink, record_source_counts
from runtime.stats import MultiStats, RunStats, StatusLine

log = logging.getLogger(__name__)

DEFAULT_WAIT_S = 0.01  # how long a batch waits for the other streams once it has a frame
STOP_GRACE_S = 1.0  # after a stop, a stream whose capture is stuck in a read is ended after this long


@dataclass
class StreamSetup:
    """One input: its opened source, and how to open its sink for the first restored frame's (width, height)
    (None: the run's mosaic). ``fixed_size``: the sink keeps the first frame's size (a video); ``degrade`` is
    applied to each captured frame."""

    source: FrameSource
    open_sink: Callable[[tuple[int, int]], FrameSink] | None = None
    fixed_size: bool = True
    degrade: Callable[[np.ndarray], np.ndarray] | None = None


class Stream:
    """One stream's queues and state while running."""

    def __init__(self, index: int, setup: StreamSetup, stats: RunStats, queue_size: int) -> None:
        self.index, self.setup, self.stats = index, setup, stats
        self.source = setup.source
        self.live = self.source.live
        self.inbox: queue.Queue[Item | None] = queue.Queue(maxsize=queue_size)
        self.capacity = queue_size  # restored frames the output queue holds; one more place keeps the end marker
        self.outbox: queue.Queue[Item | None] = queue.Queue(maxsize=queue_size + 1)
        self.stop = threading.Event()  # this stream only (its output failed)
        self.finished = False  # the inference thread has taken its last frame (infer thread only)
        self.pending = 0  # frames taken for inference, not yet queued for writing (infer thread only)
        self.error: BaseException | None = None
        self.ended = "running"
        self.sink: FrameSink | None = None
        self.sink_size: tuple[int, int] | None = None
        self.capture_thread: threading.Thread | None = None


@dataclass
class Job:
    """One inference (frames of one size, one per stream) or, with ``end``, the end of a stream, queued in order."""

    entries: list[tuple[Stream, Item]] = field(default_factory=list)
    ticket: Ticket | None = None
    results: list[np.ndarray] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    end: Stream | None = None

    @property
    def in_flight(self) -> bool:
        return self.ticket is not None and self.ticket.result is None


def backend_max_batch(backend: Backend) -> int | None:
    """The most frames the backend takes in one inference (its ``max_batch``; None or 0: unlimited)."""
    declared = backend.max_batch
    return int(declared) if declared is not None and int(declared) > 0 else None


def failure_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {error_line(exc)}"


class MultiPipeline(Workers):
    """``run()`` returns how it ended: ``done``, ``interrupted`` (SIGINT), ``terminated`` (SIGTERM); streams that
    failed alone are in :attr:`failures`."""

    def __init__(
        self,
        setups: list[StreamSetup],
        runner: FrameRunner,
        stats: MultiStats,
        *,
        max_batch: int,
        max_wait_s: float = DEFAULT_WAIT_S,
        queue_size: int = 4,
        max_frames: int | None = None,
        side_by_side: bool = False,
        status: bool = False,
        mosaic: Callable[[tuple[int, int]], FrameSink] | None = None,
    ) -> None:
        super().__init__()
        if max_batch < 1:
            raise ValueError(f"max_batch {max_batch}: expected 1 or more")
        if mosaic is None and any(setup.open_sink is None for setup in setups):
            raise ValueError("every stream needs a sink, or the run a mosaic")
        self.streams = [Stream(i, setup, stats.streams[i], queue_size) for i, setup in enumerate(setups)]
        self.runner, self.stats = runner, stats
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self.max_frames, self.side_by_side = max_frames, side_by_side
        self.open_mosaic = mosaic
        self.mosaic_box: queue.Queue[list[tuple[Stream, Item]] | None] | None = (
            queue.Queue(maxsize=queue_size) if mosaic is not None else None
        )
        self.arrived = threading.Event()  # a frame was queued or a writer made room: the batcher looks again
        # Sinks open and close one at a time: OpenCV's log level, which runtime.sinks mutes around a writer's codec
        # probe and a video's read-back, is process-wide.
        self.sink_lock = threading.Lock()
        self.stop_since: float | None = None
        self.next_stream = 0
        self.running: deque[Job] = deque()
        counts = [s.source.frame_count if not s.live else None for s in self.streams]
        total = None
        if all(counts):
            total = sum(min(int(c), max_frames) if max_frames else int(c) for c in counts if c)
        self.status = StatusLine(stats.total, total, enabled=status)

    @property
    def failures(self) -> list[tuple[int, BaseException]]:
        return [(stream.index, stream.error) for stream in self.streams if stream.error is not None]

    # -- helpers ----------------------------------------------------------------------------------------------
    def _count(self, stream: Stream, name: str) -> None:
        stream.stats.count(name)
        self.stats.total.count(name)

    def _add(self, stream: Stream, stage: str, seconds: float) -> None:
        stream.stats.add(stage, seconds)
        self.stats.total.add(stage, seconds)

    # -- capture, one thread per stream ------------------------------------------------------------------------
    def _capture(self, stream: Stream) -> None:
        read = 0
        dropped = functools.partial(self._count, stream, "dropped")
        try:
            while not (self.stop.is_set() or stream.stop.is_set() or self.abort.is_set()):
                if self.max_frames is not None and read >= self.max_frames:
                    stream.ended = "max frames"
                    break
                item = capture(stream.source, stream.setup.degrade)
                if item is None:
                    stream.ended = "ended"
                    break
                self._add(stream, "capture", item.queued - item.captured)
                self._count(stream, "frames_in")
                read += 1
                if not self._enqueue(stream.inbox, item, stream.live, dropped):
                    break
                self.arrived.set()
            else:
                stream.ended = "stopped"
        except Exception as exc:  # this stream's input failed: it ends, the others go on
            stream.error, stream.ended = exc, "failed"
            log.warning("stream %d: input failed: %s", stream.index, failure_text(exc))
        finally:
            record_source_counts(stream.stats, stream.source)
            self._put(stream.inbox, END)
            self.arrived.set()

    # -- the batcher and the inference thread -------------------------------------------------------------------
    def _room(self, stream: Stream) -> bool:
        """Whether a restored frame of ``stream`` would fit its output queue now (a mosaic always waits)."""
        if self.mosaic_box is not None:
            return True
        return stream.outbox.qsize() + stream.pending < stream.capacity

    def _end(self, stream: Stream) -> None:
        stream.finished = True
        self.running.append(Job(end=stream))  # after the stream's frames still in flight

    def _stuck(self, stream: Stream) -> bool:
        """After a stop, a stream whose capture has not ended within the grace time (a read that hangs)."""
        if self.stop_since is None or time.perf_counter() - self.stop_since < STOP_GRACE_S:
            return False
        return stream.inbox.empty()

    def _gather(self, block: bool) -> list[tuple[Stream, Item]] | None:
        """Up to ``max_batch`` ready frames, at most one per stream; None once every stream has ended. With
        ``block``, waits for a first frame; then at most ``max_wait_s`` for streams that have none yet."""
        chosen: list[tuple[Stream, Item]] = []
        taken: set[int] = set()
        deadline: float | None = None
        count = len(self.streams)
        while True:
            self.arrived.clear()
            for offset in range(count):
                stream = self.streams[(self.next_stream + offset) % count]
                if len(chosen) >= self.max_batch:
                    break
                if stream.finished or stream.index in taken or not self._room(stream):
                    continue
                try:
                    item = stream.inbox.get_nowait()
                except queue.Empty:
                    if self._stuck(stream):
                        self._end(stream)
                    continue
                if item is END:
                    self._end(stream)
                    continue
                taken.add(stream.index)
                stream.pending += 1
                self._add(stream, "queue_wait", time.perf_counter() - item.queued)
                chosen.append((stream, item))
            if not chosen and all(stream.finished for stream in self.streams):
                return None
            if self.abort.is_set() or len(chosen) >= self.max_batch:
                break
            waiting = any(not s.finished and s.index not in taken and self._room(s) for s in self.streams)
            now = time.perf_counter()
            if chosen:
                deadline = now + self.max_wait_s if deadline is None else deadline
                if not waiting or now >= deadline:
                    break
                timeout = deadline - now
            elif not block or self.running:  # nothing new, or streams that ended are waiting to be finished
                break
            else:
                timeout = POLL_S
            self.arrived.wait(timeout)
        if chosen:
            self.next_stream = (chosen[-1][0].index + 1) % count
        return chosen

    def _start(self, batch: list[tuple[Stream, Item]]) -> bool:
        """One inference per frame size; a lone frame goes through ``submit`` (kept in flight where it can)."""
        groups: dict[tuple[int, int], list[tuple[Stream, Item]]] = {}
        for stream, item in batch:
            groups.setdefault((item.frame.shape[0], item.frame.shape[1]), []).append((stream, item))
        for entries in groups.values():
            self.stats.batch(len(entries))
            if len(entries) == 1:
                job = Job(entries, ticket=self.runner.submit(entries[0][1].frame))
            else:
                results = self.runner.run_batch([item.frame for _, item in entries])
                job = Job(entries, results=results, timings=dict(self.runner.timings))
            self.running.append(job)
            if not self._drain(self.runner.in_flight - 1):
                return False
        return True

    def _drain(self, keep: int) -> bool:
        """Finish jobs from the oldest while more than ``keep`` are in flight or the oldest is already done."""
        while self.running and (not self.running[0].in_flight or sum(job.in_flight for job in self.running) > keep):
            if not self._finish(self.running.popleft()):
                return False
        return True

    def _finish(self, job: Job) -> bool:
        """Queue a job's restored frames for writing (or its stream's end); False on abort."""
        if job.end is not None:
            return self.mosaic_box is not None or self._put(job.end.outbox, END)
        if job.ticket is not None:
            results, timings = [self.runner.collect(job.ticket)], dict(self.runner.timings)
        else:
            results, timings = job.results or [], job.timings
        for stage in ("pre", "infer", "post"):
            self.stats.total.add(stage, timings.get(stage, 0.0))
        for (stream, item), restored in zip(job.entries, results):
            stream.stats.add("infer", timings.get("infer", 0.0))  # the inference this frame was part of
            item.restored = np.hstack([item.frame, restored]) if self.side_by_side else restored
            stream.pending -= 1
            if self.mosaic_box is None and not self._put(stream.outbox, item):
                return False
        return self.mosaic_box is None or self._put(self.mosaic_box, job.entries)

    def _infer(self) -> None:
        while True:
            batch = self._gather(block=not self.running)
            if batch is None or self.abort.is_set():
                break
            if batch:
                if not self._start(batch):
                    return
            elif not self._drain(0):  # nothing new: finish what is running
                return
        if self.abort.is_set() or not self._drain(0):
            return
        if self.mosaic_box is not None:
            self._put(self.mosaic_box, END)

    # -- output ----------------------------------------------------------------------------------------------------
    def _written(self, stream: Stream, item: Item, start: float, done: float) -> None:
        self._add(stream, "write", done - start)
        self._add(stream, "end_to_end", done - item.captured)
        stream.stats.frame_written()
        self.stats.total.frame_written()

    def _write(self, stream: Stream) -> None:
        """One stream's output; a failure ends this stream only (the rest of its frames are discarded)."""
        try:
            while True:
                item = self._get(stream.outbox)
                self.arrived.set()  # room for another frame of this stream
                if item is END:
                    break
                if stream.stop.is_set():
                    continue
                try:
                    self._write_one(stream, item)
                except Exception as exc:
                    stream.error, stream.ended = exc, "failed"
                    stream.stop.set()
                    log.warning("stream %d: output failed: %s", stream.index, failure_text(exc))
        finally:
            if stream.sink is not None:
                try:
                    with self.sink_lock:
                        stream.sink.close()
                except Exception as exc:  # a file that could not be finalised
                    if stream.error is None:
                        stream.error, stream.ended = exc, "failed"

    def _write_one(self, stream: Stream, item: Item) -> None:
        frame = item.restored
        assert frame is not None and stream.setup.open_sink is not None
        if stream.sink is None:
            size = (frame.shape[1], frame.shape[0])
            with self.sink_lock:
                stream.sink = stream.setup.open_sink(size)
            stream.sink_size = size
            stream.stats.info["resolution"] = f"{item.frame.shape[1]}x{item.frame.shape[0]}"
            stream.stats.info["output"] = stream.sink.description
        frame = fit_to_sink(frame, stream.sink_size, stream.setup.fixed_size)
        start = time.perf_counter()
        stream.sink.write(frame)
        self._written(stream, item, start, time.perf_counter())

    def _write_mosaic(self) -> None:
        """Every stream's latest frame as a tile of one grid (the first frame's size per tile), one output."""
        assert self.mosaic_box is not None and self.open_mosaic is not None
        count = len(self.streams)
        cols = math.ceil(math.sqrt(count))
        rows = math.ceil(count / cols)
        tiles: list[np.ndarray | None] = [None] * count
        shown: list[tuple[Stream, Item]] = []  # frames in the mosaic not yet written
        tile_hw: tuple[int, int] | None = None
        sink: FrameSink | None = None

        def emit() -> None:
            nonlocal sink, tile_hw
            if tile_hw is None:
                first = next(tile for tile in tiles if tile is not None)
                tile_hw = (first.shape[0], first.shape[1])
            th, tw = tile_hw
            canvas = np.zeros((rows * th, cols * tw, 3), np.uint8)
            for index, tile in enumerate(tiles):
                if tile is None:
                    continue
                if tile.shape[:2] != tile_hw:
                    tile = cv2.resize(tile, (tw, th), interpolation=cv2.INTER_AREA)
                row, col = divmod(index, cols)
                canvas[row * th : (row + 1) * th, col * tw : (col + 1) * tw] = tile
            if sink is None:
                sink = self.open_mosaic((canvas.shape[1], canvas.shape[0]))  # type: ignore[misc]
                self.stats.info["output"] = sink.description
                self.stats.info["resolution"] = f"{canvas.shape[1]}x{canvas.shape[0]} mosaic"
            start = time.perf_counter()
            sink.write(canvas)
            done = time.perf_counter()
            for stream, item in shown:
                self._written(stream, item, start, done)
            shown.clear()

        try:
            while True:
                update = self._get(self.mosaic_box)
                self.arrived.set()
                if update is END:
                    break
                if {stream.index for stream, _ in update} & {stream.index for stream, _ in shown}:
                    emit()  # a tile not shown yet would be replaced
                for stream, item in update:
                    tiles[stream.index] = item.restored
                    shown.append((stream, item))
                if self.mosaic_box.empty():
                    emit()
            if shown and not self.abort.is_set():
                emit()
        finally:
            if sink is not None:
                sink.close()

    # -- control -------------------------------------------------------------------------------------------------
    def request_stop(self, how: str = "interrupted") -> None:
        """First call: stop every capture and drain; a second call aborts."""
        self.stop_since = time.perf_counter()
        super().request_stop(how)
        self.arrived.set()

    def _run(self) -> None:
        captures = []
        for stream in self.streams:
            stream.capture_thread = self._thread(
                functools.partial(self._capture, stream), f"dsrir-capture-{stream.index}"
            )
            captures.append(stream.capture_thread)
        if self.mosaic_box is not None:
            writers = [self._thread(self._write_mosaic, "dsrir-mosaic")]
        else:
            writers = [self._thread(functools.partial(self._write, s), f"dsrir-write-{s.index}") for s in self.streams]
        infer = self._thread(self._infer, "dsrir-infer")
        workers = [infer, *writers]
        try:
            self._supervise([*captures, infer, *writers], workers, writers)
        finally:
            if self.error is not None:
                self.abort.set()
            self.stop.set()  # a capture still running (its stream was ended as stuck) stops too
            for worker in workers:
                worker.join(timeout=5.0)
            for worker in captures:
                worker.join(timeout=STOP_GRACE_S)
            for stream in self.streams:
                if stream.error is not None:
                    stream.ended = "failed"
                elif stream.ended == "running":
                    stream.ended = "stopped"
                stream.stats.info["state"] = stream.ended
                if stream.error is not None:
                    stream.stats.info["error"] = failure_text(stream.error)
                try:
                    stream.source.close()
                except Exception as exc:  # noqa: BLE001 - closing is best effort; the outputs are already final
                    log.warning("stream %d: closing the input failed: %s", stream.index, exc)
            self.status.close()
