"""Fake-quantised convolutions for QAT that compute what the Q/DQ graph of :mod:`calibration.qdq` computes.

The Q/DQ graph quantises the input of every INT8 Conv per tensor (scale ``amax / 127``, zero point 0) and its
weight per output channel (scale ``max|w| / 127``). ONNX ``QuantizeLinear`` divides by the scale, rounds half to
even and saturates to int8 ``[-128, 127]``; :func:`fake_quantize` does the same in float32 (``torch.round`` is
half-to-even), so fine-tuning sees the rounding the deployed graph will apply. Rounding passes gradients straight
through (STE) and the activation scale gets LSQ's gradient (Esser et al., 2020).

Several convolutions may read one ONNX tensor (the input image, a USAU's features); a graph has one scale per
tensor, so those convolutions share one :class:`ActivationRange` from the start.
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import Tensor, nn

from calibration.ranges import ConvSite, Ranges, is_quantized_module
from dsrir.errors import DSRIRError
from dsrir.graph.quant import INT8_MAX, MIN_AMAX

QMIN, QMAX = -128.0, 127.0  # int8 saturation of QuantizeLinear; symmetric ranges put amax at 127
ConvT = TypeVar("ConvT", bound=nn.Conv2d)
ModelT = TypeVar("ModelT", bound=nn.Module)  # a DSRIR in, the same DSRIR out


def fake_quantize(x: Tensor, scale: Tensor) -> Tensor:
    """``DequantizeLinear(QuantizeLinear(x))`` with zero point 0; gradients: STE for ``x``, LSQ for ``scale``.

    Clamping before rounding gives the same values as ONNX's round-then-saturate (the bounds are integers), and
    lets autograd produce LSQ's scale gradient: ``round(x/s) - x/s`` inside the range, the bound outside.
    """
    q = torch.clamp(x / scale, QMIN, QMAX)
    q = q + (torch.round(q) - q).detach()  # exactly round(q) forward, identity backward
    return q * scale


class ActivationRange(nn.Module):
    """The amax of one ONNX tensor, learned as a log gain on the calibrated value.

    The log gain makes Adam move every range by the same relative step whatever its magnitude (amax spans
    orders of magnitude across layers), and ``gain = exp(0) = 1`` reproduces the calibrated amax bit for bit.
    """

    calibrated: Tensor

    def __init__(self, amax: float, learnable: bool) -> None:
        super().__init__()
        self.register_buffer("calibrated", torch.tensor(max(float(amax), MIN_AMAX)))
        self.log_gain = nn.Parameter(torch.zeros(()), requires_grad=learnable)

    def amax(self) -> Tensor:
        return self.calibrated * self.log_gain.exp()


def _same_conv(cls: type[ConvT], conv: nn.Conv2d) -> ConvT:
    """A ``cls`` with ``conv``'s hyperparameters holding ``conv``'s own Parameters (so optimisers see them)."""
    new = cls(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        dilation=conv.dilation,  # type: ignore[arg-type]
        groups=conv.groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
        device="meta",  # no allocation and no draw from the RNG for weights about to be replaced
    )
    new.weight = conv.weight
    new.bias = conv.bias
    return new


class FakeQuantConv2d(nn.Conv2d):
    """A Conv2d with its input fake-quantised per tensor and its weight per output channel, as in the Q/DQ graph.

    Parameter names stay those of the plain conv; ``input_range`` adds ``input_range.*`` entries to state_dicts.
    """

    input_range: ActivationRange

    @classmethod
    def wrap(cls, conv: nn.Conv2d, input_range: ActivationRange) -> FakeQuantConv2d:
        quant = _same_conv(cls, conv)
        quant.input_range = input_range
        return quant

    def unwrap(self) -> nn.Conv2d:
        return _same_conv(nn.Conv2d, self)

    def weight_amax(self) -> Tensor:
        """Per output channel max|w|, recomputed from the current weights (no gradient: a max is not learned)."""
        return self.weight.detach().abs().amax(dim=(1, 2, 3)).clamp_min(MIN_AMAX)

    def quantize_input(self, x: Tensor) -> Tensor:
        return fake_quantize(x, self.input_range.amax() / INT8_MAX)

    def quantized_weight(self) -> Tensor:
        return fake_quantize(self.weight, (self.weight_amax() / INT8_MAX)[:, None, None, None])

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(self.quantize_input(x), self.quantized_weight(), self.bias)


def _module_at(model: nn.Module, path: str) -> nn.Module:
    try:
        return model.get_submodule(path)
    except AttributeError:
        raise DSRIRError(
            f"the ONNX graph has a Conv for {path!r}, which this model lacks: the graph was exported from another "
            "architecture"
        ) from None


def _quantized_sites(sites: dict[str, ConvSite]) -> list[ConvSite]:
    return [site for path, site in sorted(sites.items()) if is_quantized_module(path)]


def quantize_model(model: ModelT, ranges: Ranges, sites: dict[str, ConvSite], learnable_scales: bool = True) -> ModelT:
    """Swap every INT8 conv of ``sites`` for a :class:`FakeQuantConv2d` in place, amax from ``ranges``.

    ``sites`` (``calibration.ranges.conv_sites``) must come from the graph ``ranges`` was calibrated on: it says
    which tensor each conv reads, and convs reading the same tensor get one shared range.
    """
    shared: dict[str, ActivationRange] = {}
    quantized = _quantized_sites(sites)
    if not quantized:
        raise DSRIRError("the ONNX graph has no INT8 convolutions (no Conv with a named weight initializer)")
    for site in quantized:
        conv = _module_at(model, site.module)
        if type(conv) is not nn.Conv2d:
            raise DSRIRError(f"{site.module} is a {type(conv).__name__}, not a plain Conv2d (quantised twice?)")
        if site.input not in ranges.activations:
            raise DSRIRError(
                f"the ranges have no amax for tensor {site.input!r} (input of {site.module}): "
                "were they calibrated on this ONNX graph?"
            )
        if site.input not in shared:
            amax = ranges.activations[site.input]
            shared[site.input] = ActivationRange(amax, learnable_scales).to(conv.weight.device)
        model.set_submodule(site.module, FakeQuantConv2d.wrap(conv, shared[site.input]))
    return model


def learned_ranges(model: nn.Module, sites: dict[str, ConvSite], base: Ranges) -> Ranges:
    """The model's current ranges keyed by the tensor names of the graph ``sites`` came from.

    ``sites`` may come from another export than the one the model was quantised with: the mapping goes through
    module paths, so only the graph's structure (which convs read one tensor) has to match.
    """
    activations: dict[str, float] = {}
    weights: dict[str, list[float]] = {}
    for site in _quantized_sites(sites):
        conv = _module_at(model, site.module)
        if not isinstance(conv, FakeQuantConv2d):
            raise DSRIRError(f"{site.module} is not fake-quantised: quantise the model with these sites first")
        amax = float(conv.input_range.amax().detach())
        if activations.setdefault(site.input, amax) != amax:
            raise DSRIRError(
                f"tensor {site.input!r} is read by convs with different ranges ({site.module} and another): the "
                "graph shares tensors the quantised model does not"
            )
        weights[site.weight] = conv.weight_amax().tolist()
    settings = {**base.settings, "base_calibrator": base.calibrator}
    return Ranges("qat", activations, weights, manifest_sha256=base.manifest_sha256, settings=settings)


def strip_fake_quant(model: ModelT) -> ModelT:
    """Back to plain convs in place (same Parameters), e.g. for FP32 export or an official checkpoint."""
    for path, module in list(model.named_modules()):
        if isinstance(module, FakeQuantConv2d):
            model.set_submodule(path, module.unwrap())
    return model
