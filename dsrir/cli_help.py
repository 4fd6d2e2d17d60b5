"""The help formatter every CLI of the toolkit uses."""

from __future__ import annotations

import argparse


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show each flag's default, except unset ones (``None``/``False``): their help says what happens instead,
    and ``(default: None)`` would only add noise."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)
