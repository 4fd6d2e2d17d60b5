"""Frozen VGG19 feature extractor for the contrastive loss, built without torchvision.

The layer indices match torchvision's ``vgg19().features`` so its published weight file loads directly;
nothing is ever downloaded — weights come from an explicit path or the torch hub cache.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
from torch import nn

from dsrir.errors import DSRIRError

VGG19_FILENAME = "vgg19-dcbb9e9d.pth"
# torchvision's VGG19 configuration up to relu5_1 (30 layers); "M" is a 2x2 max-pool.
_PLAN: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
# End index (exclusive) of each slice: relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
_SLICE_ENDS = (2, 7, 12, 21, 30)
_FEATURE_KEY = re.compile(r"features\.(\d+)\.(weight|bias)")


def _build_layers() -> list[nn.Module]:
    layers: list[nn.Module] = []
    channels = 3
    for item in _PLAN:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = int(item)
    return layers


class VGG19Features(nn.Module):
    """The first 30 layers of VGG19, frozen and always in eval mode; returns relu1_1..relu5_1."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(*_build_layers())
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:
        """Ignore ``mode``: a fixed feature extractor must not follow the trainer into train mode."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        start = 0
        for end in _SLICE_ENDS:
            x = self.features[start:end](x)
            outputs.append(x)
            start = end
        return outputs


def hub_vgg19_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILENAME


def find_vgg19_weights(explicit: str | Path | None) -> Path | None:
    """The explicit file if given (it must exist), else torchvision's cached file in the torch hub folder, else None."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise DSRIRError(f"VGG19 weights file not found: {path} (--vgg19-weights)")
        return path
    cached = hub_vgg19_path()
    return cached if cached.is_file() else None


def load_vgg19_features(path: str | Path) -> VGG19Features:
    """Load a torchvision-format VGG19 state_dict, keeping only ``features.N.*`` for N < 30."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise DSRIRError(f"cannot read VGG19 weights {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise DSRIRError(f"VGG19 weights {path} is not a state_dict")
    kept = {}
    for key, value in state.items():
        match = _FEATURE_KEY.fullmatch(str(key))
        if match and int(match.group(1)) < _SLICE_ENDS[-1]:
            kept[key] = value
    model = VGG19Features()
    missing = sorted(set(model.state_dict()) - set(kept), key=lambda k: (int(k.split(".")[1]), k))
    if missing:
        raise DSRIRError(f"VGG19 weights {path} lack {len(missing)} torchvision features keys (e.g. {missing[0]})")
    try:
        model.load_state_dict(kept, strict=True)
    except RuntimeError as exc:
        raise DSRIRError(f"VGG19 weights {path} do not match torchvision's VGG19 layout: {exc}") from exc
    return model
