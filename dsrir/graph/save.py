"""Writing an ONNX model: one self-contained file, atomically, for every stage that writes one."""

from __future__ import annotations

from pathlib import Path

import onnx

from dsrir.atomic import atomic_path


def save_onnx(model: onnx.ModelProto, path: Path) -> None:
    """One self-contained file (weights inside, no ``.onnx.data``), written atomically."""
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp), save_as_external_data=False)
