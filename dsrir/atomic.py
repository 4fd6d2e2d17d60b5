"""Checked, atomic file writes: write a temporary file beside the target, check it, fsync, then rename.

A run killed mid-write leaves the previous file intact instead of a truncated one, and a write that fails (a full
disk, a read-only folder) is one ``DSRIRError`` naming the target and the cause ("No space left on device") with
nothing published: the temporary file is removed and an existing target is left as it was. Bytes are counted
(``write_bytes_atomic``), and a short write without an errno (numpy's ``tofile``) is told apart by the free space.

A temporary's name carries its writer's pid (``.out.png.1234.k3j9x2qa.tmp``), so one left by a run killed with
SIGKILL (nothing else leaves one) is recognised as stale: the first write into a folder removes those whose process
is gone, and never one a live process is writing.

The other half of the rule, that an output never overwrites one of the command's inputs, is :mod:`dsrir.paths`;
pass ``inputs`` here to re-check a target whose name is only known at write time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dsrir.errors import DSRIRError
from dsrir.paths import InputSet, refuse_overwriting_inputs

_SHORT_WRITE = re.compile(r"(\d+) requested and (\d+) written")
# temporary_beside's names: "." + target name + "." + pid + "." + mkstemp's 8 random characters + ".tmp[.ext]"
_TEMPORARY = re.compile(r"\..+\.(\d+)\.[a-z0-9_]{8}\.tmp(?:\.[A-Za-z0-9]+)?")
_swept: set[Path] = set()  # folders this process has already cleared of stale temporaries


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# mkstemp creates files readable by the owner only; a published file gets the usual mode (0644 with umask 022).
FILE_MODE = 0o666 & ~_umask()


def free_bytes(folder: str | os.PathLike[str]) -> int | None:
    """Bytes this process may still write on the filesystem holding ``folder`` (``None`` where unknown)."""
    try:
        stat = os.statvfs(folder)
    except (AttributeError, OSError):  # no statvfs on Windows
        return None
    blocks = stat.f_bfree if hasattr(os, "geteuid") and os.geteuid() == 0 else stat.f_bavail
    return blocks * stat.f_frsize


def write_error(target: str | os.PathLike[str], exc: BaseException, *, need: int | None = None) -> DSRIRError:
    """The one-line error for a failed write of ``target``: the path and the cause, e.g. "No space left on device".

    ``need`` is how many bytes were left to write when the cause has no errno (a short write, a video that does not
    read back): with less than that free on the disk, the cause is reported as a full disk."""
    folder = Path(target).parent
    if blocker := _file_in_the_way(folder):  # mkdir says "File exists" or "Not a directory": say which file
        return DSRIRError(f"{target}: could not write: {blocker} is a file, not a folder")
    if isinstance(exc, OSError) and exc.errno is not None:
        cause = os.strerror(exc.errno)
    else:
        text = str(exc) or type(exc).__name__
        short = _SHORT_WRITE.search(text)
        if short and need is None:
            need = int(short.group(1)) - int(short.group(2))
        free = free_bytes(folder)
        if need is not None and free is not None and free < need:
            cause = f"{os.strerror(errno.ENOSPC)} ({text})"
        else:
            cause = text
    return DSRIRError(f"{target}: could not write: {cause}")


def _file_in_the_way(folder: Path) -> Path | None:
    """The nearest existing ancestor of ``folder`` (itself included) when it is a file, else None."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return candidate if not candidate.is_dir() else None
    return None


def _process_gone(pid: int) -> bool:
    """True only when no process has ``pid`` (POSIX; elsewhere nothing is known, so nothing is removed)."""
    if os.name != "posix":
        return False  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # another user's process (EPERM), or not a pid at all
        return False
    return False


def remove_stale_temporaries(folder: Path) -> None:
    """Remove the temporaries in ``folder`` whose writing process is gone (a run killed mid-write); once per folder
    per process, so an image folder of thousands of frames is listed once, not once per frame."""
    real = folder.resolve()
    if real in _swept:
        return
    _swept.add(real)
    try:
        entries = list(os.scandir(real))
    except OSError:
        return
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry.name)
        if match and entry.is_file(follow_symlinks=False) and _process_gone(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def temporary_beside(target: Path, suffix: str = ".tmp") -> Path:
    """An empty temporary file next to ``target`` (same filesystem, so the final rename is atomic), named after
    this process; stale temporaries of killed runs in that folder are removed first."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target.parent)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=suffix, dir=target.parent)
        os.close(fd)
        os.chmod(name, FILE_MODE)
    except OSError as exc:
        raise write_error(target, exc) from exc
    return Path(name)


def _fsync_folder(folder: Path) -> None:
    """Make a rename survive a power cut (an edge device's usual end); best effort where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def publish(tmp: Path, target: Path) -> None:
    """fsync ``tmp`` and rename it over ``target``; a failure is a ``write_error`` and ``target`` is untouched."""
    try:
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise write_error(target, exc) from exc
    _fsync_folder(target.parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, inputs: InputSet | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces ``path``.

    An ``OSError`` raised while writing becomes a ``DSRIRError`` naming ``path`` and the cause; the temporary
    file is always removed. With ``inputs``, a target that is one of them is refused before anything is written.
    """
    target = Path(path)
    if inputs is not None:
        refuse_overwriting_inputs([("output", target)], inputs)
    tmp = temporary_beside(target)
    try:
        try:
            yield tmp
        except OSError as exc:
            raise write_error(target, exc) from exc
        publish(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _write_all(fd: int, data: memoryview, target: Path) -> None:
    done = 0
    while done < len(data):
        written = os.write(fd, data[done:])
        if written <= 0:  # POSIX reports a full disk as ENOSPC; a zero-byte write would loop forever
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
        done += written


def write_bytes_atomic(
    path: str | os.PathLike[str], data: bytes | bytearray | memoryview | object, *, inputs: InputSet | None = None
) -> None:
    """Write ``data`` (bytes or any buffer, e.g. an encoded numpy array) atomically, checking every byte written."""
    target = Path(path)
    view = memoryview(data).cast("B")  # type: ignore[arg-type]
    with atomic_path(target, inputs=inputs) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC | getattr(os, "O_BINARY", 0))
        try:
            _write_all(fd, view, target)
        finally:
            os.close(fd)


def write_text_atomic(path: str | os.PathLike[str], text: str, *, inputs: InputSet | None = None) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), inputs=inputs)
