"""TensorRT backend: a deserialised engine fed through page-locked host buffers and a CUDA stream per slot.

Two slots (execution context + stream + buffers each) let one frame's copies and kernels overlap the next
frame's (``submit``/``collect``); on an integrated GPU (Jetson) host buffers are mapped into the device address
space, so no copies are made. Buffers are sized once for the profile maximum; every shape and size decision is
in :mod:`runtime.backends.trt_buffers`. pycuda is imported only here, when an engine is opened.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dsrir.errors import DSRIRError
from export.engine_io import io_tensors, load_engine
from export.trt_version import require_tensorrt
from runtime.backends.trt_buffers import BufferPlan, Profile, needs_realloc, plan_buffers, profile_from_shapes

if TYPE_CHECKING:
    import tensorrt as trt

SLOTS = 2
PYCUDA_HINT = "the TensorRT backend needs pycuda: pip install pycuda (on Jetson: with CUDA on PATH)"


@dataclass
class Slot:
    """One frame in flight: its own execution context, stream and buffers."""

    context: trt.IExecutionContext
    stream: Any
    host_in: np.ndarray | None = None
    host_out: np.ndarray | None = None
    device_in: Any = None
    device_out: Any = None
    plan: BufferPlan | None = None
    out_shape: tuple[int, ...] = ()
    busy: bool = False


def _cuda() -> Any:
    """pycuda's driver module with a context made current (pycuda.autoinit)."""
    try:
        importlib.import_module("pycuda.autoinit")
        return importlib.import_module("pycuda.driver")
    except ImportError:
        raise DSRIRError(PYCUDA_HINT) from None


def _dims(dims: trt.Dims) -> tuple[int, ...]:
    return tuple(int(dims[i]) for i in range(len(dims)))


def _pinned(cuda: Any, shape: tuple[int, ...], dtype: np.dtype, mapped: bool) -> tuple[np.ndarray, Any]:
    """A page-locked host array and, when ``mapped`` (integrated GPU), its device pointer (else None)."""
    if not mapped:
        return cuda.pagelocked_empty(shape, dtype), None
    host = cuda.pagelocked_empty(shape, dtype, mem_flags=cuda.host_alloc_flags.DEVICEMAP)
    base: Any = host.base
    return host, base.get_device_pointer()


class TrtBackend:
    """An engine with one input and one output; float (NCHW) or uint8 (NHWC) I/O read from the engine."""

    name = "tensorrt"
    slots_in_flight = SLOTS

    def __init__(self, path: Path, plugin_lib: str | Path | None = None) -> None:
        require_tensorrt()  # the stubs import too: say "not installed" before asking for pycuda
        import tensorrt as trt

        self.cuda = _cuda()
        self.engine, sidecar = load_engine(path, plugin_lib)
        names = io_tensors(self.engine)
        inputs = [name for name, mode in names.items() if mode == "input"]
        outputs = [name for name, mode in names.items() if mode == "output"]
        if len(inputs) != 1 or not outputs:
            raise DSRIRError(f"{path}: expected one input and an output, found inputs {inputs} and outputs {outputs}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        uint8 = self.engine.get_tensor_dtype(self.input_name) == trt.DataType.UINT8
        self.io, self.layout = ("uint8", "nhwc") if uint8 else ("float", "nchw")
        self.dtype = np.dtype(np.uint8 if uint8 else np.float32)
        shapes = self.engine.get_tensor_profile_shape(self.input_name, 0)
        low, opt, high = (_dims(dims) for dims in shapes)
        self.profile: Profile | None = profile_from_shapes(low, opt, high, self.layout)
        self.size_multiple = sidecar.size_multiple if sidecar else 8
        self.precision = sidecar.precision if sidecar else "unknown"
        device = self.cuda.Context.get_device()
        self.zero_copy = bool(device.get_attribute(self.cuda.device_attribute.INTEGRATED))
        self.slots = [self._slot() for _ in range(SLOTS)]
        self.next_slot = 0
        self.description = f"tensorrt {trt.__version__} ({device.name()}), {self.precision}"

    def _slot(self) -> Slot:
        context = self.engine.create_execution_context()
        if context is None:
            raise DSRIRError("TensorRT could not create an execution context (out of GPU memory?)")
        return Slot(context, self.cuda.Stream())

    def _allocate(self, slot: Slot, hw: tuple[int, int]) -> None:
        """Buffers for the profile maximum (or this frame, when larger than what is allocated)."""
        largest = self.profile.max_hw if self.profile and self.profile.max_hw else hw
        wanted = plan_buffers(largest, self.dtype, self.layout)
        if not needs_realloc(slot.plan, wanted):
            return
        cuda = self.cuda
        slot.host_in, slot.device_in = _pinned(cuda, wanted.input_shape, self.dtype, self.zero_copy)
        slot.host_out, slot.device_out = _pinned(cuda, wanted.output_shape, self.dtype, self.zero_copy)
        if not self.zero_copy:
            slot.device_in = cuda.mem_alloc(wanted.input_bytes)
            slot.device_out = cuda.mem_alloc(wanted.output_bytes)
        slot.plan = wanted

    def submit(self, batch: np.ndarray) -> int:
        """Start one frame on the next free slot; returns the slot to ``collect``."""
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
        np.copyto(flat_in, batch)
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
        self.next_slot = (index + 1) % SLOTS
        return index

    def collect(self, index: int) -> np.ndarray:
        """Wait for slot ``index`` and return a copy of its output (the slot's buffers are reused)."""
        slot = self.slots[index]
        slot.stream.synchronize()
        slot.busy = False
        assert slot.host_out is not None
        count = int(np.prod(slot.out_shape))
        return np.array(slot.host_out.reshape(-1)[:count].reshape(slot.out_shape))

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.collect(self.submit(batch))

    def close(self) -> None:
        for slot in self.slots:
            if slot.busy:
                slot.stream.synchronize()
        self.slots = []
