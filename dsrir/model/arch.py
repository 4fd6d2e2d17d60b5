"""The DSRIR network: three progressively refined subnets, each followed by a PRU and a USAU.

Function, parameter names and shapes follow the official release, so its checkpoints load
with ``strict=True``. Subnets 1 and 2 are the same U-shaped encoder/decoder with 3 and 2
levels, so one class builds both. A channel-pruned network (``train.prune``) has the same
modules and parameter names with narrower convolutions, rebuilt from ``config.conv_channels``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn

from dsrir.errors import DSRIRError
from dsrir.model.config import DSRIRConfig, Grid
from dsrir.ops.patch_attention import PatchAttention

STAGES = 3  # images (and variance maps) DSRIR.forward returns, one per subnet, final stage first


def conv3x3(cin: int, cout: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, bias=bias)


def conv1x1(cin: int, cout: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, bias=bias)


class PAB(nn.Module):
    """Patch attention block: conv3x3 -> ReLU -> conv3x3 -> patch attention -> + input."""

    def __init__(self, channels: int, reduction: int, grid: Grid) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(channels, channels)
        self.PA = PatchAttention(channels, reduction, grid)

    def forward(self, x: Tensor) -> Tensor:
        return self.PA(self.conv2(self.act(self.conv1(x))), skip=x)


class DownSample(nn.Module):
    """Bilinear x0.5, then a 1x1 conv that widens the features."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.down = nn.Sequential(nn.Upsample(scale_factor=0.5, mode="bilinear"), conv1x1(cin, cout))

    def forward(self, x: Tensor) -> Tensor:
        return self.down(x)


class UpSample(nn.Module):
    """Bilinear x2, then a 1x1 conv that narrows the features."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up = nn.Sequential(nn.Upsample(scale_factor=2.0, mode="bilinear"), conv1x1(cin, cout))

    def forward(self, x: Tensor) -> Tensor:
        return self.up(x)


class UNetSubnet(nn.Module):
    """Subnets 1 and 2: an encoder/decoder whose width grows by ``step`` per level.

    Levels are ``encoder1..L`` and ``decoder1..L``; the skip of level i goes through its own
    PAB (``skipatt{i}``) before being added to the upsampled decoder output.
    """

    def __init__(self, channels: int, step: int, blocks: tuple[int, ...], grids: tuple[Grid, ...], reduction: int):
        super().__init__()
        self.levels = len(blocks)
        widths = [channels + i * step for i in range(self.levels)]

        def stage(i: int) -> nn.Sequential:
            return nn.Sequential(*[PAB(widths[i], reduction, grids[i]) for _ in range(blocks[i])])

        # Registration order follows the official state_dict.
        for i in range(self.levels):
            self.add_module(f"encoder{i + 1}", stage(i))
        for i in reversed(range(self.levels)):
            self.add_module(f"decoder{i + 1}", stage(i))
        for i in range(self.levels - 1):
            self.add_module(f"down{i + 1}", DownSample(widths[i], widths[i + 1]))
        for i in range(self.levels - 1):
            self.add_module(f"up{i + 1}", UpSample(widths[i + 1], widths[i]))
        for i in reversed(range(self.levels - 1)):
            self.add_module(f"skipatt{i + 1}", PAB(widths[i], reduction, grids[i]))

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for i in range(1, self.levels + 1):
            if i > 1:
                x = getattr(self, f"down{i - 1}")(x)
            x = getattr(self, f"encoder{i}")(x)
            skips.append(x)
        x = getattr(self, f"decoder{self.levels}")(x)
        for i in reversed(range(1, self.levels)):
            x = getattr(self, f"up{i}")(x) + getattr(self, f"skipatt{i}")(skips[i - 1])
            x = getattr(self, f"decoder{i}")(x)
        return x


class PAG(nn.Module):
    """Patch attention group: one PAB per grid, a 3x3 conv, and a residual."""

    def __init__(self, channels: int, reduction: int, grids: tuple[Grid, ...]) -> None:
        super().__init__()
        self.body = nn.Sequential(*[PAB(channels, reduction, g) for g in grids], conv3x3(channels, channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + x


class GroupSubnet(nn.Module):
    """Subnet 3: groups of PABs at full resolution (``PAG1..PAGn``)."""

    def __init__(self, channels: int, groups: int, grids: tuple[Grid, ...], reduction: int) -> None:
        super().__init__()
        self.groups = groups
        for i in range(groups):
            self.add_module(f"PAG{i + 1}", PAG(channels, reduction, grids))

    def forward(self, x: Tensor) -> Tensor:
        for i in range(self.groups):
            x = getattr(self, f"PAG{i + 1}")(x)
        return x


class PRU(nn.Module):
    """Pixel-wise refine unit: a 3x3 conv gated per pixel by a small sigmoid branch, + input."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.conv = conv3x3(channels, channels)
        self.fr = nn.Sequential(
            conv3x3(channels, channels // reduction, bias=True),
            nn.ReLU(inplace=True),
            conv3x3(channels // reduction, channels, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        res = self.conv(x)
        return self.fr(res) * res + x


class USAU(nn.Module):
    """Uncertainty supervised attention unit: emits a stage image, its variance map, and
    (except after the last stage) features re-weighted by the uncertainty attention."""

    def __init__(self, image_channels: int, channels: int) -> None:
        super().__init__()
        self.conv_in = conv3x3(image_channels, channels)
        self.conv_out = conv3x3(channels, image_channels)
        self.conv1 = conv1x1(channels, channels)
        self.conv2 = conv1x1(channels, channels)
        self.var_est = nn.Sequential(conv3x3(channels, channels, bias=True), nn.LeakyReLU(0.1, inplace=True))
        self.var_map = nn.Sequential(conv3x3(channels, image_channels, bias=True), nn.LeakyReLU(0.1, inplace=True))
        self.att_map = nn.Sequential(conv1x1(channels, channels, bias=True), nn.Sigmoid())

    def forward(self, x: Tensor, img: Tensor, last: bool = False) -> tuple[Tensor | None, Tensor, Tensor]:
        fusion = self.conv1(x) + self.conv_in(img)
        restored = self.conv_out(fusion) + img
        var_features = self.var_est(fusion)
        var = self.var_map(var_features)
        if last:  # the official code computes the attention here and discards it
            return None, restored, var
        features = self.att_map(var_features) * self.conv2(x) + x
        return features, restored, var


class SplitEmbedding(nn.Module):
    """``ebd`` as one 3x3 conv per stream, weights sliced from it: the same outputs, bit for bit.

    torch-pruning cannot map channel indices through a conv followed by ``torch.split``
    (``train.prune`` works on this form); :meth:`merged` turns the pruned result back into the
    official single ``ebd`` conv, so pruned checkpoints keep the official parameter names.
    """

    def __init__(self, ebd: nn.Conv2d, sizes: Sequence[int]) -> None:
        super().__init__()
        self.streams = nn.ModuleList()
        for weight in ebd.weight.detach().split(list(sizes)):
            conv = conv3x3(ebd.in_channels, weight.shape[0])
            conv.weight = nn.Parameter(weight.clone())
            self.streams.append(conv)

    def forward(self, img: Tensor) -> list[Tensor]:
        return [conv(img) for conv in self.streams]

    def merged(self) -> nn.Conv2d:
        convs = [cast(nn.Conv2d, conv) for conv in self.streams]
        ebd = conv3x3(convs[0].in_channels, sum(conv.out_channels for conv in convs))
        ebd.weight = nn.Parameter(torch.cat([conv.weight.detach() for conv in convs]))
        return ebd


def conv_channels(model: nn.Module) -> tuple[tuple[str, int, int], ...]:
    """``(name, in_channels, out_channels)`` of every convolution: the widths a pruned config records."""
    return tuple((name, m.in_channels, m.out_channels) for name, m in model.named_modules() if isinstance(m, nn.Conv2d))


def resize_convs(model: nn.Module, widths: Sequence[tuple[str, int, int]]) -> None:
    """Rebuild every convolution with the recorded widths (kernel, padding and bias stay the architecture's)."""
    convs = {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    recorded = {name for name, _, _ in widths}
    if recorded != set(convs):
        odd = sorted(recorded ^ set(convs))
        raise DSRIRError(f"conv_channels does not list this architecture's convolutions (e.g. {odd[0]!r})")
    for name, cin, cout in widths:
        old = convs[name]
        kernel, padding = cast(tuple[int, int], old.kernel_size), cast(tuple[int, int], old.padding)
        new = nn.Conv2d(cin, cout, kernel, padding=padding, bias=old.bias is not None)
        model.set_submodule(name, new)


class DSRIR(nn.Module):
    """DSRIR all-in-one restoration network.

    ``forward`` returns ``([img3, img2, img1], [var3, var2, var1])`` (final stage first), as the
    official code does; inference needs ``img3`` only (see :meth:`restore`).
    """

    def __init__(self, config: DSRIRConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or DSRIRConfig()
        self.ebd: nn.Conv2d | SplitEmbedding = conv3x3(
            cfg.in_channels, cfg.sn1_channels + cfg.sn2_channels + cfg.sn3_channels
        )
        self.SN1 = UNetSubnet(cfg.sn1_channels, cfg.sn1_step, cfg.sn1_blocks, cfg.sn1_grids, cfg.reduction)
        self.PRU1 = PRU(cfg.sn1_channels, cfg.reduction)
        self.usau_1 = USAU(cfg.in_channels, cfg.sn1_channels)
        self.channel_comp1 = conv1x1(cfg.sn1_channels + cfg.sn2_channels, cfg.sn2_channels)
        self.SN2 = UNetSubnet(cfg.sn2_channels, cfg.sn2_step, cfg.sn2_blocks, cfg.sn2_grids, cfg.reduction)
        self.PRU2 = PRU(cfg.sn2_channels, cfg.reduction)
        self.usau_2 = USAU(cfg.in_channels, cfg.sn2_channels)
        self.channel_comp2 = conv1x1(cfg.sn2_channels + cfg.sn3_channels, cfg.sn3_channels)
        self.SN3 = GroupSubnet(cfg.sn3_channels, cfg.sn3_groups, cfg.sn3_grids, cfg.reduction)
        self.PRU3 = PRU(cfg.sn3_channels, cfg.reduction)
        self.usau_3 = USAU(cfg.in_channels, cfg.sn3_channels)
        if cfg.conv_channels:
            resize_convs(self, cfg.conv_channels)
        self.split_sizes = self._stream_widths()
        # The last USAU's feature branch is never used (the official code computes and drops it).
        # Its weights stay for checkpoint compatibility but are frozen, so DistributedDataParallel
        # does not wait for their gradients.
        for param in (*self.usau_3.conv2.parameters(), *self.usau_3.att_map.parameters()):
            param.requires_grad_(False)

    def _stream_widths(self) -> list[int]:
        """Widths of the three ``ebd`` streams, read from the layers that take them: pruning narrows
        streams 2 and 3 independently of their subnets, so ``sn*_channels`` need not hold."""
        width = self.get_submodule("SN1.encoder1.0.conv1").in_channels
        return [
            cast(int, width),
            self.channel_comp1.in_channels - self.usau_1.conv1.in_channels,
            self.channel_comp2.in_channels - self.usau_2.conv1.in_channels,
        ]

    def forward(self, img: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        if isinstance(self.ebd, SplitEmbedding):
            x1, x2, x3 = self.ebd(img)
        else:
            x1, x2, x3 = torch.split(self.ebd(img), self.split_sizes, dim=1)

        x, img1, var1 = self.usau_1(self.PRU1(self.SN1(x1)), img)
        x = self.channel_comp1(torch.cat([x, x2], dim=1))
        x, img2, var2 = self.usau_2(self.PRU2(self.SN2(x)), img)
        x = self.channel_comp2(torch.cat([x, x3], dim=1))
        _, img3, var3 = self.usau_3(self.PRU3(self.SN3(x)), img, last=True)
        return [img3, img2, img1], [var3, var2, var1]

    def restore(self, img: Tensor) -> Tensor:
        """The final image only; H and W must be multiples of ``config.size_multiple``."""
        return self.forward(img)[0][0]
