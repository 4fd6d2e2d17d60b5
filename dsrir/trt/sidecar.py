"""The engine's ``.json`` sidecar: what it was built from, with which TensorRT, for which GPU.

A TensorRT engine only runs with the TensorRT version and GPU it was built for, and its file says neither
in a readable way; trtexec must still be able to load it, so the facts live beside it
(``dsrir.engine.json``), written atomically after the engine.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dsrir
from dsrir.atomic import write_text_atomic
from dsrir.digest import sha256_hex
from dsrir.errors import DSRIRError
from dsrir.trt.gpu import GpuInfo

FORMAT = "dsrir-engine-sidecar/1"


@dataclass
class EngineSidecar:
    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "8.7"
    precision: str  # what was asked: fp32 | fp16 | int8 | best
    precision_summary: str  # how it was obtained
    strongly_typed: bool
    flags: list[str]
    profile: dict[str, Any]  # input, layout, min/opt/max
    inputs: list[dict[str, str]]
    outputs: list[dict[str, str]]
    io: str
    size_multiple: int
    preset: str
    frontend: str = "onnx"  # or torch-tensorrt
    onnx: str | None = None
    onnx_sha256: str | None = None
    checkpoint: str | None = None
    plugin_library: str | None = None
    plugin_sha256: str | None = None
    plugin_mode: str | None = None
    calibration_cache: str | None = None
    timing_cache: str | None = None
    dla_core: int | None = None
    version_compatible: bool = False
    hardware_compatibility: str = "none"
    engine_sha256: str | None = None
    build_seconds: float | None = None
    built_at: str | None = None
    dsrir_version: str | None = None
    rebuild_command: str | None = None
    trtexec_command: str | None = None
    format: str = FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_build(
        cls, engine: bytes, seconds: float, tensorrt_version: str, gpu: GpuInfo, **facts: Any
    ) -> EngineSidecar:
        """The sidecar of ``engine`` just built on ``gpu``: what every frontend records the same way, plus its
        own ``facts``."""
        return cls(
            tensorrt_version=tensorrt_version,
            gpu_name=gpu.name,
            compute_capability=gpu.cc,
            engine_sha256=sha256_hex(engine),
            build_seconds=round(seconds, 2),
            built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            dsrir_version=dsrir.__version__,
            **facts,
        )

    def describes(self, engine: bytes) -> bool:
        """False when the sidecar records another engine's sha256 (a sidecar without one describes any)."""
        return not self.engine_sha256 or self.engine_sha256 == sha256_hex(engine)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "sidecar") -> EngineSidecar:
        known = {f.name for f in fields(cls)}
        required = [name for name in ("tensorrt_version", "compute_capability", "gpu_name") if name not in data]
        if required:
            raise DSRIRError(f"{source}: not an engine sidecar (lacks {', '.join(required)})")
        values = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        defaults: dict[str, Any] = {
            "precision": "unknown",
            "precision_summary": "",
            "strongly_typed": False,
            "flags": [],
            "profile": {},
            "inputs": [],
            "outputs": [],
            "io": "float",
            "size_multiple": 8,
            "preset": "unknown",
        }
        return cls(**{**defaults, **values, "extra": {**values.get("extra", {}), **extra}})


def sidecar_path(engine: Path) -> Path:
    """``dsrir.engine`` -> ``dsrir.engine.json``."""
    return engine.with_name(engine.name + ".json")


def write_sidecar(path: str | os.PathLike[str], sidecar: EngineSidecar) -> None:
    write_text_atomic(path, sidecar.to_json())


def read_sidecar(path: str | os.PathLike[str]) -> EngineSidecar | None:
    """The sidecar at ``path``; None when there is none; DSRIRError when it is unreadable."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DSRIRError(f"{path}: unreadable engine sidecar ({exc})") from None
    if not isinstance(data, dict):
        raise DSRIRError(f"{path}: unreadable engine sidecar (not a JSON object)")
    return EngineSidecar.from_dict(data, str(path))
