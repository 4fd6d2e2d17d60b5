"""Frame pre/post-processing into buffers allocated once per frame size, and ``--fit`` for frames a profile cannot take.

At 30 fps a fresh float32 copy of a 1080p frame per step is ~25 MB/frame of allocator churn; the buffers here
are reused while the size is unchanged and re-planned when it changes (a camera renegotiating, a stream switch).
A backend with an input buffer of its own (TensorRT's page-locked host memory, mapped into the GPU on Jetson) has
the frame prepared straight into it (:meth:`runtime.backends.Backend.input_buffer`) instead of copying it there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from dsrir.memory_budget import images_per_inference, tile_for_budget
from dsrir.tiling import TileBlender
from runtime.fit import FitPlan, Profile, fit_frame, padded_hw

if TYPE_CHECKING:
    from runtime.backends import Backend

INV_255 = np.float32(1.0 / 255.0)


class FrameProcessor:
    """BGR uint8 frame -> network input (float: RGB [0, 1] NCHW; uint8: BGR NHWC), padded with reflection to the
    size multiple; network output -> BGR uint8 frame cropped back. ``allocations`` counts buffer (re)plans."""

    def __init__(self, io: str, size_multiple: int, profile: Profile | None = None) -> None:
        self.io, self.multiple, self.profile = io, size_multiple, profile
        self.frame_hw: tuple[int, int] | None = None
        self.allocations = 0
        self.out_float = np.empty((0, 0, 3), np.float32)
        self.batch_hw: tuple[int, int] | None = None  # the batch buffers' frame size and capacity (prepare_batch)
        self.batch_capacity = 0

    def _plan(self, hw: tuple[int, int]) -> None:
        ph, pw = padded_hw(hw, self.multiple, self.profile)
        self.padded = np.empty((1, ph, pw, 3), np.uint8)  # NHWC BGR, the uint8 graph's input as is
        self.rgb: np.ndarray | None = None
        if self.io == "float":
            self.rgb = np.empty((ph, pw, 3), np.uint8)
            self.nchw = np.empty((1, 3, ph, pw), np.float32)
        self.out_float = np.empty((hw[0], hw[1], 3), np.float32)
        self.frame_hw = hw
        self.allocations += 1

    def input_shape(self, hw: tuple[int, int], count: int = 1) -> tuple[int, ...]:
        """The network input's shape for ``count`` frames of ``hw``: (N, 3, H, W) float, (N, H, W, 3) uint8, with H
        and W padded as :meth:`prepare` pads them."""
        ph, pw = padded_hw(hw, self.multiple, self.profile)
        return (count, ph, pw, 3) if self.io == "uint8" else (count, 3, ph, pw)

    def prepare(self, frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The network input for ``frame``: written into ``out`` when given (an array of :meth:`input_shape`, e.g. a
        backend's own input buffer; float I/O may be float16) and returned, else a view of a reused buffer, valid
        until the next call."""
        hw = (frame.shape[0], frame.shape[1])
        if hw != self.frame_hw:
            self._plan(hw)
        target = _target(self.padded if self.io == "uint8" else self.nchw, out)
        if self.io == "uint8":
            self._fill(frame, target[0], None, None)
        else:
            self._fill(frame, self.padded[0], target[0], self.rgb)
        return target

    def _fill(self, frame: np.ndarray, padded: np.ndarray, nchw: np.ndarray | None, rgb: np.ndarray | None) -> None:
        """Pad ``frame`` into ``padded`` (H x W x 3 BGR) and, for float I/O, convert it into ``nchw`` (3 x H x W)."""
        hw = (frame.shape[0], frame.shape[1])
        ph, pw = padded.shape[:2]
        bottom, right = ph - hw[0], pw - hw[1]
        border = cv2.BORDER_REFLECT_101 if bottom < hw[0] and right < hw[1] else cv2.BORDER_REPLICATE
        cv2.copyMakeBorder(frame, 0, bottom, 0, right, border, dst=padded)
        if nchw is not None and rgb is not None:
            cv2.cvtColor(padded, cv2.COLOR_BGR2RGB, dst=rgb)
            np.multiply(rgb.transpose(2, 0, 1), INV_255, out=nchw)

    def prepare_batch(self, frames: list[np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
        """One network input for several frames of one size (a batch of ``len(frames)``): ``out`` when given (as in
        :meth:`prepare`), else a view of buffers kept apart from :meth:`prepare`'s, re-planned when the size changes
        or the batch outgrows them."""
        hw = (frames[0].shape[0], frames[0].shape[1])
        if any((frame.shape[0], frame.shape[1]) != hw for frame in frames):
            raise ValueError("prepare_batch takes frames of one size; group them by size first")
        if hw != self.batch_hw or len(frames) > self.batch_capacity:
            capacity = len(frames) if hw != self.batch_hw else max(len(frames), self.batch_capacity)
            ph, pw = padded_hw(hw, self.multiple, self.profile)
            self.batch_padded = np.empty((capacity, ph, pw, 3), np.uint8)
            if self.io == "float":
                self.batch_rgb = np.empty((ph, pw, 3), np.uint8)
                self.batch_nchw = np.empty((capacity, 3, ph, pw), np.float32)
            self.batch_hw, self.batch_capacity = hw, capacity
            self.allocations += 1
        count = len(frames)
        target = _target(self.batch_padded[:count] if self.io == "uint8" else self.batch_nchw[:count], out)
        for index, frame in enumerate(frames):
            if self.io == "uint8":
                self._fill(frame, target[index], None, None)
            else:
                self._fill(frame, self.batch_padded[index], target[index], self.batch_rgb)
        return target

    def finish(self, output: np.ndarray, hw: tuple[int, int] | None = None) -> np.ndarray:
        """A new BGR uint8 frame (the caller may keep it while the next frame is processed).

        ``hw`` is the size of the frame ``output`` belongs to (default: the last prepared one); with frames in
        flight, the next frame may already have been prepared at another size.
        """
        h, w = hw or self.frame_hw or (0, 0)
        if self.io == "uint8":
            return np.ascontiguousarray(output[0, :h, :w])
        rgb = output[0, :, :h, :w].transpose(1, 2, 0)
        out = self.out_float if self.out_float.shape[:2] == (h, w) else np.empty((h, w, 3), np.float32)
        np.multiply(rgb[..., ::-1], np.float32(255.0), out=out)
        np.clip(out, 0, 255, out=out)
        np.rint(out, out=out)
        return out.astype(np.uint8)


def _target(own: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """Where a frame is prepared: ``out`` (checked against the processor's own buffer's shape), else ``own``."""
    if out is None:
        return own
    if out.shape != own.shape:
        raise ValueError(f"the network input is {own.shape}; out= has shape {out.shape}")
    return out


@dataclass
class Ticket:
    """A frame handed to :meth:`FrameRunner.submit`: either already restored (``result``) or running on the
    backend's ``slot``. ``timings`` accumulates its pre/infer/post seconds."""

    hw: tuple[int, int]
    timings: dict[str, float]
    slot: int | None = None
    result: np.ndarray | None = None


class FrameRunner:
    """One frame through a backend: pre-process, infer, post-process, with ``--fit`` (resize or tiles) applied when
    the frame is outside the backend's profile, and tiles sized by ``max_memory`` (bytes, ``--max-memory``) when its
    activations would not fit. ``timings`` holds the last frame's pre/infer/post seconds.

    Backends with ``submit``/``collect`` (TensorRT: one execution context and stream per slot) keep a frame in
    flight while the next one is prepared: :meth:`submit` starts a frame, :meth:`collect` finishes it. Resized and
    tiled frames, and backends without slots, are restored inside :meth:`submit`.
    """

    def __init__(self, backend: Backend, fit: str = "error", max_memory: int | None = None) -> None:
        self.backend, self.fit, self.max_memory = backend, fit, max_memory
        self.processor = FrameProcessor(backend.io, backend.size_multiple, backend.profile)
        self.plan_hw: tuple[int, int] | None = None
        self.plan: FitPlan | None = None
        self.timings = {"pre": 0.0, "infer": 0.0, "post": 0.0}
        self.in_flight = backend.slots_in_flight

    def _fit_plan(self, hw: tuple[int, int]) -> FitPlan:
        if hw != self.plan_hw or self.plan is None:
            multiple = self.backend.size_multiple
            per_pixel = self.backend.activation_bytes_per_pixel
            budget = self.max_memory
            memory_tile = (
                None if budget is None or per_pixel is None else tile_for_budget(budget, hw, per_pixel, multiple)
            )
            self.plan = fit_frame(hw, multiple, self.backend.profile, self.fit, memory_tile)
            self.plan_hw = hw
        return self.plan

    def _input_buffer(self, frames: list[np.ndarray]) -> np.ndarray | None:
        """The backend's own input buffer for ``frames`` (of one size), to prepare them into; None where it has none."""
        hw = (frames[0].shape[0], frames[0].shape[1])
        return self.backend.input_buffer(self.processor.input_shape(hw, len(frames)))

    def _infer(self, frame: np.ndarray) -> np.ndarray:
        """The backend's output for one frame (pre-processing and inference timed)."""
        start = time.perf_counter()
        batch = self.processor.prepare(frame, self._input_buffer([frame]))
        mid = time.perf_counter()
        output = self.backend.infer(batch)
        self.timings["pre"] += mid - start
        self.timings["infer"] += time.perf_counter() - mid
        return output

    def _one(self, frame: np.ndarray) -> np.ndarray:
        output = self._infer(frame)
        done = time.perf_counter()
        result = self.processor.finish(output)
        self.timings["post"] += time.perf_counter() - done
        return result

    def run(self, frame: np.ndarray) -> np.ndarray:
        """The restored BGR uint8 frame, the same size as ``frame``."""
        self.timings = {"pre": 0.0, "infer": 0.0, "post": 0.0}
        hw = (frame.shape[0], frame.shape[1])
        plan = self._fit_plan(hw)
        if plan.mode == "direct":
            return self._one(frame)
        if plan.mode == "resize":
            small = cv2.resize(frame, (plan.size[1], plan.size[0]), interpolation=cv2.INTER_AREA)
            return cv2.resize(self._one(small), (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)
        return self._tiled(frame, plan)

    def run_batch(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Frames of one size restored in one inference (the network's batch dimension); one frame is :meth:`run`.

        ``timings`` holds the batch's pre/infer/post seconds. Resized frames are batched at the resized size; tiled
        frames are restored one by one (their tiles, one inference each)."""
        if len(frames) == 1:
            return [self.run(frames[0])]
        hw = (frames[0].shape[0], frames[0].shape[1])
        plan = self._fit_plan(hw)
        per_pixel = self.backend.activation_bytes_per_pixel
        if plan.mode == "direct" and self.max_memory is not None and per_pixel is not None:
            size = images_per_inference(self.max_memory, hw, len(frames), per_pixel, self.backend.size_multiple)
            if size < len(frames):  # the budget takes fewer frames per inference
                return self._in_groups(frames, size)
        if plan.mode == "tile":
            return self._in_groups(frames, 1)
        self.timings = {"pre": 0.0, "infer": 0.0, "post": 0.0}
        if plan.mode == "resize":
            dsize = (plan.size[1], plan.size[0])
            small = [cv2.resize(frame, dsize, interpolation=cv2.INTER_AREA) for frame in frames]
            back = (hw[1], hw[0])
            return [cv2.resize(out, back, interpolation=cv2.INTER_LINEAR) for out in self._many(small)]
        return self._many(frames)

    def _in_groups(self, frames: list[np.ndarray], size: int) -> list[np.ndarray]:
        """``run_batch`` over groups of ``size`` frames (one: :meth:`run` each); ``timings`` sums theirs."""
        total = {"pre": 0.0, "infer": 0.0, "post": 0.0}
        results: list[np.ndarray] = []
        for start in range(0, len(frames), size):
            results += self.run_batch(frames[start : start + size])
            for stage, seconds in self.timings.items():
                total[stage] += seconds
        self.timings = total
        return results

    def _many(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        start = time.perf_counter()
        batch = self.processor.prepare_batch(frames, self._input_buffer(frames))
        mid = time.perf_counter()
        output = self.backend.infer(batch)
        done = time.perf_counter()
        hw = (frames[0].shape[0], frames[0].shape[1])
        results = [self.processor.finish(output[index : index + 1], hw) for index in range(len(frames))]
        self.timings["pre"] += mid - start
        self.timings["infer"] += done - mid
        self.timings["post"] += time.perf_counter() - done
        return results

    def submit(self, frame: np.ndarray) -> Ticket:
        """Start ``frame``; it is prepared into the input buffer of the slot it runs on (or the backend copies it
        there), so the next frame may be prepared at once."""
        hw = (frame.shape[0], frame.shape[1])
        if self.in_flight < 2 or self._fit_plan(hw).mode != "direct":
            result = self.run(frame)
            return Ticket(hw, dict(self.timings), result=result)
        start = time.perf_counter()
        batch = self.processor.prepare(frame, self._input_buffer([frame]))
        mid = time.perf_counter()
        slot = self.backend.submit(batch)
        return Ticket(hw, {"pre": mid - start, "infer": time.perf_counter() - mid, "post": 0.0}, slot=slot)

    def collect(self, ticket: Ticket) -> np.ndarray:
        """Wait for ``ticket``'s frame and post-process it; ``timings`` then holds that frame's stage times."""
        if ticket.result is None:
            assert ticket.slot is not None
            start = time.perf_counter()
            output = self.backend.collect(ticket.slot)
            mid = time.perf_counter()
            ticket.result = self.processor.finish(output, ticket.hw)
            ticket.timings["infer"] += mid - start
            ticket.timings["post"] += time.perf_counter() - mid
        self.timings = ticket.timings
        return ticket.result

    def _tiled(self, frame: np.ndarray, plan: FitPlan) -> np.ndarray:
        """Tiles restored one by one and blended as :mod:`dsrir.tiling` says, in the network's float output before
        rounding to 8 bits, as the offline Restorer does, so both give the same pixels."""
        assert plan.tiling is not None
        blender = TileBlender(plan.tiling, (3,))
        th, tw = plan.tiling.tile_hw
        for top, left in plan.tiling.boxes():
            output = self._infer(np.ascontiguousarray(frame[top : top + th, left : left + tw]))
            done = time.perf_counter()
            # float I/O: RGB in [0, 1], channels first; uint8 I/O: BGR 0-255, channels last
            planes = output[0, :, :th, :tw] if self.backend.io == "float" else output[0, :th, :tw].transpose(2, 0, 1)
            blender.add(top, left, planes)
            self.timings["post"] += time.perf_counter() - done
        done = time.perf_counter()
        blended = blender.result()
        if self.backend.io == "float":
            restored = self.processor.finish(blended[None], (frame.shape[0], frame.shape[1]))
        else:
            restored = np.ascontiguousarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8).transpose(1, 2, 0))
        self.timings["post"] += time.perf_counter() - done
        return restored
