"""What an exported ONNX model says about itself, stored in its ``metadata_props``.

The exporter writes these keys; the engine builder reads them to pick builder flags, and copies
them into the engine's ``.json`` sidecar so the runtime knows how to feed the engine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import onnx

PREFIX = "dsrir."
INT8_QDQ = "int8-qdq"  # TensorRT-style explicit quantisation (calibration.qdq)
INT8_CPU = "int8-cpu"  # ONNX Runtime's uint8 CPU graph (calibration.ort_int8): no TensorRT imports it
PRECISIONS = ("fp32", "fp16", INT8_QDQ, INT8_CPU)
SERVED_NAME = "dsrir"  # the model name in a Triton repository (export.triton) and under PyTriton (runtime.serve)


@dataclass(frozen=True)
class ExportMetadata:
    """``io`` float: input ``N x 3 x H x W`` RGB float32 in [0, 1], output the same; ``io`` uint8:
    ``N x H x W x 3`` BGR uint8 frames in and out (pre/post-processing folded into the graph)."""

    preset: str
    mode: str
    patch_attention: str
    precision: str
    io: str
    size_multiple: int
    input_range: str
    toolkit_version: str

    def to_props(self) -> dict[str, str]:
        return {PREFIX + key: str(value) for key, value in asdict(self).items()}

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ExportMetadata:
        values: dict[str, object] = {}
        for field in fields(cls):
            raw = props.get(PREFIX + field.name)
            if raw is None:
                raise KeyError(f"ONNX metadata lacks {PREFIX + field.name}: not exported by export.onnx")
            values[field.name] = int(raw) if field.type in (int, "int") else raw
        return cls(**values)  # type: ignore[arg-type]


def write_metadata(model: onnx.ModelProto, metadata: ExportMetadata) -> None:
    """Set (replace) the ``dsrir.*`` entries of ``model.metadata_props``."""
    props = metadata.to_props()
    kept = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def read_metadata(model: onnx.ModelProto) -> ExportMetadata:
    return ExportMetadata.from_props({p.key: p.value for p in model.metadata_props})
