"""A degradation family: a named synthesis and the uniform ranges its parameters are drawn from.

Families are what training mixes and what a benchmark holds out, so their ranges are data, not code: a family can
be narrowed to a sub-range (``rain-slanted:tilt=30..45``) to hold out the rest, and two families or sub-ranges can
be compared for overlap. Every draw comes from the ``np.random.Generator`` given, so a seed reproduces a sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from dsrir.errors import DSRIRError

# (image, parameters, generator, reference height) -> degraded image; the generator supplies the per-pixel noise.
Synthesis = Callable[[np.ndarray, Mapping[str, float], np.random.Generator, int | None], np.ndarray]


class Coverage(StrEnum):
    """How much of an evaluation family training drew from: ``quality.py``'s "training" column, which
    ``leave_one_out.py`` reads back from its JSON (a ``StrEnum`` compares and serialises as its words)."""

    SEEN = "seen"
    PARTLY_SEEN = "partly seen"
    HELD_OUT = "held out"


@dataclass(frozen=True)
class Uniform:
    """A parameter drawn uniformly from ``[low, high]`` (whole numbers, both ends included, when ``integer``)."""

    low: float
    high: float
    integer: bool = False

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(f"empty range {self.low}..{self.high}")

    def draw(self, rng: np.random.Generator) -> float:
        if self.integer:
            return int(rng.integers(int(self.low), int(self.high) + 1))
        return float(rng.uniform(self.low, self.high)) if self.high > self.low else float(self.low)

    def contains(self, other: Uniform) -> bool:
        return self.low <= other.low and other.high <= self.high

    def overlaps(self, other: Uniform) -> bool:
        """Whether the ranges share more than an end point (a shared end is drawn with probability 0)."""
        if self.integer:
            return self.low <= other.high and other.low <= self.high
        low, high = max(self.low, other.low), min(self.high, other.high)
        return high > low or (high == low and (self.low == self.high or other.low == other.high))

    def __str__(self) -> str:
        return f"{_number(self.low)}..{_number(self.high)}"


@dataclass(frozen=True)
class Family:
    """``name`` (unique, prefixed by its task), the ranges of every parameter ``synthesise`` reads, and ``label``:
    the name plus any narrowed ranges, which is also how the family is written on a command line."""

    name: str
    task: str
    ranges: tuple[tuple[str, Uniform], ...]
    synthesise: Synthesis
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)

    @property
    def range_of(self) -> dict[str, Uniform]:
        return dict(self.ranges)

    def draw(self, rng: np.random.Generator) -> dict[str, float]:
        """One value per parameter, in the order of ``ranges`` (which fixes what a seed produces)."""
        return {name: uniform.draw(rng) for name, uniform in self.ranges}

    def apply(
        self, image: np.ndarray, rng: np.random.Generator, reference_height: int | None = None
    ) -> tuple[np.ndarray, dict[str, float]]:
        """Draw the parameters, then synthesise; returns the degraded image and the parameters used."""
        params = self.draw(rng)
        return self.synthesise(image, params, rng, reference_height), params

    def narrowed(self, param: str, low: float, high: float) -> Family:
        """This family with ``param`` drawn from ``low..high`` only, which must lie inside its stated range."""
        ranges = self.range_of
        if param not in ranges:
            raise DSRIRError(f"{self.name} has no parameter {param!r}; it has {', '.join(ranges)}")
        stated = ranges[param]
        if stated.integer and not (float(low).is_integer() and float(high).is_integer()):
            raise DSRIRError(f"{self.name}:{param} takes whole numbers, not {_number(low)}..{_number(high)}")
        try:
            wanted = Uniform(low, high, stated.integer)
        except ValueError:
            raise DSRIRError(f"{self.name}:{param}={_number(low)}..{_number(high)} is an empty range") from None
        if not stated.contains(wanted):
            raise DSRIRError(f"{self.name}:{param}={wanted} is outside its stated range {stated}")
        ranges[param] = wanted
        label = f"{self.label}:{param}={wanted}"
        return replace(self, ranges=tuple(ranges.items()), label=label)

    def coverage(self, trained: Family) -> Coverage:
        """How much of this family a model trained on ``trained`` (the same family, maybe narrowed) has seen:
        seen (every range inside the trained one), held out (some range disjoint) or partly seen."""
        if trained.name != self.name:
            return Coverage.HELD_OUT
        ours, theirs = self.range_of, trained.range_of
        if any(not theirs[p].overlaps(ours[p]) for p in ours):
            return Coverage.HELD_OUT
        return Coverage.SEEN if all(theirs[p].contains(ours[p]) for p in ours) else Coverage.PARTLY_SEEN


def parse_family(text: str, families: Mapping[str, Family]) -> Family:
    """``NAME`` or ``NAME:PARAM=LOW..HIGH[:PARAM=LOW..HIGH...]`` -> the (narrowed) family."""
    name, *narrowings = text.split(":")
    if name not in families:
        raise DSRIRError(f"unknown degradation family {name!r}; expected one of {', '.join(families)}")
    family = families[name]
    for narrowing in narrowings:
        param, _, bounds = narrowing.partition("=")
        low, sep, high = bounds.partition("..")
        try:
            low_value, high_value = float(low), float(high)
        except ValueError:
            low_value = high_value = math.nan
        if not sep or math.isnan(low_value) or math.isnan(high_value):
            raise DSRIRError(f"{text!r}: expected NAME:PARAM=LOW..HIGH, e.g. rain-slanted:tilt=30..45")
        family = family.narrowed(param, low_value, high_value)
    return family


def _number(value: float) -> str:
    return f"{value:g}"
