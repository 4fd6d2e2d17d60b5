"""dsrir.trt.plugin: the plugin-creator lookup per TensorRT major version and its missing-creator message."""

from __future__ import annotations

from pathlib import Path

from dsrir.trt.plugin import creator_lookup, missing_creator_message


def test_plugin_lookup_per_major() -> None:
    assert creator_lookup(8) == "get_plugin_creator" and creator_lookup(10) == creator_lookup(11) == "get_creator"
    assert missing_creator_message(Path("lib.so"), "static") == (
        'TensorRT has no plugin creator DSRIR_PatchAttention version "1" namespace "" after loading --plugin-lib '
        "lib.so: a library built with -DDSRIR_TRT_STATIC_REGISTRATION=0 needs --plugin-mode dynamic"
    )
