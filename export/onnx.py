"""``python -m export.onnx --checkpoint PATH``: a DSRIR checkpoint (any preset) to one ONNX file.

One input, one output (the final image), dynamic batch/H/W (H and W multiples of the model's
``size_multiple``, 8 for every preset), opset >= 17, ``dsrir.*`` metadata (:mod:`export.metadata`). Flavours:

* ``--patch-attention decomposed``: standard ONNX ops only; runs anywhere (the plugin-free fallback).
* ``--patch-attention plugin``: each PatchAttention + residual is one ``DSRIR_PatchAttention`` node for the
  TensorRT plugin (:mod:`export.plugin_nodes`).
* ``--precision fp16``: an FP16 graph with float32 I/O for strongly typed TensorRT (:mod:`export.graph_fp16`).
* ``--io uint8``: NHWC uint8 BGR frames in and out, pre/post-processing in the graph (:mod:`export.uint8_io`).

``--target-trt VERSION`` (default :data:`export.trt_version.DEFAULT_TARGET`) picks the opset and the rewrites
that TensorRT's ONNX importer needs (:mod:`export.target_rewrite`: opset 17, ``Shape`` + ``Slice`` for 8.5/8.6;
explicit ``Squeeze`` axes for all), and the graph must pass that version's import rules
(:mod:`export.trt_import_rules`). ``--opset`` still overrides the opset within what the target parses.

INT8 (Q/DQ) graphs come from calibration, not from here. Every graph passes ``onnx.checker`` (full) and
strict shape inference, is simplified with onnxslim when that keeps the output, and is compared with
PyTorch on a random input (``--check-size``) before it is written, atomically, as a single file.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import onnx

import dsrir
from dsrir.atomic import write_bytes_atomic
from dsrir.cli_help import DefaultsHelpFormatter
from dsrir.errors import DSRIRError, error_line
from export.graph_checks import TARGET_KEY, check_graph
from export.metadata import ExportMetadata, write_metadata
from export.trt_import_rules import ImporterRules, rules_for
from export.trt_version import DEFAULT_TARGET, Version, check_supported, parse_version, short

if TYPE_CHECKING:  # torch and the exporter load in seconds: not for --help
    from torch import nn

    from dsrir.checkpoint import LoadedWeights
    from export.onnx_parity import Parity

MIN_OPSET = 17
DEFAULT_CHECK_SIZE = (64, 96)
# Largest accepted |ONNX - PyTorch| on the random check input, in [0, 1] units (uint8: one or two levels).
TOLERANCE = {
    ("fp32", "float"): 1e-4,
    ("fp16", "float"): 2e-2,
    ("fp32", "uint8"): 1 / 255,
    ("fp16", "uint8"): 2 / 255,
}


class ExportFailure(Exception):
    """The export produced a graph that fails a check: a bug or an unsupported model, not a user error."""


@dataclass(frozen=True)
class ExportOptions:
    patch_attention: str = "decomposed"
    precision: str = "fp32"
    io: str = "float"
    opset: int | None = None  # None: what target_trt parses (18, or 17 for TensorRT 8.x)
    target_trt: Version | None = None  # None: export.trt_version.DEFAULT_TARGET
    simplify: bool = True
    check_size: tuple[int, int] | None = DEFAULT_CHECK_SIZE

    @property
    def target(self) -> Version:
        return self.target_trt or parse_version(DEFAULT_TARGET)


@dataclass(frozen=True)
class ExportResult:
    model: onnx.ModelProto
    metadata: ExportMetadata
    plugin_nodes: int
    simplify_note: str
    parity: Parity | None
    parity_note: str
    seconds: float
    target: Version  # the TensorRT version the graph was checked for
    rules: ImporterRules


def target_opset(options: ExportOptions) -> tuple[ImporterRules, int]:
    """The import rules of the options' TensorRT target and the opset to write; DSRIRError if ``--opset`` is more
    than that TensorRT parses."""
    target = options.target
    check_supported(target)
    rules = rules_for(target)
    opset = options.opset if options.opset is not None else rules.preferred_opset
    if opset > rules.max_opset:
        raise DSRIRError(
            f"--opset {opset}: TensorRT {short(target)}'s ONNX parser implements opset {rules.max_opset} at most "
            "(leave --opset out: --target-trt picks it)"
        )
    return rules, opset


def build_onnx(model: nn.Module, preset: str, mode: str, options: ExportOptions) -> ExportResult:
    """Export ``model`` (a DSRIR in eval mode) to a checked in-memory ONNX model in the requested flavour."""
    from dsrir.ops.patch_attention import PatchAttention
    from export import plugin_nodes
    from export.target_rewrite import UnsupportedForOpset17, UnsupportedRewrite, rewrite_for_target, to_opset17
    from export.torch_to_onnx import export_model

    started = time.perf_counter()
    rules, opset = target_opset(options)
    trt = f"TensorRT {short(options.target)}"
    multiple = int(model.config.size_multiple)  # type: ignore[union-attr, arg-type]
    plugin = options.patch_attention == "plugin"
    try:
        graph = export_model(model, multiple, opset=max(opset, 18), plugin=plugin)
    except Exception as exc:  # torch.export / the ONNX translation raise many types, with pages of context
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        raise ExportFailure(f"torch.onnx.export failed: {type(exc).__name__}: {first[:300]}") from exc
    if opset == 17:  # the exporter writes 18 at least; TensorRT 8.5/8.6 (JetPack 5.1, 6.0) parse up to 17
        try:
            graph = to_opset17(graph)
        except UnsupportedForOpset17 as exc:
            raise ExportFailure(f"cannot write opset 17 for {trt}: {exc}") from exc
    expected = sum(isinstance(m, PatchAttention) for m in model.modules()) if plugin else 0
    found = len(plugin_nodes.plugin_nodes(graph))
    if found != expected:
        raise ExportFailure(f"the graph has {found} {plugin_nodes.OP_TYPE} nodes, expected {expected}")
    check_shape = (1, 3, *(options.check_size or DEFAULT_CHECK_SIZE))
    note = "not simplified (--no-simplify)"
    if options.simplify:
        from export.simplify import simplify

        simplified = simplify(graph, check_shape, multiple)
        graph, note = simplified.model, simplified.note
    try:  # after onnxslim, which could fold a Shape + Slice back into Shape(start, end)
        graph = rewrite_for_target(graph, rules)
    except UnsupportedRewrite as exc:
        raise ExportFailure(f"cannot rewrite the graph for {trt}: {exc}") from exc
    if options.precision == "fp16":
        from export.graph_fp16 import convert_to_fp16

        graph = convert_to_fp16(graph)
    if options.io == "uint8":
        from export.uint8_io import wrap_uint8_io

        graph = wrap_uint8_io(graph)
    metadata = ExportMetadata(
        preset=preset,
        mode=mode,
        patch_attention=options.patch_attention,
        precision=options.precision,
        io=options.io,
        size_multiple=multiple,
        input_range="0-255" if options.io == "uint8" else "0-1",
        toolkit_version=dsrir.__version__,
    )
    write_metadata(graph, metadata)
    _set_prop(graph, TARGET_KEY, short(options.target))
    graph.producer_name, graph.producer_version = "dsrir-edge export.onnx", dsrir.__version__
    try:
        check_graph(graph, options.target)  # DSRIRError, naming the node, if that TensorRT would not import it
    except DSRIRError:
        raise
    except Exception as exc:  # onnx raises ValidationError, InferenceError and others
        raise ExportFailure(f"the exported graph fails onnx.checker / shape inference: {error_line(exc)}") from exc
    parity, parity_note = _parity(graph, model, options, multiple)
    seconds = time.perf_counter() - started
    return ExportResult(graph, metadata, found, note, parity, parity_note, seconds, options.target, rules)


def _set_prop(model: onnx.ModelProto, key: str, value: str) -> None:
    kept = [p for p in model.metadata_props if p.key != key]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = key, value


def _parity(
    graph: onnx.ModelProto, model: nn.Module, options: ExportOptions, multiple: int
) -> tuple[Parity | None, str]:
    if options.check_size is None:
        return None, "parity not checked (--check-size none)"
    from export import onnx_parity

    shape = (1, 3, *options.check_size)
    try:
        parity = onnx_parity.check_against_torch(graph, model, options.io, shape, multiple)
    except ImportError as exc:  # plugin graphs run on CPU through onnxruntime-extensions only
        return None, f"parity not checked: {error_line(exc)}"
    tolerance = TOLERANCE[(options.precision, options.io)]
    if not parity.max_abs <= tolerance:
        raise ExportFailure(
            f"parity check failed: {parity.describe()} exceeds {tolerance:.1e}; nothing written "
            "(an FP16 overflow? try --precision fp32; --check-size none skips the check)"
        )
    return parity, f"parity vs PyTorch: {parity.describe()} (tolerance {tolerance:.1e})"


def default_output(checkpoint: Path, options: ExportOptions) -> Path:
    """``model_best.pth`` -> ``model_best.decomposed.fp32.onnx`` (``.uint8`` before ``.onnx`` for frame I/O)."""
    io = ".uint8" if options.io == "uint8" else ""
    return checkpoint.with_name(f"{checkpoint.stem}.{options.patch_attention}.{options.precision}{io}.onnx")


def save_onnx(model: onnx.ModelProto, path: Path) -> None:
    """One self-contained file (weights inside, no ``.onnx.data``): serialised in memory, then a checked atomic
    write (a full disk is one error naming the file, and nothing is published)."""
    write_bytes_atomic(path, model.SerializeToString())


def checkpoint_mode(weights: LoadedWeights) -> str:
    """The training mode the checkpoint records (``all_in_one``, ``noise``...), else ``unknown``."""
    return str(weights.metadata.get("mode") or "unknown")


def export_checkpoint(checkpoint: Path, output: Path | None, options: ExportOptions) -> tuple[Path, ExportResult]:
    """Load, export, check and write; returns where it went and what happened. The output may not be the
    checkpoint (refused before the slow export); a failed write is one line naming the file and the cause."""
    from dsrir.checkpoint import load_model
    from dsrir.paths import refuse_overwriting_inputs

    path = output if output is not None else default_output(checkpoint, options)
    refuse_overwriting_inputs([("--output", path)], [checkpoint])
    model, weights = load_model(checkpoint)
    result = build_onnx(model, weights.preset or "custom", checkpoint_mode(weights), options)
    save_onnx(result.model, path)
    return path, result


def _check_size(text: str) -> tuple[int, int] | None:
    if text.lower() in ("none", "off", "0"):
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected HxW such as 64x96, or none; got {text!r}")
    return int(parts[0]), int(parts[1])


def _target(text: str) -> Version:
    try:
        version = parse_version(text, "--target-trt")
        check_supported(version)
    except DSRIRError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return version


def _opset(text: str) -> int:
    newest = onnx.defs.onnx_opset_version()
    if not text.isdigit() or not MIN_OPSET <= int(text) <= newest:
        raise argparse.ArgumentTypeError(f"opset must be an integer from {MIN_OPSET} to {newest}, got {text!r}")
    return int(text)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m export.onnx",
        description="Export a DSRIR checkpoint to ONNX (dynamic batch/H/W, H and W multiples of 8) for ONNX "
        "Runtime or TensorRT. INT8 Q/DQ graphs come from calibration.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="official .pth or project .safetensors")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="ONNX file to write; None: CHECKPOINT_STEM.FLAVOUR.PRECISION[.uint8].onnx beside the checkpoint",
    )
    parser.add_argument(
        "--patch-attention",
        choices=("decomposed", "plugin"),
        default="decomposed",
        help="standard ops only, or one DSRIR_PatchAttention node per block for the TensorRT plugin",
    )
    parser.add_argument("--precision", choices=("fp32", "fp16"), default="fp32", help="fp16: FP16 graph, float32 I/O")
    parser.add_argument(
        "--io",
        choices=("float", "uint8"),
        default="float",
        help="float: N x 3 x H x W RGB in [0, 1]; uint8: N x H x W x 3 BGR frames in and out",
    )
    parser.add_argument(
        "--target-trt",
        type=_target,
        metavar="VERSION",
        help=f"TensorRT version the graph must import into (8.5/8.6: JetPack 5.1/6.0; 10.3: JetPack 6.1/6.2); picks "
        f"the opset and the rewrites its ONNX parser needs (default: {DEFAULT_TARGET})",
    )
    parser.add_argument(
        "--opset", type=_opset, help=f"ONNX opset (>= {MIN_OPSET}; default: the newest up to 18 the target parses)"
    )
    parser.add_argument("--no-simplify", action="store_true", help="skip onnxslim")
    parser.add_argument(
        "--check-size",
        type=_check_size,
        default="x".join(map(str, DEFAULT_CHECK_SIZE)),
        metavar="HxW",
        help="compare with PyTorch on a random input of this size (any size: padded like the Restorer); none: skip",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = ExportOptions(
        patch_attention=args.patch_attention,
        precision=args.precision,
        io=args.io,
        opset=args.opset,
        target_trt=args.target_trt,
        simplify=not args.no_simplify,
        check_size=args.check_size,
    )
    started = time.perf_counter()
    try:
        path, result = export_checkpoint(args.checkpoint, args.output, options)
    except DSRIRError as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return 2
    except ExportFailure as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return 1
    meta = result.metadata
    layout = "N x H x W x 3 uint8 BGR" if meta.io == "uint8" else "N x 3 x H x W float32 RGB in [0, 1]"
    size_mb = path.stat().st_size / 1e6
    opset = next(entry.version for entry in result.model.opset_import if entry.domain in ("", "ai.onnx"))
    print(f"wrote {path} ({size_mb:.1f} MB, {len(result.model.graph.node)} nodes, opset {opset})")
    print(
        f"flavour: {meta.preset}, patch attention {meta.patch_attention}"
        + (f" ({result.plugin_nodes} plugin nodes)" if result.plugin_nodes else "")
        + f", {meta.precision}, {layout}, H/W multiples of {meta.size_multiple}"
    )
    print(result.simplify_note)
    print(f"TensorRT {short(result.target)} import check: ok (rules: {result.rules.source})")
    if args.opset == MIN_OPSET and args.target_trt is None:
        print(f"note: checked for TensorRT {DEFAULT_TARGET}; for JetPack 5.1 / 6.0 pass --target-trt 8.5 / 8.6")
    print(result.parity_note)
    print(f"took {time.perf_counter() - started:.1f} s (export, checks and parity {result.seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
