"""One exception type for problems a user can fix (bad input, missing file, wrong flag).

CLIs catch it and print a single ``error: ...`` line instead of a traceback.
"""


class DSRIRError(Exception):
    """A user-facing error whose message names the file, flag or value at fault."""
