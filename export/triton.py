"""``python -m export.triton --model dsrir.engine|dsrir.onnx``: a Triton Inference Server model repository.

Writes ``{--output-dir}/{--name}/config.pbtxt`` and ``{--output-dir}/{--name}/1/model.plan`` (TensorRT engine,
platform ``tensorrt_plan``) or ``.../1/model.onnx`` (platform ``onnxruntime_onnx``). The configuration is built as
Triton's own ``ModelConfig`` protobuf (shipped with ``tritonclient``), so a field name or type Triton would reject
cannot be written; I/O names, types and dynamic dims come from the ONNX graph and its ``dsrir.*`` metadata, or from
the engine's ``.json`` sidecar (an engine cannot be opened without TensorRT), whose compatibility facts (TensorRT
version, GPU, plugin library) go into the model's ``parameters``.

With ``max_batch_size`` > 0 Triton owns the first (batch) dimension, so ``dims`` leave it out; an engine's
``max_batch_size`` cannot exceed its optimisation profile's largest batch. A plugin engine needs the plugin library
loaded by the server: ``tritonserver --backend-config=tensorrt,plugins=/path/libdsrir_plugins.so`` (or
``LD_PRELOAD``), printed at the end. The model directory is built beside its final place and renamed into it, so a
repository a server is watching never sees half a model.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from dsrir.cli import command, non_negative_int
from dsrir.cli_help import DefaultsHelpFormatter
from dsrir.errors import DSRIRError
from dsrir.graph.metadata import SERVED_NAME
from dsrir.trt.sidecar import EngineSidecar, read_sidecar, sidecar_path
from export.engine.graph import TensorInfo, inspect_onnx

TRITONCLIENT_HINT = (
    "export.triton builds Triton's model-config protobuf from tritonclient: pip install 'tritonclient[grpc]'"
)
PLATFORMS = {".onnx": ("onnxruntime_onnx", "model.onnx"), ".engine": ("tensorrt_plan", "model.plan")}
PLATFORMS[".plan"] = PLATFORMS[".engine"]
DATA_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "uint8": "TYPE_UINT8", "int8": "TYPE_INT8"}
INSTANCE_KINDS = {"auto": "KIND_AUTO", "gpu": "KIND_GPU", "cpu": "KIND_CPU"}
DEFAULT_NAME, DEFAULT_BATCH = SERVED_NAME, 4  # the name runtime.serve serves under too: triton:// URIs carry over


@dataclass(frozen=True)
class Tensor:
    """One model input or output as Triton sees it: full dims with the batch first, -1 where dynamic."""

    name: str
    dtype: str
    dims: tuple[int, ...]


@dataclass(frozen=True)
class ModelFacts:
    """What the configuration is made from, whichever file it came from."""

    platform: str
    filename: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    max_batch: int | None  # the largest batch the model takes (None: unlimited)
    parameters: dict[str, str]
    plugin_library: str | None = None


def model_config_pb2() -> Any:
    try:
        from tritonclient.grpc import model_config_pb2  # type: ignore[import-untyped]
    except ImportError:
        raise DSRIRError(TRITONCLIENT_HINT) from None
    return model_config_pb2


def _dims(info: TensorInfo) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) and d > 0 else -1 for d in info.dims)


def onnx_facts(path: Path) -> ModelFacts:
    """I/O and metadata of an ``export.onnx`` graph (checked as the engine builder checks it)."""
    graph = inspect_onnx(path)
    first = _dims(graph.input)[0]
    parameters = {f"dsrir.{key}": value for key, value in dataclasses.asdict(graph.metadata).items()}
    return ModelFacts(
        "onnxruntime_onnx",
        "model.onnx",
        (Tensor(graph.input.name, graph.input.dtype, _dims(graph.input)),),
        tuple(Tensor(o.name, o.dtype, _dims(o)) for o in graph.outputs),
        None if first < 0 else first,
        {key: str(value) for key, value in parameters.items()},
    )


def engine_facts(path: Path) -> ModelFacts:
    """I/O and compatibility facts of a ``export.build_engine`` engine, from its sidecar."""
    sidecar = read_sidecar(sidecar_path(path))
    if sidecar is None:
        raise DSRIRError(
            f"{path}: no sidecar {sidecar_path(path).name}; Triton's config needs the engine's I/O, which only "
            "TensorRT can read from the engine itself: rebuild it with python -m export.build_engine"
        )
    low, high = sidecar.profile.get("min"), sidecar.profile.get("max")
    if not low or not high or not sidecar.inputs or not sidecar.outputs:
        raise DSRIRError(f"{sidecar_path(path)}: lacks the profile or the I/O tensors; rebuild the engine")
    dims = tuple(lo if lo == hi else -1 for lo, hi in zip(low, high))  # DSRIR's output has its input's shape
    return ModelFacts(
        "tensorrt_plan",
        "model.plan",
        tuple(Tensor(t["name"], t["dtype"], dims) for t in sidecar.inputs),
        tuple(Tensor(t["name"], t["dtype"], dims) for t in sidecar.outputs),
        int(high[0]),
        _sidecar_parameters(sidecar),
        sidecar.plugin_library,
    )


def _sidecar_parameters(sidecar: EngineSidecar) -> dict[str, str]:
    facts = {
        "tensorrt_version": sidecar.tensorrt_version,
        "gpu_name": sidecar.gpu_name,
        "compute_capability": sidecar.compute_capability,
        "precision": sidecar.precision,
        "io": sidecar.io,
        "size_multiple": str(sidecar.size_multiple),
        "preset": sidecar.preset,
        "version_compatible": str(sidecar.version_compatible).lower(),
        "hardware_compatibility": sidecar.hardware_compatibility,
        "plugin_library": sidecar.plugin_library or "",
        "rebuild_command": sidecar.rebuild_command or "",
    }
    return {f"dsrir.{key}": value for key, value in facts.items() if value}


def model_facts(path: Path) -> ModelFacts:
    if not path.is_file():
        raise DSRIRError(f"--model {path}: file not found")
    suffix = path.suffix.lower()
    if suffix not in PLATFORMS:
        raise DSRIRError(f"--model {path}: expected a TensorRT engine (.engine, .plan) or an ONNX graph (.onnx)")
    return onnx_facts(path) if suffix == ".onnx" else engine_facts(path)


def build_config(
    facts: ModelFacts,
    name: str,
    max_batch_size: int,
    instances: int,
    instance_kind: str,
    preferred_batch_sizes: Sequence[int],
    max_queue_delay_us: int,
) -> Any:
    """Triton's ``ModelConfig`` for ``facts``; DSRIRError for settings the model cannot honour."""
    pb = model_config_pb2()
    if max_batch_size < 0:
        raise DSRIRError(f"--max-batch-size {max_batch_size}: expected 0 (no batching) or more")
    if facts.max_batch is not None and max_batch_size > facts.max_batch:
        raise DSRIRError(
            f"--max-batch-size {max_batch_size}: the model takes at most {facts.max_batch} frames per batch "
            f"(rebuild the engine with --max-shape {facts.max_batch}x...)"
        )
    if any(size < 1 or size > max(max_batch_size, 1) for size in preferred_batch_sizes):
        raise DSRIRError(f"--preferred-batch-size {list(preferred_batch_sizes)}: expected sizes in 1..{max_batch_size}")
    if instances < 1:
        raise DSRIRError(f"--instances {instances}: expected at least 1")
    config = pb.ModelConfig(name=name, platform=facts.platform, max_batch_size=max_batch_size)
    for tensors, field in ((facts.inputs, config.input), (facts.outputs, config.output)):
        for tensor in tensors:
            if tensor.dtype not in DATA_TYPES:
                raise DSRIRError(f"tensor {tensor.name!r} is {tensor.dtype}: no Triton data type mapped for it")
            dims = tensor.dims[1:] if max_batch_size > 0 else tensor.dims
            field.add(name=tensor.name, data_type=pb.DataType.Value(DATA_TYPES[tensor.dtype]), dims=list(dims))
    if max_batch_size > 0:
        config.dynamic_batching.preferred_batch_size.extend(preferred_batch_sizes)
        config.dynamic_batching.max_queue_delay_microseconds = max_queue_delay_us
    kind = INSTANCE_KINDS[instance_kind]
    config.instance_group.add(count=instances, kind=pb.ModelInstanceGroup.Kind.Value(kind))
    for key, value in facts.parameters.items():
        config.parameters[key].string_value = value
    return config


def config_text(config: Any) -> str:
    from google.protobuf import text_format

    return str(text_format.MessageToString(config))


def parse_config(text: str) -> Any:
    """A ``config.pbtxt`` read back through Triton's protobuf (unknown fields and bad values are errors)."""
    from google.protobuf import text_format

    return text_format.Parse(text, model_config_pb2().ModelConfig())


def write_repository(model: Path, facts: ModelFacts, config: Any, repository: Path, force: bool) -> Path:
    """``repository/name/{config.pbtxt, 1/model.*}``, built in a temporary folder beside it and renamed in."""
    target = repository / config.name
    if target.resolve() == model.resolve().parent or model.resolve().is_relative_to(target.resolve()):
        raise DSRIRError(f"--output-dir {repository}: {target} holds the input model {model}; choose another folder")
    if target.exists() and not force:
        raise DSRIRError(f"{target} exists: pass --force to replace that model, or choose --name/--output-dir")
    repository.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{config.name}.", dir=repository))
    try:
        (staging / "1").mkdir()
        if facts.platform == "onnxruntime_onnx":  # one file: Triton's ORT backend loads model.onnx alone
            onnx.save(onnx.load(str(model)), str(staging / "1" / facts.filename), save_as_external_data=False)
        else:
            shutil.copyfile(model, staging / "1" / facts.filename)
        (staging / "config.pbtxt").write_text(config_text(config), encoding="utf-8")
        parse_config((staging / "config.pbtxt").read_text(encoding="utf-8"))  # what the server will read
        os.chmod(staging, 0o755)
        old = None
        if target.exists():
            old = target.with_name(f".{config.name}.replaced")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise DSRIRError(f"{target}: cannot write the model ({exc.strerror or exc})") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def launch_lines(repository: Path, facts: ModelFacts) -> list[str]:
    command = f"tritonserver --model-repository={repository.resolve()}"
    if facts.plugin_library:
        command += f" --backend-config=tensorrt,plugins={facts.plugin_library}"
    lines = [f"serve it: {command}"]
    if facts.plugin_library:
        lines.append(f"(or LD_PRELOAD={facts.plugin_library} tritonserver --model-repository=...)")
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m export.triton",
        description="Write a Triton Inference Server model repository (config.pbtxt + version 1) for a DSRIR "
        "TensorRT engine or ONNX graph.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--model", type=Path, required=True, help="dsrir.engine (with its .json sidecar) or .onnx")
    parser.add_argument("--output-dir", type=Path, default=Path("model_repository"), help="the model repository")
    parser.add_argument("--name", default=DEFAULT_NAME, help="model name (the folder and the config's name)")
    parser.add_argument(
        "--max-batch-size",
        type=int,
        default=None,
        help=f"frames per batch Triton may form; None: {DEFAULT_BATCH}, or the engine profile's largest batch if "
        "smaller; 0: no batching",
    )
    parser.add_argument(
        "--preferred-batch-size", type=int, nargs="*", default=[], help="dynamic batching's preferred sizes"
    )
    parser.add_argument(
        "--max-queue-delay-us", type=non_negative_int, default=100, help="dynamic batching's wait for a batch"
    )
    parser.add_argument("--instances", type=int, default=1, help="model instances (instance_group count)")
    parser.add_argument(
        "--instance-kind",
        choices=tuple(INSTANCE_KINDS),
        default="auto",
        help="where instances run: auto = KIND_AUTO (GPU when there is one)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing model of that name")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> list[str]:
    facts = model_facts(args.model)
    batch = args.max_batch_size
    if batch is None:
        batch = DEFAULT_BATCH if facts.max_batch is None else min(DEFAULT_BATCH, facts.max_batch)
    config = build_config(
        facts, args.name, batch, args.instances, args.instance_kind, args.preferred_batch_size, args.max_queue_delay_us
    )
    target = write_repository(args.model, facts, config, args.output_dir, args.force)
    tensors = ", ".join(f"{t.name} {t.dtype} {list(t.dims)}" for t in (*facts.inputs, *facts.outputs))
    return [
        f"wrote {target / 'config.pbtxt'} and {target / '1' / facts.filename}",
        f"platform {facts.platform}, max_batch_size {batch}, tensors {tensors}",
        *launch_lines(args.output_dir, facts),
    ]


@command()
def main(argv: Sequence[str] | None = None) -> int:
    print("\n".join(run(parse_args(argv))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
