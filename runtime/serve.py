"""``python -m runtime.serve --model dsrir.onnx|dsrir.engine``: serve a DSRIR model as Triton does, without a Triton
deployment.

NVIDIA PyTriton (``pip install nvidia-pytriton``, an optional extra: it bundles a real ``tritonserver``) runs the
model through this runtime's own backend (ONNX Runtime or TensorRT, chosen by suffix as ``runtime.video`` does) behind
Triton's HTTP, gRPC and metrics endpoints (default ports 8000, 8001, 8002), under the model name ``dsrir`` with the
I/O names of the model file, so ``runtime.video --model triton://HOST:8001/dsrir`` and any Triton client work against
it exactly as against a repository from ``python -m export.triton``. Dynamic batching groups concurrent clients'
frames of one size into one inference.

Pythons: PyTriton 0.7's Python-backend stub fails to load models under CPython 3.11.7 (``'_thread.RLock' object has
no attribute '_recursion_count'``); it serves under 3.13 (checked here with 3.13.0).
"""

from __future__ import annotations

import argparse
import os
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dsrir.cli import command, non_negative_int, positive_int
from dsrir.cli_help import DefaultsHelpFormatter
from dsrir.errors import DSRIRError
from dsrir.graph.metadata import SERVED_NAME

PYTRITON_HINT = "runtime.serve needs NVIDIA PyTriton: pip install nvidia-pytriton (serves under Python 3.13, not 3.11)"
DEFAULT_NAME = SERVED_NAME  # as export.triton names the model: the same triton:// URI reaches either


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m runtime.serve",
        description="Serve a DSRIR model over Triton's HTTP/gRPC protocol (NVIDIA PyTriton), for clients such as "
        "python -m runtime.video --model triton://HOST:8001/dsrir.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--model", type=Path, required=True, help=".onnx (ONNX Runtime) or .engine (TensorRT)")
    parser.add_argument("--plugin-lib", type=Path, default=None, help="DSRIR TensorRT plugin library for the engine")
    parser.add_argument("--name", default=DEFAULT_NAME, help="model name clients ask for")
    parser.add_argument("--http-port", type=positive_int, default=8000, help="Triton's HTTP port")
    parser.add_argument("--grpc-port", type=positive_int, default=8001, help="Triton's gRPC port")
    parser.add_argument("--metrics-port", type=positive_int, default=8002, help="Triton's metrics port")
    parser.add_argument(
        "--max-batch-size", type=positive_int, default=4, help="frames Triton may batch into one inference"
    )
    parser.add_argument(
        "--max-queue-delay-us", type=non_negative_int, default=100, help="dynamic batching's wait for a batch"
    )
    parser.add_argument(
        "--no-shared-memory",
        dest="shared_memory",
        action="store_false",
        help="keep PyTriton's token protection of the shared-memory API (clients on this machine then send frames "
        "inside the gRPC messages instead of through system shared memory)",
    )
    return parser.parse_args(argv)


def security_config(shared_memory: bool) -> Any:
    """PyTriton protects its shared-memory API with a token by default; local runtime.video clients register system
    shared memory, so that endpoint is opened unless ``--no-shared-memory`` (the others stay protected)."""
    try:
        from pytriton.triton import DEFAULT_PROTECTED_ENDPOINTS, TritonSecurityConfig  # type: ignore[import-not-found]
    except ImportError:  # an older PyTriton without token protection
        return None
    protected = [e for e in DEFAULT_PROTECTED_ENDPOINTS if shared_memory is False or e != "shared-memory"]
    return TritonSecurityConfig(restricted_endpoints=protected)


def tensor_shape(io: str) -> tuple[int, int, int]:
    """Per-frame shape (Triton owns the batch dim): 3 x H x W float RGB, or H x W x 3 uint8 BGR frames."""
    return (3, -1, -1) if io == "float" else (-1, -1, 3)


def make_infer(backend: Any, input_name: str, output_name: str) -> Any:
    """The batched inference function PyTriton calls with the stacked requests."""
    from pytriton.decorators import batch  # type: ignore[import-not-found]

    @batch  # type: ignore[misc]
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        return {output_name: np.asarray(backend.infer(inputs[input_name]))}

    return infer


def expose_libpython() -> None:
    """Triton's Python-backend stub links libpython of the serving interpreter: a pyenv or venv Python keeps it in
    its own LIBDIR, which the dynamic loader does not search ("libpython3.12.so.1.0: cannot open shared object")."""
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir and Path(libdir).is_dir():
        paths = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
        if libdir not in paths:
            os.environ["LD_LIBRARY_PATH"] = os.pathsep.join([libdir, *paths])


def serve(args: argparse.Namespace) -> None:
    try:
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor  # type: ignore[import-not-found]
        from pytriton.triton import Triton, TritonConfig  # type: ignore[import-not-found]
    except ImportError:
        raise DSRIRError(PYTRITON_HINT) from None
    from runtime.backends import open_backend

    expose_libpython()
    backend = open_backend(args.model, "auto", args.plugin_lib)
    input_name, output_name = io_names(args.model)
    dtype = np.uint8 if backend.io == "uint8" else np.float32
    shape = tensor_shape(backend.io)
    config = TritonConfig(http_port=args.http_port, grpc_port=args.grpc_port, metrics_port=args.metrics_port)
    security = security_config(args.shared_memory)
    with Triton(config=config, **({"security_config": security} if security is not None else {})) as triton:
        triton.bind(
            model_name=args.name,
            infer_func=make_infer(backend, input_name, output_name),
            inputs=[Tensor(name=input_name, dtype=dtype, shape=shape)],
            outputs=[Tensor(name=output_name, dtype=dtype, shape=shape)],
            config=ModelConfig(
                max_batch_size=args.max_batch_size,
                batcher=DynamicBatcher(max_queue_delay_microseconds=args.max_queue_delay_us),
            ),
            strict=True,
        )
        print(
            f"serving {args.model} as {args.name!r} ({backend.description}): gRPC :{args.grpc_port}, "
            f"HTTP :{args.http_port}, metrics :{args.metrics_port}; clients: --model triton://HOST:{args.grpc_port}/"
            f"{args.name}",
            flush=True,
        )
        triton.serve()


def io_names(model: Path) -> tuple[str, str]:
    """The model file's own input and output names (ONNX graph, or the engine's sidecar)."""
    if model.suffix.lower() == ".onnx":
        import onnx

        graph = onnx.load(str(model), load_external_data=False).graph
        initializers = {init.name for init in graph.initializer}
        return next(v.name for v in graph.input if v.name not in initializers), graph.output[0].name
    from dsrir.trt.sidecar import read_sidecar, sidecar_path

    sidecar = read_sidecar(sidecar_path(model))
    if sidecar is None or not sidecar.inputs or not sidecar.outputs:
        return "input", "output"
    return sidecar.inputs[0]["name"], sidecar.outputs[0]["name"]


@command(interrupted="stopped by Ctrl-C")
def main(argv: Sequence[str] | None = None) -> int:
    serve(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
