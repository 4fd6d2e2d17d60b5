"""TensorRT backend: a deserialised engine fed through page-locked host buffers and a CUDA stream per slot.

Two slots (execution context + stream + buffers each) let one frame's copies and kernels overlap the next
frame's (``submit``/``collect``); on an integrated GPU (Jetson) host buffers are mapped into the device address
space, so no copies are made. A frame is prepared straight into the page-locked input of the slot it will run on
(``input_buffer``), not copied there. Buffers are sized once for the profile maximum; every shape and size decision is
in :mod:`runtime.backends.trt_buffers`. pycuda is imported only here, when an engine is opened.

CUDA contexts are per thread, and the backend is opened on one thread and fed from another (``runtime.pipeline``'s
``dsrir-infer``). Everything runs in device 0's *primary* context, the one TensorRT's CUDA runtime uses, pushed
on the calling thread for the duration of each call (``pycuda.autoinit`` would make a private context current on
the importing thread only). On TensorRT 8.x a second execution context gets no optimisation profile unless the
engine shares it (8.6, ``PROFILE_SHARING_0806``) or has one per slot; otherwise fewer slots run, and the
description says so.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dsrir.errors import DSRIRError
from dsrir.trt.engine import io_tensors, load_engine
from dsrir.trt.version import require_tensorrt
from runtime.backends import Backend
from runtime.backends.trt_buffers import (
    BufferPlan,
    needs_realloc,
    plan_buffers,
    profile_candidates,
    profile_from_shapes,
)
from runtime.fit import Profile

if TYPE_CHECKING:
    import tensorrt as trt

SLOTS = 2
SHARING_HINT = (
    "TensorRT 8.x gives a second execution context no optimisation profile unless the engine shares it (8.6, built "
    "by export.build_engine) or has one per slot"
)
PYCUDA_HINT = "the TensorRT backend needs pycuda: pip install pycuda (on Jetson: with CUDA on PATH)"


@dataclass
class Slot:
    """One frame in flight: its own execution context, stream and buffers."""

    context: trt.IExecutionContext
    stream: Any
    profile: int = 0
    host_in: np.ndarray | None = None
    host_out: np.ndarray | None = None
    device_in: Any = None
    device_out: Any = None
    plan: BufferPlan | None = None
    out_shape: tuple[int, ...] = ()
    busy: bool = False


def _cuda() -> tuple[Any, Any]:
    """pycuda's driver module and device 0's primary context (retained, not yet current anywhere)."""
    try:
        cuda = importlib.import_module("pycuda.driver")
    except ImportError:
        raise DSRIRError(PYCUDA_HINT) from None
    cuda.init()
    return cuda, cuda.Device(0).retain_primary_context()


def _numpy_dtype(dtype: trt.DataType) -> np.dtype:
    """The numpy type of a TensorRT tensor type (``tensorrt.nptype``; the stubs leave it untyped)."""
    import tensorrt as trt

    return np.dtype(trt.nptype(dtype))  # type: ignore[no-untyped-call]


def _dims(dims: trt.Dims) -> tuple[int, ...]:
    return tuple(int(dims[i]) for i in range(len(dims)))


def _pinned(cuda: Any, shape: tuple[int, ...], dtype: np.dtype, mapped: bool) -> tuple[np.ndarray, Any]:
    """A page-locked host array and, when ``mapped`` (integrated GPU), its device pointer (else None)."""
    if not mapped:
        return cuda.pagelocked_empty(shape, dtype), None
    host = cuda.pagelocked_empty(shape, dtype, mem_flags=cuda.host_alloc_flags.DEVICEMAP)
    base: Any = host.base
    return host, base.get_device_pointer()


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` are the same memory seen the same way (then copying one into the other is a no-op)."""
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and a.strides == b.strides
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


class TrtBackend(Backend):
    """An engine with one input and one output; float (NCHW) or uint8 (NHWC) I/O read from the engine."""

    name = "tensorrt"
    activation_bytes_per_pixel: int | None = None  # the engine's memory is fixed when it is built: the profile limits
    slots_in_flight = SLOTS

    def __init__(self, path: Path, plugin_lib: str | Path | None = None) -> None:
        require_tensorrt()  # the stubs import too: say "not installed" before asking for pycuda
        self.cuda, self.cuda_context = _cuda()
        self.slots: list[Slot] = []
        try:
            with self._current():
                self._open(path, plugin_lib)
        except BaseException:
            self.cuda_context.detach()
            raise

    @contextlib.contextmanager
    def _current(self) -> Iterator[None]:
        """The primary context current on the calling thread for the duration (CUDA contexts are per thread)."""
        self.cuda_context.push()
        try:
            yield
        finally:
            self.cuda.Context.pop()

    def _open(self, path: Path, plugin_lib: str | Path | None) -> None:
        import tensorrt as trt

        self.engine, sidecar = load_engine(path, plugin_lib)
        names = io_tensors(self.engine)
        inputs = [name for name, mode in names.items() if mode == "input"]
        outputs = [name for name, mode in names.items() if mode == "output"]
        if len(inputs) != 1 or not outputs:
            raise DSRIRError(f"{path}: expected one input and an output, found inputs {inputs} and outputs {outputs}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        # The engine's own I/O types (an FP16-I/O engine has HALF tensors), never assumed.
        self.dtype = _numpy_dtype(self.engine.get_tensor_dtype(self.input_name))
        self.out_dtype = _numpy_dtype(self.engine.get_tensor_dtype(self.output_name))
        uint8 = self.dtype == np.uint8
        self.io, self.layout = ("uint8", "nhwc") if uint8 else ("float", "nchw")
        shapes = self.engine.get_tensor_profile_shape(self.input_name, 0)
        low, opt, high = (_dims(dims) for dims in shapes)
        self.profile: Profile | None = profile_from_shapes(low, opt, high, self.layout)
        self.max_batch: int | None = int(high[0])  # the profile's largest batch; buffers are sized for it
        self.size_multiple = sidecar.size_multiple if sidecar else 8
        self.precision = sidecar.precision if sidecar else "unknown"
        device = self.cuda.Context.get_device()
        self.zero_copy = bool(device.get_attribute(self.cuda.device_attribute.INTEGRATED))
        for index in range(SLOTS):
            slot = self._slot(index)
            if slot is None:
                break
            self.slots.append(slot)
        if not self.slots:
            raise DSRIRError(f"{path}: TensorRT gave the execution context no optimisation profile")
        self.slots_in_flight = len(self.slots)
        self.next_slot = 0
        fewer = "" if len(self.slots) == SLOTS else f", {len(self.slots)} slot: {SHARING_HINT}"
        self.description = f"tensorrt {trt.__version__} ({device.name()}), {self.precision}{fewer}"

    def _slot(self, index: int) -> Slot | None:
        """Execution context ``index`` with a stream and an optimisation profile; None when no profile is free."""
        context = self.engine.create_execution_context()
        if context is None:
            raise DSRIRError("TensorRT could not create an execution context (out of GPU memory?)")
        stream = self.cuda.Stream()
        profile = int(context.active_optimization_profile)
        if profile < 0:  # TensorRT 8.x: profile 0 is held by another context
            candidates = profile_candidates(index, self.engine.num_optimization_profiles)
            profile = next((p for p in candidates if context.set_optimization_profile_async(p, stream.handle)), -1)
        if profile < 0:
            del context
            return None
        return Slot(context, stream, profile)

    def _allocate(self, slot: Slot, hw: tuple[int, int]) -> None:
        """Buffers for the profile maximum (or this frame, when larger than what is allocated)."""
        largest = self.profile.max_hw if self.profile and self.profile.max_hw else hw
        wanted = plan_buffers(largest, self.dtype, self.layout, batch=self.max_batch or 1, output_dtype=self.out_dtype)
        if not needs_realloc(slot.plan, wanted):
            return
        cuda = self.cuda
        slot.host_in, slot.device_in = _pinned(cuda, wanted.input_shape, self.dtype, self.zero_copy)
        slot.host_out, slot.device_out = _pinned(cuda, wanted.output_shape, self.out_dtype, self.zero_copy)
        if not self.zero_copy:
            slot.device_in = cuda.mem_alloc(wanted.input_bytes)
            slot.device_out = cuda.mem_alloc(wanted.output_bytes)
        slot.plan = wanted

    def input_buffer(self, shape: tuple[int, ...]) -> np.ndarray | None:
        """The page-locked input of the slot the next ``submit`` runs on, as an array of ``shape``: a frame prepared
        into it is not copied again. None while that slot is in flight, or for a shape beyond its buffers (then
        ``submit`` says why)."""
        slot = self.slots[self.next_slot]
        if slot.busy:
            return None
        hw = (shape[2], shape[3]) if self.layout == "nchw" else (shape[1], shape[2])
        with self._current():
            self._allocate(slot, hw)
        assert slot.host_in is not None
        count = int(np.prod(shape))
        if count > slot.host_in.size:
            return None
        return slot.host_in.reshape(-1)[:count].reshape(shape)

    def submit(self, batch: np.ndarray) -> int:
        """Start one frame on the next free slot; returns the slot to ``collect``."""
        with self._current():
            return self._submit(batch)

    def _submit(self, batch: np.ndarray) -> int:
        index = self.next_slot
        slot = self.slots[index]
        if slot.busy:  # its frame would be overwritten before anyone collected it
            raise RuntimeError(f"slot {index} is still in flight: collect it before submitting more frames")
        hw = (batch.shape[2], batch.shape[3]) if self.layout == "nchw" else (batch.shape[1], batch.shape[2])
        self._allocate(slot, hw)
        assert slot.host_in is not None and slot.host_out is not None
        if not slot.context.set_input_shape(self.input_name, batch.shape):
            raise DSRIRError(f"the engine does not accept input shape {batch.shape} (profile {self.profile})")
        slot.out_shape = _dims(slot.context.get_tensor_shape(self.output_name))
        flat_in = slot.host_in.reshape(-1)[: batch.size].reshape(batch.shape)
        if not _same_array(batch, flat_in):  # prepared elsewhere than in input_buffer()
            np.copyto(flat_in, batch, casting="same_kind")  # float32 frames into a HALF input too
        slot.context.set_tensor_address(self.input_name, int(slot.device_in))
        slot.context.set_tensor_address(self.output_name, int(slot.device_out))
        if not self.zero_copy:
            self.cuda.memcpy_htod_async(slot.device_in, flat_in, slot.stream)
        if not slot.context.execute_async_v3(slot.stream.handle):
            raise DSRIRError("TensorRT execute_async_v3 failed (see the TensorRT log above)")
        if not self.zero_copy:
            count = int(np.prod(slot.out_shape))
            self.cuda.memcpy_dtoh_async(slot.host_out.reshape(-1)[:count], slot.device_out, slot.stream)
        slot.busy = True
        self.next_slot = (index + 1) % len(self.slots)
        return index

    def collect(self, index: int) -> np.ndarray:
        """Wait for slot ``index`` and return a copy of its output (the slot's buffers are reused); float outputs
        come back as float32 whatever the engine's output type."""
        slot = self.slots[index]
        with self._current():
            slot.stream.synchronize()
        slot.busy = False
        assert slot.host_out is not None
        count = int(np.prod(slot.out_shape))
        output = slot.host_out.reshape(-1)[:count].reshape(slot.out_shape)
        return output.astype(np.float32) if self.io == "float" else np.array(output)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.collect(self.submit(batch))

    def close(self) -> None:
        """Finish what is in flight and free the buffers, streams and contexts in the context that owns them."""
        if not self.slots:
            return
        with self._current():
            for slot in self.slots:
                if slot.busy:
                    slot.stream.synchronize()
                if not self.zero_copy and slot.plan is not None:
                    slot.device_in.free()
                    slot.device_out.free()
            self.slots = []
        self.cuda_context.detach()  # releases the retained primary context
