"""Architecture configuration as a dataclass, with named presets.

The default values are the official DSRIR release (3,516,837 parameters). Smaller presets
shrink subnet 3 first because it holds about 63 % of the FLOPs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from dsrir.errors import DSRIRError

Grid = tuple[int, int]


@dataclass(frozen=True)
class DSRIRConfig:
    """Channel widths, block counts and patch-attention grids of the three subnets.

    ``*_grids`` give the patch-attention grid per encoder level (subnets 1 and 2) or per
    block inside each group (subnet 3, so ``len(sn3_grids)`` is the number of blocks a group).

    ``conv_channels`` records a channel-pruned network: ``(module name, in_channels, out_channels)`` for
    every convolution (``train.prune`` writes it). Pruning keeps the topology, so the fields above still
    give blocks, groups and grids while this table gives every width, and ``DSRIR(config)`` rebuilds the
    pruned network from the config alone. Empty (the presets) means the widths follow the fields above,
    and it is then left out of :meth:`to_dict`, so unpruned configs serialise as they always did.
    """

    in_channels: int = 3
    out_channels: int = 3
    reduction: int = 8
    sn1_channels: int = 32
    sn1_step: int = 32
    sn1_blocks: tuple[int, ...] = (2, 2, 2)
    sn1_grids: tuple[Grid, ...] = ((8, 8), (4, 4), (2, 2))
    sn2_channels: int = 48
    sn2_step: int = 16
    sn2_blocks: tuple[int, ...] = (2, 4)
    sn2_grids: tuple[Grid, ...] = ((4, 4), (2, 2))
    sn3_channels: int = 64
    sn3_groups: int = 4
    sn3_grids: tuple[Grid, ...] = ((8, 8), (4, 4), (2, 2), (1, 1))
    conv_channels: tuple[tuple[str, int, int], ...] = ()
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for name in ("sn1", "sn2"):
            blocks, grids = getattr(self, f"{name}_blocks"), getattr(self, f"{name}_grids")
            if len(blocks) != len(grids):
                raise DSRIRError(f"{name}_blocks has {len(blocks)} levels but {name}_grids has {len(grids)}")
        widths = [self.sn1_channels + i * self.sn1_step for i in range(len(self.sn1_blocks))]
        widths += [self.sn2_channels + i * self.sn2_step for i in range(len(self.sn2_blocks))]
        widths += [self.sn3_channels]
        for width in widths:
            if width % self.reduction:
                raise DSRIRError(f"channel width {width} is not a multiple of reduction {self.reduction}")
        names = [entry[0] for entry in self.conv_channels]
        if len(set(names)) != len(names):
            raise DSRIRError("conv_channels names a convolution twice")
        for entry in self.conv_channels:
            if len(entry) != 3 or not all(isinstance(v, int) and v > 0 for v in entry[1:]):
                raise DSRIRError(f"conv_channels entry {list(entry)} is not [name, in_channels, out_channels]")

    @property
    def size_multiple(self) -> int:
        """Input H and W must be multiples of this (the patch-attention grids at every scale)."""
        multiple = 1
        for level_grids in (self.sn1_grids, self.sn2_grids):
            for level, (gh, gw) in enumerate(level_grids):
                multiple = math.lcm(multiple, gh * 2**level, gw * 2**level)
        for gh, gw in self.sn3_grids:
            multiple = math.lcm(multiple, gh, gw)
        return multiple

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists); ``conv_channels`` only when pruned."""
        values = json_safe(dataclasses.asdict(self))
        if not self.conv_channels:
            del values["conv_channels"]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DSRIRConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error so typos do not pass silently."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise DSRIRError(f"unknown DSRIR config keys: {sorted(unknown)}")
        converted: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(value, list):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            converted[key] = value
        return cls(**converted)


def json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


PRESETS: dict[str, DSRIRConfig] = {
    "dsrir": DSRIRConfig(description="the paper's network (official release), 3.52 M parameters"),
    "dsrir-s": DSRIRConfig(
        sn3_groups=2,
        description="subnet 3 halved to 2 groups: about 69 % of the paper's FLOPs",
    ),
    "dsrir-xs": DSRIRConfig(
        sn1_channels=24,
        sn1_step=24,
        sn2_channels=32,
        sn2_blocks=(2, 2),
        sn3_channels=40,
        sn3_groups=2,
        sn3_grids=((8, 8), (1, 1)),
        description="edge preset: narrower subnets, 2 groups of 2 blocks in subnet 3",
    ),
}


def get_preset(name: str) -> DSRIRConfig:
    """Look a preset up by name, with the list of valid names in the error."""
    try:
        return PRESETS[name]
    except KeyError:
        raise DSRIRError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
