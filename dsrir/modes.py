"""Training modes: which degradations one network learns. Checkpoints record theirs; every stage reads it here.

A file that records no mode (an official checkpoint) is trained, pruned and fine-tuned as :data:`DEFAULT_MODE`,
the paper's all-in-one setting, unless ``--mode`` says otherwise; what it *records* stays unknown, so an export
never writes a mode into its metadata that the checkpoint did not state.
"""

from __future__ import annotations

from collections.abc import Mapping

MODE_TASKS = {
    "all_in_one": ("noise", "rain", "haze"),
    "noise": ("noise",),
    "rain": ("rain",),
    "haze": ("haze",),
}
DEFAULT_MODE = "all_in_one"


def recorded_mode(metadata: Mapping[str, object]) -> str | None:
    """The mode a checkpoint's metadata records (``all_in_one``, ``noise``...), None when it records none."""
    mode = metadata.get("mode")
    return str(mode) if mode else None
