"""Measure activation ranges: run the FP32 ONNX with ONNX Runtime over a calibration set, one calibrator per tensor.

Every float activation (the graph input and every float node output that depends on it) is calibrated, because
TensorRT may place INT8 on any of them. ONNX Runtime only returns tensors that are graph outputs and keeps every
returned tensor alive until the run ends, so the tensors are split into groups whose outputs fit a memory budget,
and each frame is run once per group. Output sizes at the size the frames run at (the crop window, if the set has
one) are extrapolated from two small probe runs (elements = a + b * H * W fits every tensor of a fully
convolutional net). Conv weights get per-output-channel ranges straight from the initializers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper
from tqdm import tqdm

from calibration.calibrators import HISTOGRAM_BINS, Calibrator, make_calibrator
from calibration.dataset import CalibrationSet
from calibration.fp32_export import check_fp32_export
from calibration.ranges import Ranges, conv_sites, is_quantized_module
from dsrir.digest import file_sha256
from dsrir.graph.session import ort_session
from dsrir.onnx_file import load_onnx

DEFAULT_SIZE_MULTIPLE = 8
PROBE_MULTIPLES = (2, 4)  # probe runs at (2m)^2 and (4m)^2 pixels, m the size multiple
FLOAT32_BYTES = 4
METADATA_OPS = ("Shape", "Size")  # their outputs describe a tensor, they do not carry its values


def check_calibratable(model: onnx.ModelProto, path: Path) -> int:
    """Refuse anything but the decomposed FP32 float-I/O export (:mod:`calibration.fp32_export`); the size
    multiple."""
    meta = check_fp32_export(model, f"--onnx {path}")
    return meta.size_multiple if meta is not None else DEFAULT_SIZE_MULTIPLE


def input_name(model: onnx.ModelProto) -> str:
    initializers = {init.name for init in model.graph.initializer}
    return next(value.name for value in model.graph.input if value.name not in initializers)


def activation_tensors(model: onnx.ModelProto) -> list[str]:
    """The graph input, then every float32 node output computed from it (not from weights or shapes), in order."""
    inferred = onnx.shape_inference.infer_shapes(model)
    values = [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]
    elem_types = {value.name: value.type.tensor_type.elem_type for value in values}
    first = input_name(model)
    dependent, names = {first}, [first]
    for node in model.graph.node:
        if node.op_type in METADATA_OPS or not dependent.intersection(node.input):
            continue
        dependent.update(node.output)
        names += [out for out in node.output if out and elem_types.get(out) == onnx.TensorProto.FLOAT]
    return names


def _session(model: onnx.ModelProto, outputs: Sequence[str]) -> Any:
    """A CPU session of ``model`` whose outputs are exactly ``outputs``."""
    import onnxruntime as ort

    clone = onnx.ModelProto()
    clone.CopyFrom(model)
    del clone.graph.output[:]
    clone.graph.output.extend(
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in outputs
    )
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # One session per group stays open for the whole run: without an arena each returns its memory after a run.
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    return ort_session(clone, options)


def estimate_bytes(model: onnx.ModelProto, names: Sequence[str], size: tuple[int, int], multiple: int) -> list[int]:
    """Bytes of each tensor for one ``size`` (W x H) frame, extrapolated from two small probe runs."""
    session = _session(model, names)
    pixels, elements = [], []
    for factor in PROBE_MULTIPLES:
        side = factor * multiple
        probe = np.zeros((1, 3, side, side), np.float32)
        pixels.append(side * side)
        elements.append(np.array([out.size for out in session.run(list(names), {input_name(model): probe})]))
    slope = (elements[1] - elements[0]) / (pixels[1] - pixels[0])
    estimate = elements[0] + slope * (size[0] * size[1] - pixels[0])
    return [int(np.ceil(max(e, 1.0))) * FLOAT32_BYTES for e in estimate]


def plan_runs(names: Sequence[str], sizes: Sequence[int], budget: int) -> list[list[str]]:
    """Consecutive groups of tensors whose outputs stay within ``budget`` bytes (a larger tensor runs alone)."""
    groups: list[list[str]] = []
    used = budget + 1
    for name, size in zip(names, sizes):
        if used + size > budget:
            groups.append([])
            used = 0
        groups[-1].append(name)
        used += size
    return groups


def weight_ranges(model: onnx.ModelProto) -> dict[str, list[float]]:
    """Per-output-channel max |w| of every quantised conv's weight, keyed by the initializer name."""
    initializers = {init.name: init for init in model.graph.initializer}
    ranges = {}
    for module, site in conv_sites(model).items():
        if is_quantized_module(module):
            weight = numpy_helper.to_array(initializers[site.weight])
            ranges[site.weight] = np.abs(weight).reshape(weight.shape[0], -1).max(axis=1).astype(float).tolist()
    return ranges


def calibration_settings(calibrator: str, percentile: float = 99.99) -> dict[str, Any]:
    """What, besides the model and the frames, decides the ranges: compared before reusing them."""
    settings: dict[str, Any] = {"calibrator": calibrator}
    if calibrator != "max":
        settings["histogram_bins"] = HISTOGRAM_BINS
    if calibrator == "percentile":
        settings["percentile"] = percentile
    return settings


def collect_ranges(
    onnx_path: Path,
    dataset: CalibrationSet,
    calibrator: str = "entropy",
    percentile: float = 99.99,
    max_memory_gb: float = 4.0,
) -> Ranges:
    """Calibrate every float activation of ``onnx_path`` on ``dataset``; weights per output channel."""
    model = load_onnx(onnx_path, "--onnx")
    multiple = check_calibratable(model, onnx_path)
    started = time.perf_counter()
    names = activation_tensors(model)
    first, inner = names[0], names[1:]
    groups = plan_runs(inner, estimate_bytes(model, inner, dataset.frame_size, multiple), int(max_memory_gb * 2**30))
    kw = {"percentile": percentile} if calibrator == "percentile" else {}
    calibrators: dict[str, Calibrator] = {name: make_calibrator(calibrator, **kw) for name in names}
    sessions = [_session(model, group) for group in groups]
    with tqdm(total=len(dataset) * len(groups), unit="run", desc=f"calibrating ({len(groups)} runs/frame)") as bar:
        for frame in dataset:
            calibrators[first].collect(frame)
            for session, group in zip(sessions, groups):
                for name, value in zip(group, session.run(group, {first: frame})):
                    calibrators[name].collect(value)
                bar.update()
    settings = {
        **calibration_settings(calibrator, percentile),
        "runs_per_frame": len(groups),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return Ranges(
        calibrator=calibrator,
        activations={name: float(cal.compute_amax()) for name, cal in calibrators.items()},
        weights=weight_ranges(model),
        model_sha256=file_sha256(onnx_path),
        manifest_sha256=dataset.manifest_sha256,
        settings=settings,
    )
