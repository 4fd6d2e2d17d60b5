"""Degradation sets: which synthetic degradations training draws from, and what an evaluation label means.

Two kinds of set:

* ``v3``: the single generator of ``dsrir.data.degrade`` that trained the weights up to v3 (one light rain layer,
  OTS-like haze); kept unchanged so those runs reproduce.
* families (the default, ``families``): every family of ``FAMILIES``, drawn per sample. A command line may name
  families instead, narrow their ranges (``rain-slanted:tilt=35..45``) and hold some out (``hold_out``), so that a
  benchmark can score a model on families or ranges its training never drew from. ``V3_FAMILIES`` (``rain-v3``,
  ``haze-v3``) are the v3 generator's rain and haze as families, so that a set can mix them with the others
  (``families rain-v3 haze-v3``); ``families`` alone leaves them out, as when v4 was trained.

A sample draws its task first (as before: ``train.config.TrainConfig.sampled_tasks``), then one of that task's
families uniformly, then the family's parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from dsrir.data import degrade as v3
from dsrir.data.degrade import NOISE_SIGMA_MAX, add_gaussian_noise
from dsrir.data.degrade_haze import HAZE_FAMILIES
from dsrir.data.degrade_rain import RAIN_FAMILIES
from dsrir.data.family import Coverage, Family, Uniform, parse_family
from dsrir.data.pairs import TASKS
from dsrir.errors import DSRIRError

V3 = "v3"
ALL_FAMILIES = "families"
NOISE_LABEL = re.compile(r"noise(\d+)")
# The evaluation label of an undegraded photo: what the network does to a clean frame, which is most of what a
# camera sends. No task and no family; training sees it through ``--clean-fraction``.
CLEAN_LABEL = "clean"


def _synthesise_noise(
    image: np.ndarray, params: Mapping[str, float], rng: np.random.Generator, reference_height: int | None = None
) -> np.ndarray:
    return add_gaussian_noise(image, params["sigma"], rng)


# The paper's training noise (DESIGN.md section 3, as the official loader): sigma ~ U{0..55} on uint8, clipped.
NOISE_FAMILY = Family(
    "noise-gaussian", "noise", (("sigma", Uniform(0, NOISE_SIGMA_MAX, integer=True)),), _synthesise_noise
)

FAMILIES: dict[str, Family] = {family.name: family for family in (NOISE_FAMILY, *RAIN_FAMILIES, *HAZE_FAMILIES)}


def _synthesise_v3_rain(
    image: np.ndarray, params: Mapping[str, float], rng: np.random.Generator, reference_height: int | None = None
) -> np.ndarray:
    return v3.add_rain(image, rng, reference_height=reference_height, **params)


def _synthesise_v3_haze(
    image: np.ndarray, params: Mapping[str, float], rng: np.random.Generator, reference_height: int | None = None
) -> np.ndarray:
    return v3.add_haze(image, rng, airlight=params["airlight"], beta=params["beta"])


# The v3 generator as families. Rain draws its four parameters in v3's order from v3's ranges, so a seed gives the
# very sample ``v3.degrade`` gives; haze draws airlight and beta from the span of v3's OTS values instead of the
# values themselves (the ``v3`` set keeps the exact generator for reproducing the runs before the families).
V3_FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            "rain-v3",
            "rain",
            (
                ("density", Uniform(*v3.RAIN_DENSITY_RANGE)),
                ("length", Uniform(*v3.RAIN_LENGTH_RANGE)),
                ("angle", Uniform(*v3.RAIN_ANGLE_RANGE)),
                ("weight", Uniform(*v3.RAIN_WEIGHT_RANGE)),
            ),
            _synthesise_v3_rain,
        ),
        Family(
            "haze-v3",
            "haze",
            (
                ("airlight", Uniform(min(v3.AIRLIGHTS), max(v3.AIRLIGHTS))),
                ("beta", Uniform(min(v3.BETAS), max(v3.BETAS))),
            ),
            _synthesise_v3_haze,
        ),
    )
}
# Every family a command line may name.
NAMED_FAMILIES: dict[str, Family] = {**FAMILIES, **V3_FAMILIES}
# What the ``v3`` set trained on, as families: the label each evaluation of v3's rain and haze stands for.
_V3_AS_FAMILIES = (NOISE_FAMILY, *V3_FAMILIES.values())
_V3_LABEL_FAMILY = {"rain": V3_FAMILIES["rain-v3"], "haze": V3_FAMILIES["haze-v3"]}


@dataclass(frozen=True)
class DegradationSet:
    """``families`` per task; empty for the v3 generator. ``spec`` is the canonical text (checkpoints record it).

    ``draw_weights`` (family name, N): that family is drawn N times as often as a family of its task left at 1. It
    changes how often a family is seen, not what was seen, so the recorded ``spec`` leaves it out.
    """

    spec: str
    families: tuple[Family, ...] = ()
    draw_weights: tuple[tuple[str, int], ...] = ()

    @property
    def is_v3(self) -> bool:
        return not self.families

    def families_of(self, task: str) -> tuple[Family, ...]:
        return tuple(family for family in self.families if family.task == task)

    def degrade(
        self, image: np.ndarray, task: str, rng: np.random.Generator, reference_height: int | None = None
    ) -> tuple[np.ndarray, dict[str, float | str]]:
        """A random ``task`` degradation from this set; returns the image and the parameters (and family) used."""
        if self.is_v3:
            degraded, drawn = v3.degrade(image, task, rng, reference_height)
            return degraded, dict(drawn)
        candidates = self.families_of(task)
        if not candidates:
            raise DSRIRError(f"degradations {self.spec!r} have no {task} family")
        weights = dict(self.draw_weights)
        # Each family repeated by its weight: with every weight 1 the draw is the unweighted one, number for number.
        candidates = tuple(family for family in candidates for _ in range(weights.get(family.name, 1)))
        family = candidates[int(rng.integers(0, len(candidates)))]
        degraded, params = family.apply(image, rng, reference_height)
        return degraded, {"family": family.label, **params}

    def weighted(self, weights: Mapping[str, int]) -> DegradationSet:
        """This set drawing each family named in ``weights`` N times as often (``--task-mix rain-slanted=2``)."""
        if not weights:
            return self
        if self.is_v3:
            raise DSRIRError(f"--task-mix {' '.join(weights)}: degradations v3 is one generator, it has no families")
        drawn = {family.name for family in self.families}
        if missing := [name for name in weights if name not in drawn]:
            raise DSRIRError(f"--task-mix {' '.join(missing)}: not among the degradations drawn ({self.spec})")
        if low := [name for name, weight in weights.items() if weight < 1]:
            raise DSRIRError(f"--task-mix {' '.join(low)}: a weight is a whole number >= 1")
        return replace(self, draw_weights=tuple(weights.items()))

    def validation_labels(self, tasks: Sequence[str], sigma: int) -> list[str]:
        """Evaluation labels covering ``tasks``: noise at ``sigma``, and the v3 rain/haze or each family's label."""
        labels = []
        for task in tasks:
            if task == "noise":
                labels.append(f"noise{sigma}")
            else:
                labels += [task] if self.is_v3 else [family.label for family in self.families_of(task)]
        return labels

    def coverage(self, label: str) -> Coverage | str:
        """How much of evaluation ``label`` training on this set drew from (the best verdict over its families;
        "-" for ``clean``, which is no degradation)."""
        if label == CLEAN_LABEL:
            return "-"
        # The v3 evaluation rain and haze (fixed mid-range settings) lie inside the v3 families' ranges.
        family = _V3_LABEL_FAMILY[label] if label in _V3_LABEL_FAMILY else label_family(label)
        verdicts = {family.coverage(trained) for trained in (_V3_AS_FAMILIES if self.is_v3 else self.families)}
        return next((v for v in (Coverage.SEEN, Coverage.PARTLY_SEEN) if v in verdicts), Coverage.HELD_OUT)


def parse_degradations(
    tokens: Sequence[str], hold_out: Sequence[str] = (), tasks: Sequence[str] | None = TASKS
) -> DegradationSet:
    """Command-line tokens -> a set: ``v3``, or ``families`` and/or family names (narrowed or not), minus the
    families named in ``hold_out``, restricted to ``tasks``, each of which must keep at least one family
    (``tasks`` None: the tasks the tokens name, as when reading back a recorded set)."""
    tokens = [token for text in tokens for token in text.replace(",", " ").split()]
    if V3 in tokens:
        if len(tokens) > 1 or hold_out:
            raise DSRIRError("degradations v3 is the old generator on its own: it takes no families or --hold-out")
        return DegradationSet(V3)
    if not tokens:
        raise DSRIRError(f"no degradations given; expected {ALL_FAMILIES}, {V3} or family names")
    named = [parse_family(token, NAMED_FAMILIES) for token in tokens if token != ALL_FAMILIES]
    if tasks is None:
        tasks = TASKS if ALL_FAMILIES in tokens else tuple(dict.fromkeys(family.task for family in named))
    if elsewhere := [family.label for family in named if family.task not in tasks]:
        raise DSRIRError(f"degradations {' '.join(elsewhere)}: not a task of {', '.join(tasks)}")
    repeated = sorted({f.name for f in named if sum(g.name == f.name for g in named) > 1})
    if repeated:
        raise DSRIRError(f"degradation family {', '.join(repeated)} named twice; narrow several ranges in one name")
    chosen = {family.name: family for family in named}
    if ALL_FAMILIES in tokens:  # every family of FAMILIES in its order (a seed's samples depend on it), then the rest
        chosen = {name: chosen.get(name, family) for name, family in FAMILIES.items()} | chosen
    for name in hold_out:
        if name not in NAMED_FAMILIES:
            raise DSRIRError(f"--hold-out {name}: unknown family; expected one of {', '.join(NAMED_FAMILIES)}")
        if chosen.pop(name, None) is None:
            raise DSRIRError(f"--hold-out {name}: not among the degradations {' '.join(tokens)}")
    families = tuple(family for family in chosen.values() if family.task in tasks)
    if missing := [task for task in tasks if not any(family.task == task for family in families)]:
        raise DSRIRError(f"degradations leave no family for {', '.join(missing)}: name one or hold out fewer")
    return DegradationSet(" ".join(family.label for family in families), families)


def recorded_degradations(spec: str | None) -> DegradationSet:
    """The set a checkpoint's ``degradations`` record names; weights that record none were trained before the
    families existed, on the v3 generator."""
    return parse_degradations([spec or V3], tasks=None)


def union_of(sets: Sequence[DegradationSet]) -> DegradationSet:
    """What several trainings drew from together (a weight blend's record, ``train.blend``): ``v3`` when all of
    them are v3, else every family any of them drew from (v3 as ``noise-gaussian rain-v3 haze-v3``), in first-seen
    order. One family narrowed two ways has no single spec: that is refused, naming the family."""
    if all(item.is_v3 for item in sets):
        return DegradationSet(V3)
    chosen: dict[str, Family] = {}
    for item in sets:
        for family in _V3_AS_FAMILIES if item.is_v3 else item.families:
            known = chosen.setdefault(family.name, family)
            if known.label != family.label:
                raise DSRIRError(
                    f"degradations {known.label} and {family.label}: one family drawn over two ranges has no "
                    "single record"
                )
    families = tuple(chosen.values())
    return DegradationSet(" ".join(family.label for family in families), families)


DEFAULT_DEGRADATIONS = parse_degradations([ALL_FAMILIES])


def label_family(label: str) -> Family:
    """An evaluation label as a family: ``noise25`` is the noise family at sigma 25, others are family labels."""
    match = NOISE_LABEL.fullmatch(label)
    if match:  # any sigma, also beyond the family's range (then held out)
        sigma = Uniform(int(match.group(1)), int(match.group(1)), integer=True)
        return replace(NOISE_FAMILY, ranges=(("sigma", sigma),), label=label)
    return parse_family(label, NAMED_FAMILIES)


def label_task(label: str) -> str:
    """The task of an evaluation label: ``noise25`` -> noise, ``rain`` -> rain, ``haze-dense`` -> haze; ``clean``
    has none and stays ``clean``."""
    return label if label in (*TASKS, CLEAN_LABEL) else label_family(label).task
