"""One exception type for problems a user can fix (bad input, missing file, wrong flag).

CLIs catch it and print a single ``error: ...`` line instead of a traceback.
"""


class DSRIRError(Exception):
    """A user-facing error whose message names the file, flag or value at fault."""


def error_line(exc: BaseException) -> str:
    """The one-line message of ``exc``. A DataLoader worker re-raises its error with the worker's traceback
    folded into the message; the original message is its last line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    last = lines[-1]
    prefix = f"{DSRIRError.__module__}.{DSRIRError.__name__}: "
    return last[len(prefix) :] if last.startswith(prefix) else last
