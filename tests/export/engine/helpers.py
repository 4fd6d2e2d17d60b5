"""What the export.engine and export.build_engine tests share: a tiny DSRIR-shaped ONNX graph, a plan for it, the
CLI in-process, and a recording fake of the tensorrt module."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dsrir.graph.metadata import ExportMetadata, write_metadata
from dsrir.trt.gpu import GpuInfo
from export import build_engine
from export.engine.graph import inspect_onnx
from export.engine.plan import BuildOptions, make_plan


def make_onnx(
    path: Path, kind: str = "fp32", io: str = "float", plugin: bool = False, hw: int | None = None, opset: int = 17
) -> Path:
    """A tiny DSRIR-shaped graph: image in, 1x1 conv (+ optional Q/DQ and plugin node), image out; opset 17 by
    default, which every targeted TensorRT (8.5 to 11.x) imports. ``kind`` ``cpu_int8`` is ONNX Runtime's CPU INT8
    form: a UINT8 Q/DQ pair with zero point 128 and ``dsrir.precision`` int8-cpu."""
    ftype = TensorProto.FLOAT16 if kind == "fp16" else TensorProto.FLOAT
    height, width = (hw, hw) if hw else ("height", "width")
    weight = np.ones((3, 3, 1, 1), np.float16 if kind == "fp16" else np.float32)
    nodes, inits = [], [numpy_helper.from_array(weight, "w")]
    if io == "uint8":
        image = helper.make_tensor_value_info("frames", TensorProto.UINT8, ["batch", height, width, 3])
        nodes += [
            helper.make_node("Cast", ["frames"], ["c"], to=ftype),
            helper.make_node("Transpose", ["c"], ["x"], perm=[0, 3, 1, 2]),
        ]
    else:
        image = helper.make_tensor_value_info("input", ftype, ["batch", 3, height, width])
        nodes.append(helper.make_node("Identity", ["input"], ["x"]))
    source = "x"
    if kind in ("qdq", "cpu_int8"):
        zero_point = np.array(128, np.uint8) if kind == "cpu_int8" else np.array(0, np.int8)
        inits += [
            numpy_helper.from_array(np.array(0.01, np.float32), "s"),
            numpy_helper.from_array(zero_point, "z"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"]),
        ]
        source = "dq"
    nodes.append(helper.make_node("Conv", [source, "w"], ["y"]))
    opsets = [helper.make_opsetid("", opset)]
    if plugin:
        for name, shape in (("w1", (1, 3)), ("b1", (1,)), ("w2", (3, 1)), ("b2", (3,))):
            inits.append(numpy_helper.from_array(np.ones(shape, np.float32), name))
        attrs = {"plugin_version": "1", "plugin_namespace": "", "grid_h": 4, "grid_w": 4}
        nodes.append(
            helper.make_node(
                "DSRIR_PatchAttention", ["y", "w1", "b1", "w2", "b2"], ["y2"], domain="trt.plugins", **attrs
            )
        )
        opsets.append(helper.make_opsetid("trt.plugins", 1))
    last = "y2" if plugin else "y"
    if io == "uint8":
        nodes += [
            helper.make_node("Transpose", [last], ["t"], perm=[0, 2, 3, 1]),
            helper.make_node("Cast", ["t"], ["output"], to=TensorProto.UINT8),
        ]
        out = helper.make_tensor_value_info("output", TensorProto.UINT8, ["batch", height, width, 3])
    else:
        nodes.append(helper.make_node("Identity", [last], ["output"]))
        out = helper.make_tensor_value_info("output", ftype, ["batch", 3, height, width])
    model = helper.make_model(helper.make_graph(nodes, "dsrir", [image], [out], inits), opset_imports=opsets)
    precision = {"qdq": "int8-qdq", "cpu_int8": "int8-cpu"}.get(kind, kind)
    flavour = "plugin" if plugin else "decomposed"
    write_metadata(model, ExportMetadata("dsrir-xs", "all_in_one", flavour, precision, io, 8, "0-1", "0.1.0"))
    onnx.save(model, str(path))
    return path


def plan_for(version: tuple[int, ...], onnx_path: Path, gpu: GpuInfo | None = None, **options: Any) -> Any:
    return make_plan(BuildOptions(onnx=onnx_path, **options), inspect_onnx(onnx_path), version, gpu)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = build_engine.main(args)
    out, err = capsys.readouterr()
    return code, out, err


class _Enum:
    def __init__(self, *names: str) -> None:
        for value, name in enumerate(names):
            setattr(self, name, value)


def fake_tensorrt(version: str = "10.3.0.30", dla_cores: int = 0, creator: bool = True) -> types.ModuleType:
    """Just enough of the tensorrt module for the builder and the loader, recording every call."""
    trt = types.ModuleType("tensorrt")
    calls: list[tuple[Any, ...]] = []
    trt.calls = calls  # type: ignore[attr-defined]
    trt.__version__ = version  # type: ignore[attr-defined]
    trt.NetworkDefinitionCreationFlag = _Enum("EXPLICIT_BATCH", "STRONGLY_TYPED")  # type: ignore[attr-defined]
    trt.BuilderFlag = _Enum("FP16", "INT8", "DEBUG", "GPU_FALLBACK", "VERSION_COMPATIBLE")  # type: ignore[attr-defined]
    trt.MemoryPoolType = _Enum("WORKSPACE")  # type: ignore[attr-defined]
    trt.DeviceType = _Enum("GPU", "DLA")  # type: ignore[attr-defined]
    trt.HardwareCompatibilityLevel = _Enum("NONE", "AMPERE_PLUS")  # type: ignore[attr-defined]
    trt.TensorIOMode = _Enum("NONE", "INPUT", "OUTPUT")  # type: ignore[attr-defined]

    class Logger:
        WARNING = 2

        def __init__(self, severity: int) -> None:
            pass

    class Registry:
        def get_creator(self, *key: str) -> object | None:
            calls.append(("get_creator", *key))
            return object() if creator else None

        get_plugin_creator = get_creator

        def load_library(self, path: str) -> object:
            calls.append(("load_library", path))
            return object()

    registry = Registry()

    class Cache:
        def serialize(self) -> bytes:
            return b"timing-cache"

    class Config:
        def __setattr__(self, name: str, value: Any) -> None:
            calls.append(("config", name, value))

        def set_flag(self, flag: int) -> None:
            calls.append(("flag", flag))

        def set_memory_pool_limit(self, pool: int, size: int) -> None:
            calls.append(("pool", pool, size))

        def add_optimization_profile(self, profile: Any) -> int:
            return 0

        def create_timing_cache(self, data: bytes) -> Cache:
            calls.append(("timing_cache_in", data))
            return Cache()

        def set_timing_cache(self, cache: Cache, ignore_mismatch: bool) -> bool:
            return True

        def set_calibration_profile(self, profile: Any) -> bool:
            return True

    class Profile:
        def set_shape(self, name: str, *shapes: list[int]) -> None:
            calls.append(("shape", name, *shapes))

    class Builder:
        num_DLA_cores = dla_cores

        def __init__(self, logger: Logger) -> None:
            pass

        def create_network(self, flags: int) -> str:
            calls.append(("network", flags))
            return "network"

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: str, config: Config) -> bytes:
            return b"serialized-engine"

    class OnnxParser:
        """Refuses what this TensorRT version's importer refuses (dsrir/trt/import_rules.py), as the real one
        would, instead of accepting every file."""

        def __init__(self, network: str, logger: Logger) -> None:
            self.errors: list[str] = []

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, index: int) -> str:
            return self.errors[index]

        def parse_from_file(self, path: str) -> bool:
            from dsrir.trt.import_rules import check_for_target

            calls.append(("parse", path))
            self.errors = [str(problem) for problem in check_for_target(onnx.load(path), version)]
            return not self.errors

    class Engine:
        num_io_tensors = 2

        def get_tensor_name(self, index: int) -> str:
            return ["input", "output"][index]

        def get_tensor_mode(self, name: str) -> int:
            return 1 if name == "input" else 2

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
            calls.append(("deserialize", len(data)))
            return Engine() if data == b"serialized-engine" else None

    trt.Logger, trt.Builder, trt.OnnxParser, trt.Runtime = Logger, Builder, OnnxParser, Runtime  # type: ignore[attr-defined]
    trt.Dims = list  # type: ignore[attr-defined]
    trt.get_plugin_registry = lambda: registry  # type: ignore[attr-defined]

    class IInt8EntropyCalibrator2:
        def __init__(self) -> None:
            pass

    trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2  # type: ignore[attr-defined]
    return trt
