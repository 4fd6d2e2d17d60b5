"""Atomic writes: a failure while writing leaves the previous file untouched and no temporary behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dsrir.atomic import FILE_MODE, atomic_path, write_text_atomic
from dsrir.errors import DSRIRError, error_line


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "model_latest.pth"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model_latest.pth"]


def test_successful_write_replaces_and_creates_folders(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.txt"
    write_text_atomic(target, "one")
    write_text_atomic(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_error_line_unwraps_worker_tracebacks() -> None:
    wrapped = DSRIRError(
        "Caught DSRIRError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1\ndsrir.errors.DSRIRError: photo.png: not a readable image\n'
    )
    assert error_line(wrapped) == "photo.png: not a readable image"
    assert error_line(DSRIRError("plain message")) == "plain message"


def test_published_files_get_the_usual_mode_not_mkstemps_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_text_atomic(target, "{}")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == FILE_MODE == 0o666 & ~umask  # mkstemp alone gives 0600
