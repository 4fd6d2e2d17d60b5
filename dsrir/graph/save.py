"""Writing an ONNX model: one self-contained file, atomically, for every stage that writes one."""

from __future__ import annotations

from pathlib import Path

import onnx

from dsrir.atomic import write_bytes_atomic


def save_onnx(model: onnx.ModelProto, path: Path) -> None:
    """One self-contained file (weights inside, no ``.onnx.data``): serialised in memory, then a checked atomic
    write (a full disk is one error naming the file, and nothing is published)."""
    write_bytes_atomic(path, model.SerializeToString())
