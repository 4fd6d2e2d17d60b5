"""The patch-attention op in every form: NumPy reference, ONNX Runtime custom op, fused CUDA op.

CPU tests compare NumPy and ONNX Runtime with the PyTorch module for every grid. GPU tests
(skipped without CUDA) compare the fused op with the eager module. Relative error there is
``max|fused - eager| / max|eager|``. To make sure the kernels write every output element, the
extension is called with a NaN-filled ``out``; through the custom op (which allocates its own
output) a NaN-filled tensor of the same size is freed just before the call, so the caching
allocator hands the same poisoned block back (checked by address), and the output must be finite.
The tests need neither cv2 nor the rest of the project, so they also run with ``--noconftest``.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from dsrir.ops import patch_attention_cuda
from dsrir.ops.patch_attention import PatchAttention, patch_attention
from dsrir.ops.patch_attention_numpy import patch_attention_numpy
from tests.paths import REPO

GRIDS = [(8, 8), (4, 4), (2, 2), (1, 1)]
CHANNELS = [32, 48, 64, 80, 96]
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (torch.cuda.is_available() is False)")


def make_module(channels: int, grid: tuple[int, int], seed: int = 0) -> PatchAttention:
    """A PatchAttention with weights large enough that the attention varies between cells."""
    torch.manual_seed(seed)
    module = PatchAttention(channels, 8, grid)
    with torch.no_grad():
        for param in module.parameters():
            param.normal_(0.0, 0.5)
    return module.eval()


def convs(module: PatchAttention) -> tuple[nn.Conv2d, nn.Conv2d]:
    squeeze, expand = module.conv_du[0], module.conv_du[2]
    assert isinstance(squeeze, nn.Conv2d) and isinstance(expand, nn.Conv2d)
    return squeeze, expand


def weights(module: PatchAttention) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    squeeze, expand = convs(module)
    assert squeeze.bias is not None and expand.bias is not None
    w1, b1, w2, b2 = (t.detach().cpu().numpy() for t in (squeeze.weight, squeeze.bias, expand.weight, expand.bias))
    return w1, b1, w2, b2


def odd_size(grid: tuple[int, int], seed: int) -> tuple[int, int]:
    """H, W divisible by the grid with odd cells (odd H, W for the 1x1 grid)."""
    rng = np.random.default_rng(seed)
    return grid[0] * int(rng.choice([3, 5, 7])), grid[1] * int(rng.choice([3, 5, 9]))


# ---------------------------------------------------------------------------------------------- NumPy


@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("with_skip", [False, True])
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: f"{g[0]}x{g[1]}")
def test_numpy_matches_module(grid: tuple[int, int], channels: int, with_skip: bool, n: int) -> None:
    module = make_module(channels, grid, seed=channels)
    h, w = odd_size(grid, seed=channels + n)
    x = torch.randn(n, channels, h, w)
    skip = torch.randn_like(x) if with_skip else None
    with torch.no_grad():
        expected = module(x, skip).numpy()
    w1, b1, w2, b2 = weights(module)
    got = patch_attention_numpy(x.numpy(), w1, b1, w2, b2, *grid, skip=None if skip is None else skip.numpy())
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_numpy_accepts_2d_weights_and_keeps_dtype() -> None:
    module = make_module(32, (4, 4))
    w1, b1, w2, b2 = weights(module)
    x = np.random.default_rng(0).standard_normal((1, 32, 12, 20)).astype(np.float32)
    conv_form = patch_attention_numpy(x, w1, b1, w2, b2, 4, 4)
    matrix_form = patch_attention_numpy(x, w1.reshape(4, 32), b1, w2.reshape(32, 4), b2, 4, 4)
    np.testing.assert_array_equal(conv_form, matrix_form)
    assert patch_attention_numpy(x.astype(np.float16), w1, b1, w2, b2, 4, 4).dtype == np.float16


@pytest.mark.parametrize(("h", "w"), [(13, 16), (16, 10)])
def test_numpy_rejects_sizes_not_divisible_by_the_grid(h: int, w: int) -> None:
    w1, b1, w2, b2 = weights(make_module(32, (4, 4)))
    with pytest.raises(ValueError, match="not divisible by the 4 x 4"):
        patch_attention_numpy(np.zeros((1, 32, h, w), np.float32), w1, b1, w2, b2, 4, 4)


def test_numpy_rejects_wrong_weight_shapes() -> None:
    w1, b1, w2, b2 = weights(make_module(32, (2, 2)))
    with pytest.raises(ValueError, match="W1 must be"):
        patch_attention_numpy(np.zeros((1, 48, 4, 4), np.float32), w1, b1, w2, b2, 2, 2)


# ---------------------------------------------------------------------------------------------- ONNX Runtime


@pytest.fixture(scope="module")
def ort_env():  # type: ignore[no-untyped-def]
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxruntime_extensions")
    from dsrir.ops import patch_attention_ort

    return onnx, onnxruntime, patch_attention_ort


def plugin_node(onnx, name: str, inputs: list[str], output: str, grid, domain: str):  # type: ignore[no-untyped-def]
    """A node as the plugin exporter writes it: custom domain, INT grid, STRING plugin_version/namespace."""
    return onnx.helper.make_node(
        "DSRIR_PatchAttention",
        inputs,
        [output],
        name=name,
        domain=domain,
        grid_h=grid[0],
        grid_w=grid[1],
        plugin_version="1",
        plugin_namespace="",
    )


def initializers(onnx, module: PatchAttention, prefix: str) -> tuple[list, list[str]]:  # type: ignore[no-untyped-def]
    """W1 [hidden, C], b1, W2 [C, hidden], b2 as float32 initializers (the plugin's layout)."""
    w1, b1, w2, b2 = weights(module)
    arrays = {"W1": w1.reshape(w1.shape[0], -1), "b1": b1, "W2": w2.reshape(w2.shape[0], -1), "b2": b2}
    tensors = [onnx.numpy_helper.from_array(a.astype(np.float32), f"{prefix}.{k}") for k, a in arrays.items()]
    return tensors, [t.name for t in tensors]


def run_ort(ort_env, model, feeds: dict[str, np.ndarray]) -> np.ndarray:  # type: ignore[no-untyped-def]
    onnx, onnxruntime, pa_ort = ort_env
    onnx.checker.check_model(model)
    contrib = pa_ort.to_contrib_domain(model)
    session = onnxruntime.InferenceSession(
        contrib.SerializeToString(), pa_ort.session_options_with_patch_attention(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, feeds)[0]


def value_info(onnx, name: str, shape) -> object:  # type: ignore[no-untyped-def]
    return onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, list(shape))


@pytest.mark.parametrize("with_skip", [False, True])
@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: f"{g[0]}x{g[1]}")
def test_ort_op_matches_module(ort_env, grid: tuple[int, int], with_skip: bool) -> None:  # type: ignore[no-untyped-def]
    onnx = ort_env[0]
    channels = 64 if with_skip else 48
    module = make_module(channels, grid, seed=3)
    h, w = odd_size(grid, seed=5)
    x = torch.randn(2, channels, h, w)
    skip = torch.randn_like(x) if with_skip else None
    with torch.no_grad():
        expected = module(x, skip).numpy()

    inits, names = initializers(onnx, module, "pa")
    inputs = ["res", *names] + (["skip"] if with_skip else [])
    graph = onnx.helper.make_graph(
        [plugin_node(onnx, "pa", inputs, "out", grid, "trt.plugins")],
        "pa",
        [value_info(onnx, "res", x.shape)] + ([value_info(onnx, "skip", x.shape)] if with_skip else []),
        [value_info(onnx, "out", x.shape)],
        initializer=inits,
    )
    model = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", 18), onnx.helper.make_opsetid("trt.plugins", 1)]
    )
    feeds = {"res": x.numpy()} | ({"skip": skip.numpy()} if skip is not None else {})
    got = run_ort(ort_env, model, feeds)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert model.graph.node[0].domain == "trt.plugins", "to_contrib_domain must not modify its argument"


def test_ort_two_chained_nodes_and_empty_optional_input(ort_env) -> None:  # type: ignore[no-untyped-def]
    onnx, _, pa_ort = ort_env
    first, second = make_module(32, (8, 8), seed=1), make_module(32, (2, 2), seed=2)
    x = torch.randn(1, 32, 24, 40)
    skip = torch.randn_like(x)
    with torch.no_grad():
        expected = second(first(x, skip)).numpy()

    inits1, names1 = initializers(onnx, first, "pa1")
    inits2, names2 = initializers(onnx, second, "pa2")
    nodes = [
        plugin_node(onnx, "pa1", ["res", *names1, "skip"], "mid", (8, 8), "dsrir"),
        plugin_node(onnx, "pa2", ["mid", *names2, ""], "out", (2, 2), "dsrir"),  # skip omitted as ""
    ]
    graph = onnx.helper.make_graph(
        nodes,
        "chain",
        [value_info(onnx, "res", x.shape), value_info(onnx, "skip", x.shape)],
        [value_info(onnx, "out", x.shape)],
        initializer=inits1 + inits2,
    )
    model = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", 18), onnx.helper.make_opsetid("dsrir", 1)]
    )
    got = run_ort(ort_env, model, {"res": x.numpy(), "skip": skip.numpy()})
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)

    contrib = pa_ort.to_contrib_domain(model)
    assert [(n.op_type, n.domain, len(n.input)) for n in contrib.graph.node] == [
        ("DSRIR_PatchAttentionSkip", "ai.onnx.contrib", 6),
        ("DSRIR_PatchAttention", "ai.onnx.contrib", 5),
    ]
    assert {op.domain for op in contrib.opset_import} == {"", "ai.onnx.contrib"}


def test_ort_missing_grid_attribute_is_an_error(ort_env) -> None:  # type: ignore[no-untyped-def]
    onnx, _, pa_ort = ort_env
    node = onnx.helper.make_node("DSRIR_PatchAttention", ["r", "a", "b", "c", "d"], ["o"], domain="dsrir", grid_h=2)
    graph = onnx.helper.make_graph([node], "g", [], [])
    with pytest.raises(ValueError, match="grid_w"):
        pa_ort.to_contrib_domain(onnx.helper.make_model(graph))


def test_ort_helpers_say_how_to_install_the_extensions(monkeypatch: pytest.MonkeyPatch) -> None:
    from dsrir.ops import patch_attention_ort

    monkeypatch.setitem(sys.modules, "onnxruntime_extensions", None)
    with pytest.raises(ImportError, match="pip install 'onnxruntime-extensions"):
        patch_attention_ort.session_options_with_patch_attention()


# ---------------------------------------------------------------------------------------------- dispatch, CPU


@pytest.mark.skipif(CUDA, reason="checks the CPU-only behaviour")
def test_fused_op_unavailable_without_cuda() -> None:
    assert patch_attention_cuda.fused_patch_attention_available() is False
    assert patch_attention_cuda._extension is None and patch_attention_cuda._build_error is None


def test_fused_op_can_be_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSRIR_DISABLE_FUSED_PA", "1")
    assert patch_attention_cuda.fused_patch_attention_available() is False
    assert patch_attention_cuda.fused_unavailable_reason() == "DSRIR_DISABLE_FUSED_PA=1"


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("with_skip", [False, True])
def test_module_on_cpu_is_the_reference_bit_for_bit(with_skip: bool, grad: bool) -> None:
    module = make_module(48, (4, 4))
    x = torch.randn(2, 48, 12, 20)
    skip = torch.randn_like(x) if with_skip else None
    squeeze, expand = convs(module)
    with torch.set_grad_enabled(grad):
        got = module(x, skip)
        expected = patch_attention(x, squeeze.weight, squeeze.bias, expand.weight, expand.bias, (4, 4), skip)
    assert torch.equal(got, expected)


def test_custom_op_has_a_fake_implementation_and_no_cpu_kernel() -> None:
    args = [torch.empty(s, device="meta") for s in [(4, 32, 1, 1), (4,), (32, 4, 1, 1), (32,)]]
    x = torch.empty(2, 32, 16, 24, device="meta")
    out = torch.ops.dsrir.patch_attention(x, x, *args, 4, 4)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device.type == "meta"
    cpu_args = [torch.zeros_like(a, device="cpu") for a in args]
    with pytest.raises(NotImplementedError):
        torch.ops.dsrir.patch_attention(torch.zeros(1, 32, 4, 4), None, *cpu_args, 2, 2)


def test_importing_the_module_builds_nothing() -> None:
    code = (
        "import sys, dsrir.ops, dsrir.ops.patch_attention; "
        "assert 'torch.utils.cpp_extension' not in sys.modules; "
        "assert 'dsrir.ops.patch_attention_cuda' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# ---------------------------------------------------------------------------------------------- fused op, GPU


def rel_err(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got.float() - expected.float()).abs().max() / expected.float().abs().max())


def gpu_case(grid: tuple[int, int], channels: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, PatchAttention]:
    gen = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 3, (1,), generator=gen))
    cell_h, cell_w = (int(v) for v in torch.randint(1, 12, (2,), generator=gen))
    x = torch.randn(n, channels, grid[0] * cell_h, grid[1] * cell_w, generator=gen)
    skip = torch.randn(x.shape, generator=gen)
    return x.cuda(), skip.cuda(), make_module(channels, grid, seed=seed).cuda()


def reference(
    module: PatchAttention, x: torch.Tensor, skip: torch.Tensor | None, monkeypatch: pytest.MonkeyPatch
) -> torch.Tensor:
    """The eager module in float32 (fused path disabled) on the same, possibly fp16-rounded, values."""
    with monkeypatch.context() as m, torch.no_grad():
        m.setenv("DSRIR_DISABLE_FUSED_PA", "1")
        return copy.deepcopy(module).float()(x.float(), None if skip is None else skip.float())


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: f"{g[0]}x{g[1]}")
def test_fused_matches_eager(grid, channels, dtype, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert patch_attention_cuda.fused_patch_attention_available(), patch_attention_cuda.fused_unavailable_reason()
    extension = patch_attention_cuda.load_extension()
    assert extension is not None
    tolerance = 1e-5 if dtype == torch.float32 else 2e-3
    x, skip, module = gpu_case(grid, channels, seed=channels * 10 + grid[0])
    x, skip = x.to(dtype), skip.to(dtype)
    params = [p.detach() for p in module.parameters()]
    for s in (None, skip):
        expected = reference(module, x, s, monkeypatch)
        poisoned = torch.full_like(x, float("nan"))  # 1. the extension writes into a NaN-filled out
        got = extension.forward(x, s, *params, grid[0], grid[1], poisoned)
        torch.cuda.synchronize()
        assert got.data_ptr() == poisoned.data_ptr() and bool(torch.isfinite(got).all())
        assert rel_err(got, expected) <= tolerance
        del got, poisoned
        bait = torch.full_like(x, float("nan"))  # 2. the custom op gets a freed NaN-filled block back
        address = bait.data_ptr()
        del bait
        got = patch_attention_cuda.patch_attention_op(x, s, *params, grid[0], grid[1])
        torch.cuda.synchronize()
        if got.data_ptr() != address:  # the out= check above is the guarantee; this one is a bonus
            warnings.warn("the caching allocator did not hand the poisoned block back", stacklevel=1)
        assert bool(torch.isfinite(got).all()), "the kernel left elements unwritten"
        assert rel_err(got, expected) <= tolerance


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
def test_module_dispatches_to_fused_only_for_inference(dtype, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    x, skip, module = gpu_case((8, 8), 64, seed=7)
    module = module.to(dtype)
    x, skip = x.to(dtype), skip.to(dtype)
    calls: list[int] = []
    real = patch_attention_cuda.fused_patch_attention

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(patch_attention_cuda, "fused_patch_attention", counting)
    expected = reference(module, x, skip, monkeypatch)
    with torch.inference_mode():
        got = module(x, skip)
    assert len(calls) == 1
    assert rel_err(got, expected) <= (1e-5 if dtype == torch.float32 else 2e-3)
    out = module(x, skip)  # grad enabled, parameters require grad: the reference, with autograd
    assert len(calls) == 1 and out.requires_grad
    out.float().sum().backward()
    with torch.no_grad(), pytest.raises(RuntimeError):  # H not divisible by the grid: the reference's error
        module(x[:, :, :-1].contiguous(), None)
    assert len(calls) == 1


@needs_cuda
def test_fused_on_a_side_stream_and_bad_shape() -> None:
    x, skip, module = gpu_case((4, 4), 32, seed=11)
    params = [p.detach() for p in module.parameters()]
    w1, b1, w2, b2 = params
    expected = patch_attention(x, w1, b1, w2, b2, (4, 4), skip)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        got = patch_attention_cuda.patch_attention_op(x, skip, *params, 4, 4)
    stream.synchronize()
    assert rel_err(got, expected) <= 1e-5
    with pytest.raises(ValueError):
        patch_attention_cuda.patch_attention_op(x[:, :, :-1].contiguous(), None, *params, 4, 4)


@needs_cuda
def test_fused_op_traces_under_torch_compile() -> None:
    x, skip, module = gpu_case((2, 2), 48, seed=13)
    params = [p.detach() for p in module.parameters()]

    def fn(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.ops.dsrir.patch_attention(a, b, *params, 2, 2) * 2.0

    compiled = torch.compile(fn, backend="aot_eager", fullgraph=True)
    assert rel_err(compiled(x, skip), fn(x, skip)) <= 1e-5  # float atomics: not bitwise reproducible
    for s in (skip, None):
        torch.library.opcheck(patch_attention_cuda.patch_attention_op, (x, s, *params, 2, 2))


@needs_cuda
def test_module_under_torch_compile_uses_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    x, skip, module = gpu_case((4, 4), 32, seed=17)
    params = [p.detach() for p in module.parameters()]

    def fail(*args: object, **kwargs: object) -> torch.Tensor:
        raise AssertionError("the fused op was dispatched while compiling")

    monkeypatch.setattr(patch_attention_cuda, "fused_patch_attention", fail)
    with torch.no_grad():
        got = torch.compile(module, backend="aot_eager", fullgraph=True)(x, skip)
    w1, b1, w2, b2 = params
    assert rel_err(got, patch_attention(x, w1, b1, w2, b2, (4, 4), skip)) <= 1e-6


def test_parameter_names_are_unchanged() -> None:
    names = [name for name, _ in make_module(32, (2, 2)).named_parameters()]
    assert names == ["conv_du.0.weight", "conv_du.0.bias", "conv_du.2.weight", "conv_du.2.bias"]
    assert isinstance(make_module(32, (2, 2)).conv_du[1], nn.ReLU)
