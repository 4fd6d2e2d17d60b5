"""What every command line of the toolkit shares: the wrapper its ``main`` runs in and the types of its flags.

A user meets one ``error: ...`` line on stderr and an exit code, never a traceback, for everything a user can act
on: a ``DSRIRError`` (a bad file, flag or value), an ``OSError`` (the path and the cause, e.g. No space left on
device), running out of memory (what to make smaller), Ctrl-C (exit 130) and a missing optional package (the pip
command that installs it). A bug in the toolkit keeps its traceback: that is what a bug report needs.

Numeric flags are checked by argparse itself (``positive_int`` and friends), so a bad value is argparse's usage
error before any work, the same wording for every command; a frame size is always written width x height
(``frame_size``), as video tools write 1280x720.
"""

from __future__ import annotations

import argparse
import functools
import math
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from dsrir.errors import DSRIRError, error_line

Number = TypeVar("Number", int, float)

EXIT_FAILED = 1  # the command ran and failed (an export that fails its checks, a worker's error)
EXIT_ERROR = 2  # a usage, input or environment error: nothing of value was done
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports a SIGINT

# Our own packages: a missing module among them is a broken checkout or a bug, not a package to install.
OWN_PACKAGES = frozenset({"dsrir", "train", "export", "runtime", "calibration", "benchmarks", "scripts", "tests"})
# Import name -> the pyproject.toml extra that installs it (tests/test_cli_errors.py keeps this in step).
EXTRAS = {
    "numpy": "",
    "cv2": "",
    "onnx": "",
    "onnxruntime": "",
    "tqdm": "",
    "torch": "train",
    "skimage": "train",
    "safetensors": "train",
    "onnxscript": "train",
    "onnxslim": "train",
    "torch_pruning": "train",
    "tritonclient": "triton",
    "onnxruntime_extensions": "test",
    "tensorrt": "gpu",
    "pycuda": "gpu",
    "torch_tensorrt": "gpu",
}
# Packages outside pyproject.toml: their pip name where it differs from the import name.
PIP_NAMES = {"pytriton": "nvidia-pytriton"}
# Allocators that report exhaustion in their own exception types: PyTorch's CPU and CUDA allocators (RuntimeError),
# ONNX Runtime's arena (RuntimeException, not a RuntimeError), C++ std::bad_alloc.
_OUT_OF_MEMORY = re.compile(r"can't allocate memory|out of memory|failed to allocate memory|bad_alloc", re.IGNORECASE)


def one_line_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> str:
    """A warning as a CLI user needs it: the message, not the source line that raised it."""
    return f"warning: {message}\n"


def install_hint(exc: ModuleNotFoundError) -> str | None:
    """``torch is not installed: pip install -e '.[train]'``; None for a module of our own (a bug)."""
    top = (exc.name or "").split(".")[0]
    if not top or top in OWN_PACKAGES:
        return None
    if top in EXTRAS:
        extra = EXTRAS[top]
        command = f"pip install -e '.[{extra}]'" if extra else "pip install -e ."
    else:
        command = f"pip install {PIP_NAMES.get(top, top)}"
    return f"{top} is not installed: {command}"


def os_error_text(exc: OSError) -> str:
    """``PATH: cause`` (both paths of a rename or copy), or the cause alone when the error names no file."""
    cause = exc.strerror or str(exc) or type(exc).__name__
    paths = [str(path) for path in (exc.filename, exc.filename2) if path is not None]
    return f"{' -> '.join(paths)}: {cause}" if paths else cause


def out_of_memory(exc: BaseException) -> bool:
    """Python's MemoryError, or an allocator's own error saying the same (PyTorch, ONNX Runtime)."""
    return isinstance(exc, MemoryError) or bool(_OUT_OF_MEMORY.search(str(exc)))


def memory_text(exc: BaseException) -> str:
    """``out of memory``, with the allocator's own words when it gave any (how much it asked for)."""
    detail = error_line(exc)
    return "out of memory" if detail == type(exc).__name__ else f"out of memory ({detail})"


def _error(text: str) -> None:
    print(f"error: {text}", file=sys.stderr)


class Main(Protocol):
    """A CLI's entry point: ``main()`` parses ``sys.argv``, ``main([...])`` the given arguments; returns its code."""

    def __call__(self, argv: Sequence[str] | None = None) -> int: ...


def command(
    *,
    interrupted: str = "interrupted",
    memory_hint: str = "work on smaller images or frames",
    failed: tuple[type[Exception], ...] = (),
    worker_errors: bool = False,
) -> Callable[[Main], Main]:
    """Wrap a CLI's ``main(argv) -> exit code`` so that what a user can act on is one ``error:`` line and its code.

    ``interrupted``: what Ctrl-C leaves behind (exit 130). ``memory_hint``: which flag makes the work smaller.
    ``failed``: exceptions that mean the command ran and failed (exit 1, their message). ``worker_errors``: any other
    exception is a worker thread's failure re-raised by a pipeline (exit 1, its type and message).
    Argparse's usage errors (``SystemExit``) pass through unchanged; warnings are printed as one line each.
    """

    def decorate(main: Main) -> Main:
        @functools.wraps(main)
        def wrapped(argv: Sequence[str] | None = None) -> int:
            previous = warnings.formatwarning
            warnings.formatwarning = one_line_warning
            try:
                return main(argv)
            except DSRIRError as exc:
                _error(error_line(exc))
                return EXIT_ERROR
            except KeyboardInterrupt:
                _error(interrupted)
                return EXIT_INTERRUPTED
            except ModuleNotFoundError as exc:
                hint = install_hint(exc)
                if hint is None:
                    raise
                _error(hint)
                return EXIT_ERROR
            except OSError as exc:
                _error(os_error_text(exc))
                return EXIT_ERROR
            except Exception as exc:
                if out_of_memory(exc):
                    _error(f"{memory_text(exc)}: {memory_hint}")
                    return EXIT_ERROR
                if isinstance(exc, failed):
                    _error(error_line(exc))
                    return EXIT_FAILED
                if worker_errors:
                    _error(f"{type(exc).__name__}: {error_line(exc)}")
                    return EXIT_FAILED
                raise
            finally:
                warnings.formatwarning = previous

        return wrapped

    return decorate


def _number_type(
    convert: Callable[[str], Number], test: Callable[[Number], bool], expected: str
) -> Callable[[str], Number]:
    """An argparse ``type=``: the converted value, or argparse's usage error naming the flag, the text and the range."""

    def parse(text: str) -> Number:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}") from None
        if not test(value):  # NaN fails every comparison, so it is refused too
            raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}")
        return value

    return parse


positive_int = _number_type(int, lambda v: v >= 1, "a whole number >= 1")
non_negative_int = _number_type(int, lambda v: v >= 0, "a whole number >= 0")
positive_float = _number_type(float, lambda v: 0 < v < math.inf, "a number > 0")
non_negative_float = _number_type(float, lambda v: 0 <= v < math.inf, "a number >= 0")
share = _number_type(float, lambda v: 0 <= v < 1, "a share from 0 up to (not including) 1")


def frame_size(text: str, example: str = "1280x720") -> tuple[int, int]:
    """``1280x720`` -> (1280, 720): every size on the command line is WIDTHxHEIGHT. An argparse ``type=``; callers
    that check a size later turn the ArgumentTypeError into a DSRIRError naming their flag."""
    parts = text.strip().lower().split("x")
    if len(parts) != 2 or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT such as {example}")
    return int(parts[0]), int(parts[1])


def hidden_alias(parser: argparse.ArgumentParser | argparse._ArgumentGroup, old: str, dest: str, **kwargs: Any) -> None:
    """An earlier spelling that still works, unlisted: ``--help`` shows one spelling per concept (the README's
    "One spelling per concept"), and commands written against the old one keep running. It never sets a default,
    so the listed flag's default stands."""
    parser.add_argument(old, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)
