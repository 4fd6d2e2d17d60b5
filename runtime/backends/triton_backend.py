"""Triton backend: ``--model triton://host:8001/dsrir`` streams frames to a Triton Inference Server over gRPC.

The same streaming, statistics and sinks as a local model, against a server (``python -m runtime.serve``, or a
repository from ``python -m export.triton``). Everything the runtime needs is read from the server at connect
time: the input's type and layout (FP32 NCHW, or UINT8 NHWC frames), whether the model batches (then the batch
dimension is Triton's), and the ``dsrir.size_multiple``/``dsrir.precision`` parameters the repository export writes.
Each failure is one line: server unreachable, model missing or not ready, I/O that is not a DSRIR model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import numpy as np

from dsrir.errors import DSRIRError
from runtime.backends.trt_buffers import Profile

SCHEME = "triton://"
DEFAULT_PORT = 8001  # Triton's gRPC port
CONNECT_TIMEOUT_S = 5.0
INFER_TIMEOUT_S = 60.0
HINT = "the Triton backend needs tritonclient: pip install 'tritonclient[grpc]'"
TYPES = {"FP32": np.float32, "FP16": np.float16, "UINT8": np.uint8}


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


class TritonBackend:
    """One gRPC client; ``infer`` sends a preprocessed batch and returns the model's output."""

    name = "triton"

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
        self.profile: Profile | None = None
        where = f"{self.address.url}/{self.address.model}" + (
            f"/{self.address.version}" if self.address.version else ""
        )
        self.description = f"triton {where} (gRPC), {parameters.get('dsrir.preset', 'dsrir')} {self.precision}"

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
        request.set_data_from_numpy(data)
        try:
            result = self.client.infer(
                self.address.model,
                [request],
                model_version=self.address.version,
                outputs=[self.grpc.InferRequestedOutput(self.output_name)],
                client_timeout=INFER_TIMEOUT_S,
            )
        except Exception as exc:
            raise DSRIRError(f"{self.uri}: inference failed ({_first_line(exc)})") from None
        output = np.asarray(result.as_numpy(self.output_name))
        return output.astype(np.float32) if self.io == "float" else output

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # closing a channel to a server that is gone is not worth a traceback
            pass
