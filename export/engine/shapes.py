"""The optimisation profile: trtexec-style shape specs, 720p-video defaults, and their checks.

``--min-shape input:1x3x256x256`` is trtexec's syntax (``--minShapes``); a bare ``1x3x256x256`` names the
model's single input. Defaults cover video: 256x256 up to 1080p, tuned for 720p. Every check fails with
one line that names the flag, because a bad profile otherwise surfaces as a TensorRT build error minutes
later (or, for H/W off the size multiple, as a plugin/reshape failure at run time).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from dsrir.errors import DSRIRError
from dsrir.sizes import round_up

Shape = tuple[int, ...]
DEFAULT_HW = {"min": (256, 256), "opt": (720, 1280), "max": (1080, 1920)}
FLAGS = {"min": "--min-shape", "opt": "--opt-shape", "max": "--max-shape"}


@dataclass(frozen=True)
class Profile:
    input_name: str
    layout: str
    min: Shape
    opt: Shape
    max: Shape

    def spec(self, which: str) -> str:
        """``input:1x3x720x1280``: trtexec's shape spec."""
        return f"{self.input_name}:{format_shape(getattr(self, which))}"

    def as_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


def format_shape(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def hw_axes(layout: str) -> tuple[int, int, int]:
    """(channel, height, width) axes of a 4-D image tensor."""
    return (1, 2, 3) if layout == "NCHW" else (3, 1, 2)


def parse_shape(text: str, flag: str, input_name: str) -> Shape:
    """``input:1x3x256x256`` or ``1x3x256x256`` -> ``(1, 3, 256, 256)``."""
    name, sep, dims = text.strip().rpartition(":")
    if "," in text:
        raise DSRIRError(f"{flag} {text}: the model has one input ({input_name}); give one shape")
    if sep and name.strip("'\"") != input_name:
        raise DSRIRError(f"{flag} {text}: the model's input is named {input_name!r}, not {name!r}")
    if not re.fullmatch(r"\d+(x\d+)*", dims):
        raise DSRIRError(f"{flag} {text}: expected [{input_name}:]NxCxHxW, e.g. {input_name}:1x3x720x1280")
    shape = tuple(int(d) for d in dims.split("x"))
    if any(d <= 0 for d in shape):
        raise DSRIRError(f"{flag} {text}: every dimension must be positive")
    return shape


def default_shape(which: str, layout: str, size_multiple: int, static: Sequence[int | str]) -> Shape:
    """The 720p-video default, H/W rounded up to the size multiple; static model dims win."""
    height, width = (round_up(v, size_multiple) for v in DEFAULT_HW[which])
    c_axis, h_axis, w_axis = hw_axes(layout)
    shape = [1, 1, 1, 1]
    shape[c_axis], shape[h_axis], shape[w_axis] = 3, height, width
    return tuple(d if isinstance(d, int) and d > 0 else shape[i] for i, d in enumerate(static))


def _check_one(shape: Shape, flag: str, layout: str, size_multiple: int, static: Sequence[int | str]) -> None:
    spec = format_shape(shape)
    if len(shape) != 4:
        raise DSRIRError(f"{flag} {spec}: the input is 4-D ({layout}); got {len(shape)} dimensions")
    c_axis, h_axis, w_axis = hw_axes(layout)
    if shape[c_axis] != 3:
        raise DSRIRError(f"{flag} {spec}: {layout} input needs 3 channels at axis {c_axis}")
    for axis, (given, fixed) in enumerate(zip(shape, static)):
        if isinstance(fixed, int) and fixed > 0 and given != fixed:
            raise DSRIRError(f"{flag} {spec}: dimension {axis} of {layout} is fixed to {fixed} in the model")
    height, width = shape[h_axis], shape[w_axis]
    if height % size_multiple or width % size_multiple:
        raise DSRIRError(
            f"{flag} {spec}: H={height} and W={width} must be multiples of {size_multiple} (the model's size_multiple)"
        )


def make_profile(
    input_name: str,
    layout: str,
    static: Sequence[int | str],
    size_multiple: int,
    min_text: str | None = None,
    opt_text: str | None = None,
    max_text: str | None = None,
) -> Profile:
    """Parse, default and check the three shapes; defaults bend to the shapes the user gave."""
    given = {
        which: parse_shape(text, FLAGS[which], input_name) if text else None
        for which, text in (("min", min_text), ("opt", opt_text), ("max", max_text))
    }
    for which, shape in given.items():
        if shape is not None:
            _check_one(shape, FLAGS[which], layout, size_multiple, static)
    low, high = given["min"], given["max"]
    opt = given["opt"] or default_shape("opt", layout, size_multiple, static)
    if given["opt"] is None:
        opt = tuple(max(o, lo) for o, lo in zip(opt, low)) if low else opt
        opt = tuple(min(o, hi) for o, hi in zip(opt, high)) if high else opt
    low = low or tuple(min(d, o) for d, o in zip(default_shape("min", layout, size_multiple, static), opt))
    high = high or tuple(max(d, o) for d, o in zip(default_shape("max", layout, size_multiple, static), opt))
    for small, large, names in ((low, opt, ("min", "opt")), (opt, high, ("opt", "max"))):
        for axis, (a, b) in enumerate(zip(small, large)):
            if a > b:
                first, second = (FLAGS[n] + ("" if given[n] else " (default)") for n in names)
                raise DSRIRError(
                    f"{first} {format_shape(small)} is larger than {second} {format_shape(large)} at dimension "
                    f"{axis}: need min <= opt <= max"
                )
    return Profile(input_name, layout, low, opt, high)
