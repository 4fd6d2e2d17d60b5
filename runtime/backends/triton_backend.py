"""Triton backend: ``--model triton://host:8001/dsrir`` streams frames to a Triton Inference Server over gRPC.

The same streaming, statistics and sinks as a local model, against a server (``python -m runtime.serve``, or a
repository from ``python -m export.triton``). Everything the runtime needs is read from the server at connect
time: the input's type and layout (FP32 NCHW, or UINT8 NHWC frames), whether the model batches (then the batch
dimension is Triton's), and the ``dsrir.size_multiple``/``dsrir.precision`` parameters the repository export writes.
Each failure is one line: server unreachable, model missing or not ready, I/O that is not a DSRIR model's.

A server on this machine (localhost, 127.0.0.0/8, ::1) gets the frames through system shared memory: one input and
one output region per backend, registered with the server and grown when a larger batch comes, so a frame is
copied into memory the server reads instead of being serialised into the gRPC message. Where registration fails
(a server in another container without the shared /dev/shm) the backend falls back to plain gRPC and says so.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import numpy as np

from dsrir.errors import DSRIRError
from runtime.backends import Backend

SCHEME = "triton://"
DEFAULT_PORT = 8001  # Triton's gRPC port
CONNECT_TIMEOUT_S = 5.0
INFER_TIMEOUT_S = 60.0
HINT = "the Triton backend needs tritonclient: pip install 'tritonclient[grpc]'"
TYPES = {"FP32": np.float32, "FP16": np.float16, "UINT8": np.uint8}
LOCAL_HOSTS = ("localhost", "::1")


@dataclass(frozen=True)
class TritonAddress:
    url: str  # host:port
    model: str
    version: str = ""


def parse_triton_uri(uri: str) -> TritonAddress:
    """``triton://host[:port]/model[/version]`` -> its parts; DSRIRError naming the URI otherwise."""
    parsed = urlparse(uri)
    parts = [p for p in parsed.path.split("/") if p]
    if parsed.scheme != "triton" or not parsed.hostname or not 1 <= len(parts) <= 2:
        raise DSRIRError(
            f"--model {uri}: expected triton://HOST[:PORT]/MODEL[/VERSION], e.g. triton://localhost:8001/dsrir"
        )
    try:
        port = parsed.port or DEFAULT_PORT
    except ValueError:
        raise DSRIRError(f"--model {uri}: the port is not a number") from None
    host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
    return TritonAddress(f"{host}:{port}", parts[0], parts[1] if len(parts) > 1 else "")


def is_triton_uri(model: str) -> bool:
    return str(model).startswith(SCHEME)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_local(url: str) -> bool:
    host = url.rsplit(":", 1)[0].strip("[]")
    return host in LOCAL_HOSTS or host.startswith("127.")


class SharedRegions:
    """System shared memory for one input and one output tensor, registered with the server."""

    def __init__(self, client: Any) -> None:
        import tritonclient.utils.shared_memory as shm  # type: ignore[import-untyped]

        self.client, self.shm = client, shm
        self.tag = f"dsrir_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.handles: dict[str, Any] = {}
        self.sizes: dict[str, int] = {}

    def region(self, role: str, nbytes: int) -> str:
        """The name of the ``role`` region, (re)created and registered when it is smaller than ``nbytes``."""
        name = f"{self.tag}_{role}"
        if self.sizes.get(role, 0) < nbytes:
            self._drop(role)
            self.handles[role] = self.shm.create_shared_memory_region(name, f"/{name}", nbytes)
            self.client.register_system_shared_memory(name, f"/{name}", nbytes)
            self.sizes[role] = nbytes
        return name

    def write(self, role: str, array: np.ndarray) -> None:
        self.shm.set_shared_memory_region(self.handles[role], [array])

    def read(self, role: str, datatype: Any, shape: list[int]) -> np.ndarray:
        return np.array(self.shm.get_contents_as_numpy(self.handles[role], datatype, shape))

    def _drop(self, role: str) -> None:
        if role in self.handles:
            name = f"{self.tag}_{role}"
            try:
                self.client.unregister_system_shared_memory(name)
            finally:
                self.shm.destroy_shared_memory_region(self.handles.pop(role))
                self.sizes.pop(role, None)

    def close(self) -> None:
        for role in list(self.handles):
            try:
                self._drop(role)
            except Exception:  # a server that is gone cannot unregister; the local segment is destroyed anyway
                pass


class TritonBackend(Backend):
    """One gRPC client; ``infer`` sends a preprocessed batch and returns the model's output."""

    name = "triton"
    activation_bytes_per_pixel: int | None = None  # the server's memory, not this process's

    def __init__(self, uri: str) -> None:
        try:
            import tritonclient.grpc as grpcclient  # type: ignore[import-untyped]
        except ImportError:
            raise DSRIRError(HINT) from None
        self.address = parse_triton_uri(uri)
        self.uri, self.grpc = uri, grpcclient
        self.client = grpcclient.InferenceServerClient(url=self.address.url)
        metadata, config = self._describe()
        inputs, outputs = metadata["inputs"], metadata["outputs"]
        if len(inputs) != 1 or not outputs:
            raise DSRIRError(f"{uri}: a DSRIR model has one input and an output; the server's has {len(inputs)} inputs")
        self.input_name, self.output_name = inputs[0]["name"], outputs[0]["name"]
        self.datatype = inputs[0]["datatype"]
        if self.datatype not in TYPES:
            raise DSRIRError(f"{uri}: input {self.input_name!r} is {self.datatype}; expected FP32, FP16 or UINT8")
        self.io = "uint8" if self.datatype == "UINT8" else "float"
        self.batched = int(config.get("max_batch_size", 0)) > 0
        self.max_batch: int | None = int(config.get("max_batch_size", 0)) or 1  # without batching: one frame
        shape = [int(d) for d in inputs[0]["shape"]]  # with the batch dim (-1 when Triton batches)
        channels = shape[3] if self.io == "uint8" and len(shape) == 4 else shape[1] if len(shape) == 4 else 0
        if channels not in (3, -1):
            raise DSRIRError(
                f"{uri}: input {self.input_name!r} has shape {shape}; expected N x 3 x H x W (float) or N x H x W x 3"
            )
        parameters = {key: value.get("string_value", "") for key, value in config.get("parameters", {}).items()}
        self.size_multiple = int(parameters.get("dsrir.size_multiple") or 8)
        self.precision = parameters.get("dsrir.precision") or "unknown"
        where = f"{self.address.url}/{self.address.model}" + (
            f"/{self.address.version}" if self.address.version else ""
        )
        self.shared: SharedRegions | None = None
        transport = "gRPC"
        if is_local(self.address.url):
            try:
                self.shared = SharedRegions(self.client)
                self.shared.region("input", 1 << 20)  # proves the server can map our segments
                transport = "gRPC + system shared memory"
            except Exception as exc:  # another container, no /dev/shm: frames travel in the messages
                self.shared = None
                transport = f"gRPC (shared memory refused: {_first_line(exc)})"
        self.description = f"triton {where} ({transport}), {parameters.get('dsrir.preset', 'dsrir')} {self.precision}"

    def _describe(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Model metadata and config from the server, with one-line errors for what can go wrong first."""
        address = self.address
        try:
            live = self.client.is_server_live(client_timeout=CONNECT_TIMEOUT_S)
        except Exception as exc:  # InferenceServerException, grpc errors
            raise DSRIRError(
                f"{self.uri}: cannot reach a Triton server at {address.url} ({_first_line(exc)})"
            ) from None
        if not live:
            raise DSRIRError(f"{self.uri}: the Triton server at {address.url} is not live")
        try:
            ready = self.client.is_model_ready(address.model, address.version, client_timeout=CONNECT_TIMEOUT_S)
            if not ready:
                raise DSRIRError(f"{self.uri}: the server has no ready model {address.model!r}")
            metadata = self.client.get_model_metadata(address.model, address.version, as_json=True)
            config = self.client.get_model_config(address.model, address.version, as_json=True)
        except DSRIRError:
            raise
        except Exception as exc:
            raise DSRIRError(f"{self.uri}: model {address.model!r}: {_first_line(exc)}") from None
        return metadata, config.get("config", config)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        data = np.ascontiguousarray(batch, TYPES[self.datatype])
        request = self.grpc.InferInput(self.input_name, list(data.shape), self.datatype)
        requested = self.grpc.InferRequestedOutput(self.output_name)
        if self.shared is not None:  # DSRIR's output has its input's shape and type
            request.set_shared_memory(self.shared.region("input", data.nbytes), data.nbytes)
            self.shared.write("input", data)
            requested.set_shared_memory(self.shared.region("output", data.nbytes), data.nbytes)
        else:
            request.set_data_from_numpy(data)
        try:
            result = self.client.infer(
                self.address.model,
                [request],
                model_version=self.address.version,
                outputs=[requested],
                client_timeout=INFER_TIMEOUT_S,
            )
        except Exception as exc:
            raise DSRIRError(f"{self.uri}: inference failed ({_first_line(exc)})") from None
        if self.shared is not None:
            output = self.shared.read("output", TYPES[self.datatype], list(data.shape))
        else:
            output = np.asarray(result.as_numpy(self.output_name))
        return output.astype(np.float32) if self.io == "float" else output

    def close(self) -> None:
        if self.shared is not None:
            self.shared.close()
            self.shared = None
        try:
            self.client.close()
        except Exception:  # closing a channel to a server that is gone is not worth a traceback
            pass
