"""The CPU-feature rule for ONNX Runtime's INT8 graph: which CPUs saturate u8 x s8 products, and the weight halving.

Features are injected, never read from this machine, so both branches run on every CPU; the graphs are tiny
hand-made Q/DQ convolutions whose arithmetic can be checked exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dsrir.graph.quant import REDUCED_RANGE, largest_weight_code
from runtime.backends.cpu_int8 import CpuFeatures, fit_to_cpu, read_cpu_features, to_reduced_range


def qdq_conv(codes: np.ndarray, scales: np.ndarray) -> onnx.ModelProto:
    """x -> Conv(x, DequantizeLinear(codes, scales, axis 0)) with int8 per-channel weight codes."""
    nodes = [
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"], name="dq_w", axis=0),
        helper.make_node("Conv", ["x", "w"], ["y"], name="conv"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, codes.shape[1], 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(codes.astype(np.int8), "w_q"),
            numpy_helper.from_array(scales.astype(np.float32), "w_scale"),
            numpy_helper.from_array(np.zeros(codes.shape[0], np.int8), "w_zero"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize(
    ("machine", "flags", "saturates"),
    [
        ("x86_64", {"avx2", "fma"}, True),  # AMD EPYC Milan, Haswell..Coffee Lake
        ("x86_64", {"avx2", "avx512f", "avx512bw"}, True),  # Skylake-SP: AVX-512 without VNNI still saturates
        ("x86_64", {"avx2", "avx512f", "avx512_vnni"}, False),  # Cascade Lake+, Zen 4
        ("x86_64", {"avx2", "avx_vnni"}, False),  # Alder Lake
        ("AMD64", {"amx_int8"}, False),
        ("x86_64", set(), True),  # flags unknown: assume the worst
        ("aarch64", {"asimd", "asimddp"}, False),  # Jetson Orin
        ("aarch64", set(), False),
    ],
)
def test_which_cpus_saturate_u8s8_products(machine: str, flags: set[str], saturates: bool) -> None:
    assert CpuFeatures(machine, frozenset(flags)).saturates_u8s8 is saturates


def test_cpu_features_come_from_cpuinfo_flags_of_x86_and_arm(tmp_path: Path) -> None:
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512_vnni\n\nprocessor\t: 1\nflags\t\t: fpu avx2\n")
    assert {"avx2", "avx512_vnni", "fpu"} <= read_cpu_features(x86).flags
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp\n")
    assert read_cpu_features(arm).flags == {"fp", "asimd", "asimddp"}
    assert read_cpu_features(tmp_path / "missing").flags == frozenset()


def test_halving_keeps_7_bit_codes_and_the_dequantised_weights_within_one_step() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(-127, 128, size=(4, 3, 3, 3))
    codes[0, 0, 0, 0], codes[1, 0, 0, 0] = 127, -127
    scales = rng.uniform(1e-3, 1e-2, size=4)
    model = qdq_conv(codes, scales)
    halved = to_reduced_range(model)
    assert largest_weight_code(model) == 127 and largest_weight_code(halved) == REDUCED_RANGE
    arrays = {init.name: numpy_helper.to_array(init) for init in halved.graph.initializer}
    np.testing.assert_array_equal(arrays["w_scale"], (scales * 2).astype(np.float32))
    before = codes * scales[:, None, None, None]
    after = arrays["w_q"].astype(np.float64) * arrays["w_scale"][:, None, None, None]
    step = (2 * scales)[:, None, None, None]
    assert np.all(np.abs(after - before) <= step / 2 * (1 + 1e-5))  # rounding to the nearest 7-bit code
    assert largest_weight_code(model) == 127  # the input model is left alone


def test_fit_to_cpu_takes_each_branch_and_leaves_7_bit_graphs_alone() -> None:
    model = qdq_conv(np.full((2, 1, 1, 1), 100), np.ones(2))
    avx2 = CpuFeatures("x86_64", frozenset({"avx2"}))
    vnni = CpuFeatures("x86_64", frozenset({"avx2", "avx512_vnni"}))
    fitted, how = fit_to_cpu(model, avx2)
    assert largest_weight_code(fitted) == 50 and "halved at load" in how and "without VNNI" in how
    kept, how = fit_to_cpu(model, vnni)
    assert kept is model and how.startswith("8-bit weights") and "avx512_vnni" in how
    small = qdq_conv(np.full((2, 1, 1, 1), 60), np.ones(2))
    assert fit_to_cpu(small, avx2)[0] is small


def test_asymmetric_weights_are_refused_not_silently_halved() -> None:
    model = qdq_conv(np.full((2, 1, 1, 1), 100), np.ones(2))
    zero = next(init for init in model.graph.initializer if init.name == "w_zero")
    zero.CopyFrom(numpy_helper.from_array(np.ones(2, np.int8), "w_zero"))
    with pytest.raises(ValueError, match="asymmetric"):
        to_reduced_range(model)
