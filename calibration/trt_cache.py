"""Does a calibration cache name the graph's tensors? The calibration stage checks the cache it wrote against the
FP32 graph: a name TensorRT would not find, or a quantised convolution left without a scale, is a silent accuracy
loss at build time. The cache format itself, read and written, is :mod:`dsrir.trt.calib_cache`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import onnx

from calibration.ranges import conv_sites, is_quantized_module


@dataclass(frozen=True)
class NameCheck:
    """How a cache's tensor names meet a graph: names TensorRT would not find, quantised convs left without a scale."""

    names: int
    unknown: list[str]
    missing_conv_inputs: list[str]

    @property
    def ok(self) -> bool:
        return not self.unknown and not self.missing_conv_inputs

    def line(self) -> str:
        if self.ok:
            return f"all {self.names} cache names are graph tensors; every quantised conv input has a scale"
        missing = self.missing_conv_inputs
        return (
            f"{len(self.unknown)} cache names not in the graph ({_first(self.unknown)}); "
            f"{len(missing)} quantised conv inputs without a scale ({_first(missing)})"
        )


def _first(names: list[str], shown: int = 3) -> str:
    if not names:
        return "none"
    return ", ".join(names[:shown]) + (f", ... {len(names) - shown} more" if len(names) > shown else "")


def check_cache_names(names: Iterable[str], model: onnx.ModelProto) -> NameCheck:
    """Compare cache names with the graph's tensors (inputs and node outputs) and its quantised conv inputs."""
    names = list(names)
    graph_tensors = {value.name for value in model.graph.input}
    graph_tensors.update(output for node in model.graph.node for output in node.output)
    conv_inputs = sorted({site.input for module, site in conv_sites(model).items() if is_quantized_module(module)})
    known = set(names)
    return NameCheck(
        names=len(names),
        unknown=[name for name in names if name not in graph_tensors],
        missing_conv_inputs=[name for name in conv_inputs if name not in known],
    )
