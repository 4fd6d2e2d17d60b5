"""sha256 digests, the one way files and bytes are fingerprinted (calibration reuse, sidecars, provenance)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_sha256(paths: Iterable[str | os.PathLike[str]]) -> str:
    """One digest over the files in order, read in 1 MiB chunks (videos, engines and weights can be large)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    return files_sha256([path])
