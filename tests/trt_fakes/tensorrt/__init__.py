"""Fake TensorRT Python API (tests/trt_fakes/README.md): the runtime side the backend uses, with its contracts.

``__version__`` is set by the test (8.5.3, 8.6.1, 10.3.0, ...) and every version-dependent rule reads it at call
time. An engine file is JSON: {"inputs"/"outputs": [{"name", "dtype"}], "profiles": [[min, opt, max]],
"profile_sharing": bool, "scale": float, "offset": float}; the output is input * scale + offset.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Any

import numpy as np
from pycuda import driver

__version__ = "10.3.0"


def _major() -> int:
    return int(__version__.split(".")[0])


class DataType(enum.Enum):
    FLOAT = "float32"
    HALF = "float16"
    UINT8 = "uint8"
    INT8 = "int8"
    INT32 = "int32"


def nptype(dtype: DataType) -> type:
    return np.dtype(dtype.value).type


class TensorIOMode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class Logger:
    WARNING = 2

    def __init__(self, severity: int = 2) -> None:
        self.severity = severity


class Dims(tuple):  # type: ignore[type-arg]
    pass


class ICudaEngine:
    def __init__(self, spec: dict[str, Any], context: driver.Context) -> None:
        self.spec, self.cuda_context = spec, context
        self.tensors = {t["name"]: ("input", t) for t in spec["inputs"]} | {
            t["name"]: ("output", t) for t in spec["outputs"]
        }
        self.contexts: list[IExecutionContext] = []

    @property
    def num_io_tensors(self) -> int:
        return len(self.tensors)

    @property
    def num_optimization_profiles(self) -> int:
        return len(self.spec["profiles"])

    def get_tensor_name(self, index: int) -> str:
        return list(self.tensors)[index]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return TensorIOMode.INPUT if self.tensors[name][0] == "input" else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str) -> DataType:
        return DataType(self.tensors[name][1]["dtype"])

    def get_tensor_profile_shape(self, name: str, profile: int) -> list[Dims]:
        if self.tensors[name][0] != "input" or not 0 <= profile < self.num_optimization_profiles:
            raise ValueError(f"no profile shape for {name} in profile {profile}")
        return [Dims(shape) for shape in self.spec["profiles"][profile]]

    def create_execution_context(self) -> IExecutionContext:
        if driver.effective_context() is not self.cuda_context:
            raise RuntimeError("createExecutionContext: called in another CUDA context than the engine's")
        held = {c.profile for c in self.contexts}
        # NvInferRuntime.h v8.6.1: profile 0 implicitly only if no other context holds it; from 10.0 always 0.
        profile = 0 if _major() >= 10 or 0 not in held else -1
        context = IExecutionContext(self, profile)
        self.contexts.append(context)
        return context


class IExecutionContext:
    def __init__(self, engine: ICudaEngine, profile: int) -> None:
        self.engine, self.profile = engine, profile
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}

    @property
    def active_optimization_profile(self) -> int:
        return self.profile

    def set_optimization_profile_async(self, index: int, stream_handle: int) -> bool:
        engine = self.engine
        if not 0 <= index < engine.num_optimization_profiles:
            return False
        others = {c.profile for c in engine.contexts if c is not self}
        sharing = _major() >= 10 or (__version__.startswith("8.6") and engine.spec.get("profile_sharing", False))
        if index in others and not sharing:
            return False  # 8.x: "profile is already used by another execution context"
        driver.stream_with_handle(stream_handle)
        self.profile = index
        return True

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        if self.profile < 0:
            return False  # NvInferRuntime.h v8.6.1: fails while getOptimizationProfile() is -1
        low, _, high = self.engine.spec["profiles"][self.profile]
        if len(shape) != len(low) or any(not lo <= s <= hi for s, lo, hi in zip(shape, low, high)):
            return False
        self.shapes[name] = tuple(int(s) for s in shape)
        return True

    def get_tensor_shape(self, name: str) -> Dims:
        source = self.engine.spec["inputs"][0]["name"]
        return Dims(self.shapes[source])  # pointwise: every output has the input's shape

    def set_tensor_address(self, name: str, address: int) -> bool:
        self.addresses[name] = int(address)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        if self.profile < 0:
            return False
        context = driver.effective_context()
        if context is not self.engine.cuda_context:
            raise driver.LogicError("enqueueV3: the current CUDA context is not the engine's (illegal address)")
        stream = driver.stream_with_handle(stream_handle)
        if stream.context is not context:
            raise driver.LogicError("enqueueV3: the stream belongs to another CUDA context")
        spec = self.engine.spec
        source, target = spec["inputs"][0], spec["outputs"][0]
        shape = self.shapes[source["name"]]
        src = driver.allocation_at(self.addresses[source["name"]], context, "enqueueV3 input")
        dst = driver.allocation_at(self.addresses[target["name"]], context, "enqueueV3 output")
        in_dtype, out_dtype = np.dtype(source["dtype"]), np.dtype(target["dtype"])
        count = int(np.prod(shape))

        def run() -> None:
            x = src.data[: count * in_dtype.itemsize].view(in_dtype).astype(np.float32)
            y = (x * spec.get("scale", 1.0) + spec.get("offset", 0.0)).astype(out_dtype)
            dst.data[: y.nbytes] = y.view(np.uint8)

        stream.pending.append(run)
        return True


class IPluginRegistry:
    def __init__(self) -> None:
        self.creators: set[str] = set()
        self.loaded: list[str] = []

    def load_library(self, path: str) -> object | None:
        """The fake library file lists its creators (JSON); None when any is registered already, as TensorRT."""
        names = set(json.loads(Path(path).read_text())["creators"])
        if names & self.creators:
            return None
        self.creators |= names
        self.loaded.append(path)
        return object()

    def get_creator(self, name: str, version: str, namespace: str = "") -> object | None:
        return object() if name in self.creators else None

    get_plugin_creator = get_creator


_registry = IPluginRegistry()


def get_plugin_registry() -> IPluginRegistry:
    return _registry


class Runtime:
    def __init__(self, logger: Logger) -> None:
        self.logger = logger
        self.engine_host_code_allowed = False

    def deserialize_cuda_engine(self, data: bytes) -> ICudaEngine | None:
        try:
            spec = json.loads(data)
        except ValueError:
            return None
        return ICudaEngine(spec, driver.effective_context())


class Builder:  # present so that dsrir.trt.version counts this module as an installed TensorRT
    def __init__(self, logger: Logger) -> None:
        raise NotImplementedError("the fake TensorRT has no builder")
