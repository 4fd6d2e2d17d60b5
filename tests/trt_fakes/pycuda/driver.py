"""Fake ``pycuda.driver``: device memory is numpy bytes; every call checks the calling thread's current context."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import numpy as np

_local = threading.local()
_next_pointer = itertools.count(0x7F0000000000, 0x100000)
_allocations: dict[int, DeviceAllocation] = {}
_streams: dict[int, Stream] = {}
_initialised = False


class LogicError(RuntimeError):
    pass


class device_attribute:  # noqa: N801 - pycuda's spelling
    INTEGRATED = "INTEGRATED"


class host_alloc_flags:  # noqa: N801
    DEVICEMAP = 2


def init() -> None:
    global _initialised
    _initialised = True


def _stack() -> list[Context]:
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def current_context() -> Context | None:
    stack = _stack()
    return stack[-1] if stack else None


def effective_context() -> Context:
    """What the CUDA runtime (TensorRT) uses: the current context, else the primary context of device 0."""
    return current_context() or Device(0).primary


def _require_current(what: str) -> Context:
    context = current_context()
    if context is None:
        raise LogicError(f"{what} failed: invalid device context (no CUDA context is current on this thread)")
    return context


class Device:
    _devices: dict[int, Device] = {}
    integrated = False

    def __new__(cls, ordinal: int) -> Device:
        if not _initialised:
            raise LogicError("cuInit has not been called")
        if ordinal not in cls._devices:
            device = super().__new__(cls)
            device.ordinal = ordinal
            device.primary = Context(device, primary=True)
            cls._devices[ordinal] = device
        return cls._devices[ordinal]

    ordinal: int
    primary: Context

    def make_context(self) -> Context:
        context = Context(self, primary=False)
        context.push()
        return context

    def retain_primary_context(self) -> Context:
        return self.primary

    def name(self) -> str:
        return "Fake GPU"

    def get_attribute(self, attribute: str) -> int:
        return int(self.integrated) if attribute == device_attribute.INTEGRATED else 0


class Context:
    def __init__(self, device: Device, primary: bool) -> None:
        self.device, self.primary = device, primary

    def push(self) -> None:
        _stack().append(self)

    @staticmethod
    def pop() -> None:
        _require_current("cuCtxPopCurrent")
        _stack().pop()

    @staticmethod
    def get_current() -> Context | None:
        return current_context()

    @staticmethod
    def get_device() -> Device:
        return _require_current("cuCtxGetDevice").device

    def detach(self) -> None:
        pass


class DeviceAllocation:
    def __init__(self, size: int, context: Context) -> None:
        self.pointer, self.context = next(_next_pointer), context
        self.data = np.zeros(size, np.uint8)
        _allocations[self.pointer] = self

    def __int__(self) -> int:
        return self.pointer

    def free(self) -> None:
        _allocations.pop(self.pointer, None)


def allocation_at(pointer: int, context: Context, what: str) -> DeviceAllocation:
    """The allocation ``pointer`` points to; LogicError when it is unknown or belongs to another context."""
    allocation = _allocations.get(int(pointer))
    if allocation is None:
        raise LogicError(f"{what}: {pointer:#x} is not a device allocation")
    if allocation.context is not context:
        raise LogicError(f"{what}: memory of another CUDA context used (an illegal address in that context)")
    return allocation


def mem_alloc(size: int) -> DeviceAllocation:
    return DeviceAllocation(int(size), _require_current("cuMemAlloc"))


def pagelocked_empty(shape: Any, dtype: Any, order: str = "C", mem_flags: int = 0) -> np.ndarray:
    _require_current("cuMemHostAlloc")
    if mem_flags & host_alloc_flags.DEVICEMAP:
        raise LogicError("the fake GPU is discrete: mapped host memory is not expected")
    return np.empty(shape, dtype, order=order)


class Stream:
    def __init__(self) -> None:
        self.context = _require_current("cuStreamCreate")
        self.handle = id(self)
        self.pending: list[Any] = []
        _streams[self.handle] = self

    def synchronize(self) -> None:
        if _require_current("cuStreamSynchronize") is not self.context:
            raise LogicError("cuStreamSynchronize: the stream belongs to another context")
        for work in self.pending:
            work()
        self.pending.clear()


def stream_with_handle(handle: int) -> Stream:
    if handle not in _streams:
        raise LogicError(f"{handle:#x} is not a stream")
    return _streams[handle]


def _copy_checks(device: Any, stream: Stream, what: str) -> DeviceAllocation:
    context = _require_current(what)
    if stream.context is not context:
        raise LogicError(f"{what}: the stream belongs to another context")
    return allocation_at(int(device), context, what)


def memcpy_htod_async(device: Any, host: np.ndarray, stream: Stream) -> None:
    allocation = _copy_checks(device, stream, "cuMemcpyHtoDAsync")
    raw = np.ascontiguousarray(host).view(np.uint8).reshape(-1).copy()  # the copy is queued on the stream
    if raw.size > allocation.data.size:
        raise LogicError("cuMemcpyHtoDAsync: copy larger than the allocation")
    stream.pending.append(lambda: allocation.data.__setitem__(slice(0, raw.size), raw))


def memcpy_dtoh_async(host: np.ndarray, device: Any, stream: Stream) -> None:
    allocation = _copy_checks(device, stream, "cuMemcpyDtoHAsync")
    target = host.reshape(-1).view(np.uint8)
    if target.size > allocation.data.size:
        raise LogicError("cuMemcpyDtoHAsync: copy larger than the allocation")
    stream.pending.append(lambda: target.__setitem__(slice(None), allocation.data[: target.size]))
