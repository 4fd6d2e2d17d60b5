"""Is this the decomposed FP32 float-I/O export? The one graph every INT8 artefact is made from, decided here.

Calibration ranges, the Q/DQ graph and the CPU INT8 graph all describe the FP32 network's own activations: plugin
nodes hide the patch-attention tensors from ONNX Runtime, FP16 and Q/DQ graphs hold already rounded values, and
uint8 I/O feeds 0..255 BGR frames, so ranges or quantisers made from any of them would not be the ones TensorRT sees.
"""

from __future__ import annotations

import onnx

from dsrir.errors import DSRIRError
from dsrir.graph.metadata import ExportMetadata, read_metadata
from dsrir.graph.ops import PLUGIN_OP, QDQ_OPS, STANDARD_DOMAINS

EXPORT_HINT = "calibrate the decomposed FP32 float-I/O export (python -m export.onnx --checkpoint W, its defaults)"


def check_fp32_export(model: onnx.ModelProto, what: str, allow_plugin: bool = False) -> ExportMetadata | None:
    """The graph's ``dsrir.*`` metadata, None for a graph without any (not from ``export.onnx``: the graph checks
    still apply); a one-line DSRIRError ``{what}: {reason}; {EXPORT_HINT}`` for anything but the FP32 export (or its
    plugin flavour, with ``allow_plugin``: the graph Q/DQ is carried to, never calibrated)."""
    try:
        meta: ExportMetadata | None = read_metadata(model)
    except KeyError:
        meta = None
    except ValueError as exc:
        raise DSRIRError(f"{what}: {exc.args[0]} (export it with python -m export.onnx)") from None
    reason = _problem(model, meta, allow_plugin)
    if reason:
        raise DSRIRError(f"{what}: {reason}; {EXPORT_HINT}")
    return meta


def fp32_export_metadata(model: onnx.ModelProto, what: str, allow_plugin: bool = False) -> ExportMetadata:
    """As :func:`check_fp32_export`, for the stages that copy the metadata into what they write (so it must exist)."""
    meta = check_fp32_export(model, what, allow_plugin)
    if meta is None:
        reason = "ONNX metadata lacks dsrir.*: not exported by export.onnx"
        raise DSRIRError(f"{what}: {reason} (export it with python -m export.onnx)")
    return meta


def _problem(model: onnx.ModelProto, meta: ExportMetadata | None, allow_plugin: bool) -> str | None:
    flavours = ("decomposed", "plugin") if allow_plugin else ("decomposed",)
    if meta is not None and meta.patch_attention not in flavours:
        return f"patch attention {meta.patch_attention}, not decomposed"
    if meta is not None and meta.precision != "fp32":
        return f"precision {meta.precision}, not fp32"
    if meta is not None and (meta.io != "float" or meta.input_range != "0-1"):
        return f"{meta.io} I/O in {meta.input_range}, not float 0-1"
    ops = {(node.domain, node.op_type) for node in model.graph.node}
    if any(op in QDQ_OPS for _, op in ops):
        return "already quantised (Q/DQ nodes)"
    custom = sorted(
        op for domain, op in ops if domain not in STANDARD_DOMAINS and not (allow_plugin and op == PLUGIN_OP)
    )
    if custom:
        return f"custom ops ({', '.join(custom)}) ONNX Runtime cannot run"
    elem_type = model.graph.input[0].type.tensor_type.elem_type
    if elem_type != onnx.TensorProto.FLOAT:
        return f"input is {onnx.TensorProto.DataType.Name(elem_type)}"
    return None
