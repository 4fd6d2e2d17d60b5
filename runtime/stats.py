"""Per-stage timings and frame counters of a run: a ~1/s status line, a summary table at exit and ``--stats`` JSON.

Latency that builds up on a live stream is the usual complaint; the end-to-end (capture -> write) percentiles and
the dropped count say whether the pipeline keeps up, the per-stage ones say which stage does not.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from dsrir.atomic import write_text_atomic

STAGES = ("capture", "pre", "infer", "post", "write", "queue_wait", "end_to_end")
COUNTERS = ("frames_in", "frames_out", "dropped", "skipped", "reconnects")


class RunStats:
    """Thread-safe collection; timings are recorded only after the warm-up frames (``recording``)."""

    def __init__(self, warmup: int = 0) -> None:
        self.warmup = warmup
        self.samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.info: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.started = time.perf_counter()
        self.timed_since: float | None = None if warmup else self.started
        self.timed_frames = 0

    def count(self, name: str, amount: int = 1) -> None:
        with self.lock:
            self.counts[name] += amount

    def set_count(self, name: str, value: int) -> None:
        with self.lock:
            self.counts[name] = value

    def add(self, stage: str, seconds: float) -> None:
        """One stage time of a frame past the warm-up (ignored before)."""
        with self.lock:
            if self.timed_since is not None:
                self.samples[stage].append(seconds * 1000.0)

    def pending(self) -> int:
        """Frames read and not yet written (nor dropped): what a stop still has to finish."""
        with self.lock:
            return max(0, self.counts["frames_in"] - self.counts["frames_out"] - self.counts["dropped"])

    def frame_written(self) -> None:
        """Counts an output frame; the clock for FPS starts once ``warmup`` frames are out."""
        with self.lock:
            self.counts["frames_out"] += 1
            if self.timed_since is None and self.counts["frames_out"] >= self.warmup:
                self.timed_since = time.perf_counter()
            elif self.timed_since is not None:
                self.timed_frames += 1

    def fps(self) -> float:
        with self.lock:
            if self.timed_since is None or self.timed_frames == 0:
                return 0.0
            return self.timed_frames / max(time.perf_counter() - self.timed_since, 1e-9)

    def stage_summary(self) -> dict[str, dict[str, float]]:
        with self.lock:
            copied = {stage: list(values) for stage, values in self.samples.items()}
        out = {}
        for stage, values in copied.items():
            if values:
                data = np.asarray(values)
                out[stage] = {
                    "mean": round(float(data.mean()), 3),
                    "p50": round(float(np.percentile(data, 50)), 3),
                    "p95": round(float(np.percentile(data, 95)), 3),
                    "max": round(float(data.max()), 3),
                }
        return out

    def summary(self) -> dict[str, Any]:
        """Everything ``--stats`` writes: counters, FPS, latency per stage (ms), backend/model facts in ``info``."""
        with self.lock:
            counts = dict(self.counts)
        return {
            **counts,
            "fps": round(self.fps(), 3),
            "warmup": self.warmup,
            "wall_seconds": round(time.perf_counter() - self.started, 3),
            "latency_ms": self.stage_summary(),
            **self.info,
        }

    def status(self) -> str:
        """The one-line status: FPS, counters and mean stage times."""
        stages = self.stage_summary()
        parts = [f"{self.fps():.1f} fps", f"in {self.counts['frames_in']}", f"out {self.counts['frames_out']}"]
        if self.counts["dropped"]:
            parts.append(f"dropped {self.counts['dropped']}")
        times = " ".join(f"{stage} {stages[stage]['mean']:.0f}" for stage in STAGES[:5] if stage in stages)
        return ", ".join(parts) + (f" | ms: {times}" if times else "")

    def table(self) -> str:
        """The summary printed at exit."""
        info = self.summary()
        lines = [
            f"{'stage':<12}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}",
            *(
                f"{stage:<12}{v['p50']:>10.1f}{v['p95']:>10.1f}{v['max']:>10.1f}"
                for stage, v in info["latency_ms"].items()
            ),
            f"frames in {info['frames_in']}, out {info['frames_out']}, dropped {info['dropped']}, "
            f"skipped {info['skipped']}, reconnects {info['reconnects']}; {info['fps']:.2f} fps after "
            f"{self.warmup} warm-up frames",
        ]
        if "backend" in info:
            lines.append(f"{info['backend']} {info.get('precision', '')} at {info.get('resolution', '?')}")
        return "\n".join(lines)

    def write_json(self, path: Path) -> None:
        write_text_atomic(path, json.dumps(self.summary(), indent=2) + "\n")


class StatusLine:
    """tqdm bar (with a total for files) whose postfix is the status, refreshed about once a second."""

    def __init__(self, stats: RunStats, total: int | None, enabled: bool = True) -> None:
        self.stats, self.last, self.shown = stats, 0.0, 0
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="frame", file=sys.stderr, dynamic_ncols=True, leave=False)

    def update(self, force: bool = False) -> None:
        if self.bar is None:
            return
        now = time.perf_counter()
        if not force and now - self.last < 1.0:
            return
        self.last = now
        out = self.stats.counts["frames_out"]
        self.bar.update(out - self.shown)
        self.shown = out
        self.bar.set_postfix_str(self.stats.status(), refresh=True)

    def note(self, text: str) -> None:
        """One line on stderr above the bar (the bar is redrawn below it)."""
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.update(force=True)
            self.bar.close()


class MultiStats:
    """Statistics of several streams through one engine: a :class:`RunStats` per stream (its FPS, drops,
    reconnects, end-to-end latency), one for all of them together (``total``: FPS over every stream, the
    per-inference pre/infer/post times) and the batch sizes the inferences ran with.

    Each stream's warm-up is ``warmup`` frames; the total's is ``warmup`` frames per stream."""

    def __init__(self, names: list[str], warmup: int = 0) -> None:
        self.warmup = warmup
        self.streams = [RunStats(warmup=warmup) for _ in names]
        for index, (name, stats) in enumerate(zip(names, self.streams)):
            stats.info.update(stream=index, input=name, state="running")
        self.total = RunStats(warmup=warmup * len(names))
        self.info = self.total.info
        self.batch_sizes: dict[int, int] = {}
        self.lock = threading.Lock()

    def batch(self, size: int) -> None:
        """One inference of ``size`` frames (counted from the first; warm-up included)."""
        with self.lock:
            self.batch_sizes[size] = self.batch_sizes.get(size, 0) + 1

    def _totals(self) -> None:
        """Counters the streams set themselves (skipped frames, reconnects) summed into the total."""
        for name in ("skipped", "reconnects"):
            self.total.set_count(name, sum(stats.counts[name] for stats in self.streams))

    def batch_summary(self) -> dict[str, Any]:
        with self.lock:
            sizes = dict(sorted(self.batch_sizes.items()))
        count = sum(sizes.values())
        frames = sum(size * times for size, times in sizes.items())
        return {
            "inferences": count,
            "mean": round(frames / count, 3) if count else 0.0,
            "sizes": {str(size): times for size, times in sizes.items()},
            **({"max": self.info["max_batch"]} if "max_batch" in self.info else {}),
        }

    def summary(self) -> dict[str, Any]:
        """``--stats``: the total's keys (as a single stream's run has them), ``batch`` and a list of ``streams``."""
        self._totals()
        return {**self.total.summary(), "batch": self.batch_summary(), "streams": [s.summary() for s in self.streams]}

    def status(self) -> str:
        return self.total.status()

    def table(self) -> str:
        """Per stream, then the total, then the batches."""
        self._totals()
        rows = [s.summary() for s in self.streams]
        head = (
            f"{'stream':<7}{'fps':>8}{'in':>7}{'out':>7}{'dropped':>9}{'skipped':>9}{'reconn':>8}"
            f"{'e2e p50':>9}{'e2e p95':>9}  {'state':<11}input"
        )
        lines = [head]
        for row in rows:
            e2e = row["latency_ms"].get("end_to_end", {})
            state = row.get("state", "")
            source = f"{row.get('input', '')}" + (f" ({row['error']})" if row.get("error") else "")
            lines.append(
                f"{row['stream']:<7}{row['fps']:>8.2f}{row['frames_in']:>7}{row['frames_out']:>7}{row['dropped']:>9}"
                f"{row['skipped']:>9}{row['reconnects']:>8}{e2e.get('p50', float('nan')):>9.1f}"
                f"{e2e.get('p95', float('nan')):>9.1f}  {state:<11}{source}"
            )
        total = self.total.summary()
        e2e = total["latency_ms"].get("end_to_end", {})
        lines.append(
            f"{'total':<7}{total['fps']:>8.2f}{total['frames_in']:>7}{total['frames_out']:>7}{total['dropped']:>9}"
            f"{total['skipped']:>9}{total['reconnects']:>8}{e2e.get('p50', float('nan')):>9.1f}"
            f"{e2e.get('p95', float('nan')):>9.1f}"
        )
        lines.append(f"{'per inference':<14}{'p50 ms':>8}{'p95 ms':>10}{'max ms':>10}")
        lines.extend(
            f"{stage:<14}{v['p50']:>8.1f}{v['p95']:>10.1f}{v['max']:>10.1f}"
            for stage, v in total["latency_ms"].items()
            if stage in ("pre", "infer", "post")
        )
        batch = self.batch_summary()
        sizes = ", ".join(f"{size}: {times}" for size, times in batch["sizes"].items()) or "none"
        cap = f" (max {batch['max']})" if "max" in batch else ""
        lines.append(f"{batch['inferences']} inferences, mean batch {batch['mean']:.2f}{cap}; batch sizes {sizes}")
        if "backend" in total:
            lines.append(f"{total['backend']} {total.get('precision', '')}, {len(rows)} streams")
        return "\n".join(lines)

    def write_json(self, path: Path) -> None:
        write_text_atomic(path, json.dumps(self.summary(), indent=2) + "\n")
