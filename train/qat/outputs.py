"""What QAT writes: the fine-tuned checkpoint, its FP32 and Q/DQ graphs with the learned ranges, and the parity of
the Q/DQ graph with the fake-quantised model it came from."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import onnx
import torch

from calibration.qdq import high_precision_for, insert_qdq
from calibration.ranges import ConvSite, Ranges, conv_sites, is_quantized_module
from dsrir.checkpoint import LoadedWeights, official_checkpoint, save_pth
from dsrir.digest import file_sha256
from dsrir.graph.save import save_onnx
from dsrir.graph.session import cpu_session
from dsrir.model.arch import DSRIR
from dsrir.trt.version import DEFAULT_TARGET, parse_version
from export.onnx.build import ExportFailure, ExportOptions, build_onnx
from train.qat.fake_quant import FakeQuantConv2d, learned_ranges, strip_fake_quant

CHECKPOINT_NAME = "model_qat.pth"
FP32_NAME = "model_qat_fp32.onnx"
QDQ_NAME = "model_qat_qdq.onnx"
RANGES_NAME = "ranges_qat.json"
PARITY_SHAPE = (1, 3, 64, 96)  # a multiple of 8: the graph and the model see the same pixels, no padding


@dataclass(frozen=True)
class QDQParity:
    """The Q/DQ graph in ONNX Runtime against the fake-quantised model on one random input."""

    operands: int  # quantised Conv inputs and weights whose DequantizeLinear equals the fake quantiser, bit for bit
    output_max_abs: float  # final image, [0, 1] units

    def describe(self) -> str:
        size = "x".join(map(str, PARITY_SHAPE))
        return f"{self.operands} Conv operands bit-exact; output max abs {self.output_max_abs:.2e} at {size}"


def save_checkpoint(path: Path, model: DSRIR, weights: LoadedWeights, mode: str, steps: int, ranges: Ranges) -> None:
    """The official format of the plain network, plus the QAT steps and ranges (keyed by ``--onnx``'s tensors)."""
    plain = strip_fake_quant(copy.deepcopy(model)).cpu()
    epoch = int(weights.metadata.get("epoch", 0))
    checkpoint = official_checkpoint(
        plain, weights.preset, epoch, mode=mode, qat_steps=steps, qat_ranges=dataclasses.asdict(ranges)
    )
    save_pth(path, checkpoint)


def probe_outputs(graph: onnx.ModelProto, names: Sequence[str]) -> onnx.ModelProto:
    """A copy of ``graph`` that also returns the tensors ``names`` (to compare intermediate values)."""
    probed = onnx.ModelProto()
    probed.CopyFrom(graph)
    existing = {out.name for out in probed.graph.output}
    probed.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names if n not in existing)
    return probed


def check_qdq(qdq: onnx.ModelProto, sites: dict[str, ConvSite], model: DSRIR) -> QDQParity:
    """Run the Q/DQ graph and the fake-quantised model on one random input and compare them.

    Every quantised Conv's two DequantizeLinear outputs must equal the fake quantisers applied to the graph's own
    float tensors, bit for bit: the same scales, rounding and saturation, whatever happened upstream. The final
    image is only reported: ONNX Runtime and PyTorch sum convolutions in different orders, the float32 difference
    occasionally lands on a rounding boundary and flips one INT8 step, and such flips propagate downstream.
    """
    convs = {node.name: node for node in qdq.graph.node}
    probes = {s.module: (s.input, *convs[s.node].input[:2]) for s in sites.values() if is_quantized_module(s.module)}
    names = list(dict.fromkeys(name for probe in probes.values() for name in probe))
    output = qdq.graph.output[0].name
    image = np.random.default_rng(0).random(PARITY_SHAPE, dtype=np.float32)
    sess = cpu_session(probe_outputs(qdq, names))
    values = dict(zip([output, *names], sess.run([output, *names], {sess.get_inputs()[0].name: image})))
    with torch.no_grad():
        for module, (raw, dequantized_input, dequantized_weight) in probes.items():
            conv = cast(FakeQuantConv2d, model.get_submodule(module))  # learned_ranges checked it is
            want_input = conv.quantize_input(torch.from_numpy(values[raw])).numpy()
            if not np.array_equal(values[dequantized_input], want_input):
                raise ExportFailure(f"the Q/DQ graph quantises the input of {module} unlike the fake-quantised model")
            if not np.array_equal(values[dequantized_weight], conv.quantized_weight().numpy()):
                raise ExportFailure(f"the Q/DQ graph quantises the weight of {module} unlike the fake-quantised model")
        restored = model.restore(torch.from_numpy(image)).numpy()
    return QDQParity(2 * len(probes), float(np.abs(values[output] - restored).max()))


def export_qat(
    model: DSRIR,
    preset: str,
    mode: str,
    base: Ranges,
    output_dir: Path,
    settings: dict[str, object],
    target: tuple[int, ...] | None = None,
) -> tuple[QDQParity, dict[str, Path]]:
    """FP32 export of the fine-tuned weights, the learned ranges mapped onto it, Q/DQ insertion, parity, writes.

    Tensor names may differ between exports, so the ranges travel through module paths (``learned_ranges`` on
    the new graph's ``conv_sites``), never by the ``--onnx`` graph's tensor names.
    """
    model = model.cpu().eval()
    plain = strip_fake_quant(copy.deepcopy(model))
    fp32 = build_onnx(plain, preset, mode, ExportOptions(target_trt=target)).model  # opset and rewrites of the target
    sites = conv_sites(fp32)
    ranges = learned_ranges(model, sites, base)
    parity = check_qdq(insert_qdq(fp32, ranges), sites, model)  # FP32 flavour: rounds as the fake quantisers
    qdq = insert_qdq(fp32, ranges, high_precision_for(target or parse_version(DEFAULT_TARGET)))
    fp32_path, ranges_path, qdq_path = output_dir / FP32_NAME, output_dir / RANGES_NAME, output_dir / QDQ_NAME
    save_onnx(fp32, fp32_path)
    digest = file_sha256(fp32_path)
    dataclasses.replace(ranges, model_sha256=digest, settings={**ranges.settings, **settings}).save(ranges_path)
    save_onnx(qdq, qdq_path)
    return parity, {"FP32 graph": fp32_path, "ranges": ranges_path, "Q/DQ graph": qdq_path}
