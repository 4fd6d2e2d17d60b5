"""Image sizes against a size multiple: the network takes H and W multiples of 8 (its ``size_multiple``)."""

from __future__ import annotations


def round_up(value: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is >= ``value``."""
    return -(-value // multiple) * multiple
