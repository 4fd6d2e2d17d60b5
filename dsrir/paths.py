"""The one rule every CLI applies before any work: an output never overwrites an input.

An output (a file, or a folder the command fills) may not be one of the command's inputs, nor lie inside an
input folder; a file the command names after an input may not land on that input. Paths are compared resolved
(``~``, ``..`` and symlinks followed) and, where both exist, by identity (``os.path.samefile``), so another
spelling of the same file is caught too. The refusal is one line naming both paths.

The write-side half of the rule (every write checked, nothing half-written published) is :mod:`dsrir.atomic`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from dsrir.errors import DSRIRError

PathLike = str | os.PathLike[str]


def resolved(path: PathLike) -> Path:
    """``path`` absolute, with ``~``, ``..`` and every symlink of its existing part followed."""
    return Path(path).expanduser().resolve()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:  # not there (yet)
        return None
    return stat.st_dev, stat.st_ino


class InputSet:
    """The paths a command reads, looked up by resolved path and, for those that exist, by file identity (a hard
    link, a bind mount or another case on a case-insensitive disk is the same file)."""

    def __init__(self, inputs: Iterable[PathLike | None]) -> None:
        self._by_path: dict[Path, PathLike] = {}
        self._by_id: dict[tuple[int, int], PathLike] = {}
        for source in inputs:
            if source is None or not str(source):
                continue
            real = resolved(source)
            self._by_path.setdefault(real, source)
            identity = _identity(real)
            if identity is not None:
                self._by_id.setdefault(identity, source)

    def find(self, path: Path) -> PathLike | None:
        """The input that resolved ``path`` is, if any."""
        hit = self._by_path.get(path)
        if hit is None and self._by_id:
            identity = _identity(path)
            hit = self._by_id.get(identity) if identity is not None else None
        return hit

    def overlap(self, output: PathLike) -> tuple[str, PathLike] | None:
        """``("is", input)`` or ``("lies inside", input)`` when writing ``output`` would touch an input."""
        out = resolved(output)
        hit = self.find(out)
        if hit is not None:
            return "is", hit
        for parent in out.parents:
            hit = self.find(parent)
            if hit is not None:
                return "lies inside", hit
        return None


def _spelled(path: PathLike) -> str:
    """The path as the user gave it, and what it resolves to when that differs (a symlink, ``..``, ``~``)."""
    text, real = str(path), str(resolved(path))
    return text if text.rstrip("/" + os.sep) == real else f"{text} (= {real})"


def refuse_overwriting_inputs(
    outputs: Iterable[tuple[str, PathLike | None]], inputs: InputSet | Iterable[PathLike | None]
) -> None:
    """Raise one line naming both paths when an output (``(flag, path)`` pairs) is or lies inside an input.

    Call it before any work. ``inputs`` are the files and folders the command reads (images, clips, checkpoints);
    ``outputs`` are the files and folders it writes, including the files it names after its inputs.
    """
    known = inputs if isinstance(inputs, InputSet) else InputSet(inputs)
    for flag, output in outputs:
        if output is None or not str(output):
            continue
        found = known.overlap(output)
        if found is None:
            continue
        relation, source = found
        kind = "input folder" if resolved(source).is_dir() else "input"
        rule = "an output may not overwrite an input" if relation == "is" else "an output may not lie inside an input"
        raise DSRIRError(f"{flag} {_spelled(output)} {relation} the {kind} {_spelled(source)}: {rule}; write elsewhere")
