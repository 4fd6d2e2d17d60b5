"""Atomic, checked writes: a failure while writing leaves the previous file untouched and no temporary behind, and
says which file and why; and the rule that an output never is, nor lies inside, an input (dsrir.paths)."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dsrir import atomic
from dsrir.atomic import (
    FILE_MODE,
    atomic_path,
    temporary_beside,
    write_bytes_atomic,
    write_error,
    write_text_atomic,
)
from dsrir.errors import DSRIRError, error_line
from dsrir.paths import InputSet, refuse_overwriting_inputs
from tests.paths import REPO


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


# --- checked writes: a failure names the file and the cause, and publishes nothing ---------------------------------


def test_a_failed_write_names_the_file_and_the_cause_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "frame.png"
    target.write_bytes(b"old")
    with pytest.raises(DSRIRError) as info:
        with atomic_path(target):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(info.value) == f"{target}: could not write: No space left on device"
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["frame.png"]


def test_a_short_write_without_errno_is_told_apart_by_the_free_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """numpy's tofile says "N requested and M written" and no errno; with less than N - M free, the disk is full."""
    target = tmp_path / "frame.png"
    short = OSError("13558 requested and 0 written")
    monkeypatch.setattr(atomic, "free_bytes", lambda folder: 4096)
    assert str(write_error(target, short)) == (
        f"{target}: could not write: No space left on device (13558 requested and 0 written)"
    )
    monkeypatch.setattr(atomic, "free_bytes", lambda folder: 1 << 30)
    assert str(write_error(target, short)) == f"{target}: could not write: 13558 requested and 0 written"


def test_a_file_where_a_folder_must_be_is_named(tmp_path: Path) -> None:
    """mkdir under a file says "File exists" (or "Not a directory"): the line names the file in the way instead."""
    blocker = tmp_path / "clip.mp4"
    blocker.write_bytes(b"video")
    with pytest.raises(DSRIRError, match=r"could not write: .*clip\.mp4 is a file, not a folder$"):
        write_text_atomic(blocker / "results" / "e.json", "{}")
    assert blocker.read_bytes() == b"video"


def test_write_bytes_atomic_counts_every_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.bin"
    write_bytes_atomic(target, np.arange(10, dtype=np.uint8))
    assert target.read_bytes() == bytes(range(10))
    real_write, calls = os.write, []

    def stalling_write(fd: int, data: bytes) -> int:  # the first call takes 3 bytes, then the disk takes none
        calls.append(len(data))
        return real_write(fd, bytes(data)[:3]) if len(calls) == 1 else 0

    monkeypatch.setattr(os, "write", stalling_write)
    with pytest.raises(DSRIRError, match="out.bin: could not write: No space left on device"):
        write_bytes_atomic(target, b"0123456789")
    assert calls == [10, 7]
    assert target.read_bytes() == bytes(range(10)) and [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_an_uncreatable_folder_is_one_line_naming_the_target(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(DSRIRError, match=r"file/sub/out.json: could not write: "):
        write_text_atomic(tmp_path / "file" / "sub" / "out.json", "{}")


# --- the rule: an output is never, nor lies inside, an input --------------------------------------------------------


def test_outputs_that_are_or_lie_inside_inputs_are_refused_in_any_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(b"a")
    (tmp_path / "alias").symlink_to(photos)
    os.link(photos / "a.png", tmp_path / "hard.png")
    monkeypatch.chdir(tmp_path)
    inputs = InputSet([photos, photos / "a.png"])
    refused = {
        "photos": "is the input folder",
        "photos/": "is the input folder",
        "alias": "is the input folder",
        "photos/../photos/a.png": "is the input",
        "alias/a.png": "is the input",
        "hard.png": "is the input",  # another name of the same file
        "photos/restored": "lies inside the input folder",
        "alias/new/deeper.png": "lies inside the input folder",
    }
    for output, words in refused.items():
        with pytest.raises(DSRIRError) as info:
            refuse_overwriting_inputs([("-o", output)], inputs)
        message = str(info.value)
        assert message.startswith(f"-o {output}") and words in message and str(photos) in message, message
        assert "\n" not in message
    for output in ("out", "photos2", str(tmp_path), "photos.png"):  # beside, or a folder holding the inputs
        refuse_overwriting_inputs([("-o", output)], inputs)
    refuse_overwriting_inputs([("-o", None), ("--stats", "")], inputs)  # unset outputs are skipped
    with pytest.raises(DSRIRError, match="is the input"):
        with atomic_path(photos / "a.png", inputs=inputs):
            pass
    assert (photos / "a.png").read_bytes() == b"a"


# --- temporaries of killed runs -------------------------------------------------------------------------------------


def test_the_next_write_removes_temporaries_left_by_a_killed_run(tmp_path: Path) -> None:
    """A run killed with SIGKILL mid-write leaves its hidden temporary beside the target; the next atomic write of
    that target, in this process or another, removes it, while a temporary of a process still alive (a write in
    progress) is left alone."""
    target = tmp_path / "out.png"
    killed = (
        "import os, signal, sys; from pathlib import Path; from dsrir.atomic import temporary_beside; "
        "temporary_beside(Path(sys.argv[1])).write_bytes(b'half'); os.kill(os.getpid(), signal.SIGKILL)"
    )
    for _ in range(2):  # the second run removes the first one's temporary and leaves its own
        result = subprocess.run([sys.executable, "-c", killed, str(target)], cwd=REPO, check=False)
        assert result.returncode == -signal.SIGKILL
        left = sorted(p.name for p in tmp_path.iterdir())
        assert len(left) == 1 and left[0].startswith(".out.png."), left
    alive = temporary_beside(target)  # this process's own write in progress
    write_bytes_atomic(target, b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.png", alive.name])
    assert target.read_bytes() == b"new"
