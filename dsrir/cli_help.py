"""The help formatter every CLI of the toolkit uses."""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show each flag's default, except unset or empty ones (``None``/``False``/``[]``), whose help says what happens
    instead, and switches that take no value (``--no-progress`` would read "default: True", i.e. on, when it is off
    unless given). A description keeps its paragraphs, and indented lines (usage examples in a module docstring) stay as
    written instead of being folded into the prose. A default inside the checkout shows as the path to type from
    its root (``weights/NAME.onnx``), not this machine's absolute path."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        unset = action.default is None or action.default is False  # not ``in``: 0 == False
        empty = isinstance(action.default, (list, tuple)) and not action.default  # "default: []" is noise too
        if unset or empty or action.nargs == 0:
            return action.help
        shown = in_checkout(action.default)
        if shown is not None:
            return f"{action.help or ''} (default: {shown.replace('%', '%%')})"
        return super()._get_help_string(action)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.strip().split("\n\n"):
            lines = paragraph.splitlines()
            if any(line.startswith(" ") for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(super()._fill_text(paragraph, width, indent))
        return "\n\n".join(paragraphs)


def in_checkout(default: object) -> str | None:
    """``default`` relative to the checkout's root if it is an absolute path inside it, else ``None``."""
    if not isinstance(default, (str, Path)) or not Path(default).is_absolute():
        return None
    try:
        return Path(default).resolve().relative_to(REPO).as_posix()
    except ValueError:
        return None
