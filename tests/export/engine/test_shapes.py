"""export.engine.shapes: --min/--opt/--max-shape parsing and the default 720p-video profile in either layout."""

from __future__ import annotations

from typing import Any

import pytest

from dsrir.errors import DSRIRError
from export.engine.shapes import make_profile, parse_shape


def test_shape_specs_parse_with_or_without_the_input_name() -> None:
    assert parse_shape("input:1x3x256x256", "--min-shape", "input") == (1, 3, 256, 256)
    assert parse_shape("1x3x256x256", "--min-shape", "input") == (1, 3, 256, 256)
    assert parse_shape("'input':1x3x8x8", "--min-shape", "input") == (1, 3, 8, 8)
    for text, message in (
        ("image:1x3x8x8", "--opt-shape image:1x3x8x8: the model's input is named 'input', not 'image'"),
        ("1x3xHx8", "expected [input:]NxCxHxW"),
        ("1x3x0x8", "every dimension must be positive"),
        ("input:1x3x8x8,mask:1x1x8x8", "the model has one input"),
    ):
        with pytest.raises(DSRIRError, match=None) as info:
            parse_shape(text, "--opt-shape", "input")
        assert message in str(info.value)


def test_default_profile_is_720p_video_in_either_layout() -> None:
    nchw = make_profile("input", "NCHW", ("n", 3, "h", "w"), 8)
    assert (nchw.min, nchw.opt, nchw.max) == ((1, 3, 256, 256), (1, 3, 720, 1280), (1, 3, 1080, 1920))
    nhwc = make_profile("frames", "NHWC", ("n", "h", "w", 3), 8)
    assert (nhwc.min, nhwc.opt, nhwc.max) == ((1, 256, 256, 3), (1, 720, 1280, 3), (1, 1080, 1920, 3))
    assert nhwc.spec("opt") == "frames:1x720x1280x3"
    assert make_profile("input", "NCHW", ("n", 3, "h", "w"), 16).max == (1, 3, 1088, 1920)  # rounded up
    static = make_profile("input", "NCHW", (1, 3, 512, 512), 8)
    assert static.min == static.opt == static.max == (1, 3, 512, 512)


def test_defaults_bend_to_the_shapes_given() -> None:
    small = make_profile("input", "NCHW", ("n", 3, "h", "w"), 8, max_text="1x3x480x640")
    assert (small.min, small.opt, small.max) == ((1, 3, 256, 256), (1, 3, 480, 640), (1, 3, 480, 640))
    big = make_profile("input", "NCHW", ("n", 3, "h", "w"), 8, min_text="1x3x800x1280")
    assert (big.opt, big.max) == ((1, 3, 800, 1280), (1, 3, 1080, 1920))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"opt_text": "1x3x721x1280"}, "--opt-shape 1x3x721x1280: H=721 and W=1280 must be multiples of 8"),
        ({"min_text": "1x3x800x800", "opt_text": "1x3x720x1280"}, "--min-shape 1x3x800x800 is larger than --opt-shape"),
        (
            {"opt_text": "1x3x720x1280", "max_text": "1x3x512x512"},
            "--opt-shape 1x3x720x1280 is larger than --max-shape",
        ),
        ({"max_text": "1x4x512x512"}, "--max-shape 1x4x512x512: NCHW input needs 3 channels at axis 1"),
        ({"max_text": "1x3x512"}, "the input is 4-D (NCHW); got 3 dimensions"),
        ({"min_text": "2x3x256x256", "static": (1, 3, "h", "w")}, "dimension 0 of NCHW is fixed to 1 in the model"),
    ],
)
def test_bad_profiles_name_the_flag(kwargs: dict[str, Any], message: str) -> None:
    static = kwargs.pop("static", ("n", 3, "h", "w"))
    with pytest.raises(DSRIRError, match=None) as info:
        make_profile("input", "NCHW", static, 8, **kwargs)
    assert message in str(info.value)
