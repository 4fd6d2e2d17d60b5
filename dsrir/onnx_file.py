"""Reading an ``.onnx`` file, the one way every command does it.

A missing, truncated (a cut-off copy or download) or foreign file is one ``DSRIRError`` naming the flag and the file;
protobuf alone says ``DecodeError: Error parsing message`` and names neither.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from dsrir.errors import DSRIRError, error_line


def load_onnx(path: str | os.PathLike[str], flag: str = "", *, external_data: bool = True) -> onnx.ModelProto:
    """The model in ``path`` (with its external weights unless ``external_data`` is False); ``flag`` is the option
    that named the file, for the error line."""
    where = f"{flag} {path}" if flag else str(path)
    if not Path(path).is_file():
        raise DSRIRError(f"{where}: no such ONNX file")
    try:
        return onnx.load(str(path), load_external_data=external_data)
    except DecodeError:
        raise DSRIRError(f"{where}: not a readable ONNX model (truncated, or not ONNX)") from None
    except Exception as exc:  # missing external data, unreadable file...
        raise DSRIRError(f"{where}: not a readable ONNX model ({type(exc).__name__}: {error_line(exc)})") from None
