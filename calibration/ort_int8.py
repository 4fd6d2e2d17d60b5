"""The CPU INT8 artefact: ONNX Runtime's static quantisation of the FP32 export, for ORT's fast x86 kernels.

A different graph from TensorRT's (:mod:`calibration.qdq`): ORT's integer kernels want unsigned asymmetric
activations and signed per-channel weights on every op it can quantise (QDQ format), zero points TensorRT rejects.
On 2 x86 cores the TensorRT-style graph runs slower than FP32 in ORT, this one faster.

Weights are 7-bit by default (ORT's ``reduce_range``): u8 x s8 products then never saturate, so the graph is right
on every CPU, AVX2-only x86 included, in any ONNX Runtime. ``weight_bits=8`` keeps a little more precision for CPUs
whose kernels do not saturate (x86 with VNNI/AMX, ARM); :mod:`runtime.backends.cpu_int8` halves such weights at
load on the CPUs that would saturate.

Calibration runs one frame at a time through ORT's calibrator and reaches ``quantize_static`` as its calibration
cache: handed the frames directly, ORT's histogram calibrators (percentile, entropy) would keep every activation of
every frame in memory until the last one. The PatchAttention MLP and its sigmoid stay in floating point, as in the
TensorRT graph (:func:`calibration.ranges.is_quantized_module`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
import itertools
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnxruntime.quantization import (  # type: ignore[import-untyped]
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    create_calibrator,
    quantize_static,
    save_tensors_data,
)
from onnxruntime.quantization.shape_inference import quant_pre_process  # type: ignore[import-untyped]

from calibration.fp32_export import fp32_export_metadata
from calibration.ranges import conv_sites, is_quantized_module
from dsrir.errors import DSRIRError
from dsrir.graph.metadata import INT8_CPU, write_metadata
from dsrir.graph.quant import INT8_MAX, REDUCED_RANGE, largest_weight_code
from dsrir.graph.save import save_onnx
from dsrir.onnx_file import load_onnx

PURPOSE = "CPU INT8 quantisation"
METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "percentile": CalibrationMethod.Percentile,
    "entropy": CalibrationMethod.Entropy,
}
WEIGHT_BITS = {7: REDUCED_RANGE, 8: INT8_MAX}  # weight bits -> largest |weight code|
DEFAULT_WEIGHT_BITS = 7


class _OneFeed(CalibrationDataReader):
    """Hands ORT's calibrator a single input feed, so it never holds more than one frame's activations."""

    def __init__(self, feed: dict[str, np.ndarray]) -> None:
        self._feed: dict[str, np.ndarray] | None = feed

    def get_next(self) -> dict[str, np.ndarray] | None:
        feed, self._feed = self._feed, None
        return feed


def quantize_for_cpu(
    fp32_onnx: Path,
    frames: Iterable[np.ndarray],
    output: Path,
    method: str = "minmax",
    weight_bits: int = DEFAULT_WEIGHT_BITS,
) -> Path:
    """Calibrate the decomposed FP32 export on ``frames`` (each N x 3 x H x W float32 RGB in [0, 1], H and W
    multiples of 8, read one at a time) with ``method`` and write the uint8 graph, with ``weight_bits`` (7 or 8)
    weights, to ``output`` atomically.

    The output keeps the ``dsrir.*`` metadata with precision ``int8-cpu``.
    """
    if method not in METHODS:
        raise DSRIRError(f"calibration method {method!r}: expected one of {', '.join(METHODS)}")
    if weight_bits not in WEIGHT_BITS:
        raise DSRIRError(f"CPU INT8 weight bits {weight_bits}: expected one of {', '.join(map(str, WEIGHT_BITS))}")
    if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
        raise DSRIRError(
            f"{PURPOSE} needs quantize_static(calibration_cache_path=...), which this onnxruntime "
            f"{onnxruntime.__version__} lacks (1.32 has it): pip install -U onnxruntime"
        )
    model = load_onnx(fp32_onnx)  # with its external weights, if the exporter wrote them apart
    metadata = fp32_export_metadata(model, PURPOSE)
    remaining = iter(frames)
    first = next(remaining, None)  # fail before the slow steps when there is nothing (usable) to calibrate on
    if first is None:
        raise DSRIRError(f"{PURPOSE}: no calibration frames")
    _checked(first, 1, metadata.size_multiple)
    with tempfile.TemporaryDirectory(prefix="dsrir-int8-cpu-") as folder:
        single, prepared, quantized, cache = (
            Path(folder, name) for name in ("fp32.onnx", "prepared.onnx", "int8.onnx", "ranges.json")
        )
        onnx.save(model, str(single), save_as_external_data=False)  # pre-processing copies the .onnx file only
        # ORT's recommended preparation (ONNX shape inference, basic fusions); its symbolic shape inference cannot
        # follow the dynamic H and W, so it is skipped.
        quant_pre_process(str(single), str(prepared), skip_symbolic_shape=True)
        every = itertools.chain([first], remaining)
        _calibrate(prepared, model.graph.input[0].name, every, METHODS[method], metadata.size_multiple, cache)
        quantize_static(
            str(prepared),
            str(quantized),
            None,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=weight_bits == 7,  # no int16 saturation without VNNI: runtime.backends.cpu_int8
            nodes_to_exclude=float_nodes(onnx.load(str(prepared))),
            calibrate_method=METHODS[method],
            calibration_cache_path=str(cache),
        )
        result = onnx.load(str(quantized))
    write_metadata(result, dataclasses.replace(metadata, precision=INT8_CPU))
    save_onnx(result, output)
    return output


def weight_bits_of(path: Path) -> int | None:
    """7 or 8 for a CPU INT8 graph at ``path`` (from its largest weight code), None if it is absent or unreadable."""
    try:
        largest = largest_weight_code(onnx.load(str(path)))
    except Exception:  # a missing, partial or foreign file is simply made again
        return None
    return 7 if 0 < largest <= REDUCED_RANGE else 8 if largest > REDUCED_RANGE else None


def float_nodes(model: onnx.ModelProto) -> list[str]:
    """The PatchAttention MLP convolutions and the nodes reading their outputs (its ReLU and the sigmoid)."""
    mlp = {site.node for module, site in conv_sites(model).items() if not is_quantized_module(module)}
    outputs = {name for node in model.graph.node if node.name in mlp for name in node.output}
    return sorted(mlp | {node.name for node in model.graph.node if outputs.intersection(node.input)})


def _calibrate(
    model: Path, input_name: str, frames: Iterable[np.ndarray], method: CalibrationMethod, multiple: int, cache: Path
) -> None:
    """Activation ranges over all frames, written as ORT's calibration cache."""
    augmented = model.with_name("augmented.onnx")
    calibrator = create_calibrator(model, augmented_model_path=str(augmented), calibrate_method=method)
    with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print progress for every call
        for index, frame in enumerate(frames, 1):
            calibrator.collect_data(_OneFeed({input_name: _checked(frame, index, multiple)}))
        ranges = calibrator.compute_data()
    save_tensors_data(ranges, cache)


def _checked(frame: np.ndarray, index: int, multiple: int) -> np.ndarray:
    array = np.asarray(frame)
    image_like = array.ndim == 4 and array.shape[1] == 3 and np.issubdtype(array.dtype, np.floating)
    if not image_like or array.shape[2] % multiple or array.shape[3] % multiple:
        raise DSRIRError(
            f"calibration frame {index} is {array.dtype} {array.shape}: expected N x 3 x H x W float32 RGB in [0, 1] "
            f"with H and W multiples of {multiple}"
        )
    return np.ascontiguousarray(array, np.float32)
