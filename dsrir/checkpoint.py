"""Reading and writing DSRIR weights: the official ``.pth`` format and ``.safetensors``.

Official checkpoints are ``{"epoch", "state_dict", "optimizer"}`` (keys may carry a
``module.`` prefix from DataParallel). The project writes the same format plus ``preset`` and
``config`` so a checkpoint says which architecture it holds; older files without them are
matched against the presets by their tensor shapes. When training kept an EMA of the weights (``train.ema``),
the checkpoint also holds ``state_dict_ema`` and the weights read from it are those (``state_dict`` stays the raw
weights the optimiser continues on ``--resume``; ``which="raw"`` reads them, to compare the two). A weight blend
(``train.blend``) records ``blend`` and holds one set of weights. ``.safetensors``
files keep the preset and config in their metadata. A pruned network (``train.prune``) records every convolution's
width in its config (``conv_channels``), so it loads from the file alone like any other. Every write is atomic.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from dsrir.atomic import write_bytes_atomic
from dsrir.errors import DSRIRError
from dsrir.model.arch import DSRIR
from dsrir.model.config import PRESETS, DSRIRConfig

StateDict = dict[str, torch.Tensor]
WhichWeights = Literal["ema", "raw"]


@dataclass
class LoadedWeights:
    """Weights plus what the file says about them."""

    state_dict: StateDict
    config: DSRIRConfig
    preset: str | None
    metadata: dict[str, Any]


def strip_module_prefix(state_dict: StateDict) -> StateDict:
    """Remove the ``module.`` prefix DataParallel/DistributedDataParallel add."""
    if state_dict and all(k.startswith("module.") for k in state_dict):
        return {k[len("module.") :]: v for k, v in state_dict.items()}
    return state_dict


def shapes_of(state_dict: StateDict) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state_dict.items()}


def match_preset(state_dict: StateDict) -> str | None:
    """The preset whose parameter names and shapes equal the state_dict's, if any."""
    wanted = shapes_of(state_dict)
    for name, config in PRESETS.items():
        if shapes_of(DSRIR(config).state_dict()) == wanted:
            return name
    return None


def read_weights(path: str | os.PathLike[str], which: WhichWeights = "ema") -> LoadedWeights:
    """Read a ``.pth`` or ``.safetensors`` file and work out its architecture.

    ``which``: a training checkpoint's EMA weights (its raw ones when it kept no EMA) or its raw weights.
    """
    path = Path(path)
    if not path.is_file():
        raise DSRIRError(f"{path}: checkpoint not found")
    if path.suffix == ".safetensors":
        if which == "raw":
            raise DSRIRError(f"{path}: a .safetensors file holds the shipped weights only; raw weights are in .pth")
        state_dict, meta = _read_safetensors(path)
    else:
        state_dict, meta = _read_pth(path, which)
    state_dict = strip_module_prefix(state_dict)
    preset = meta.get("preset")
    if meta.get("config"):
        config = DSRIRConfig.from_dict(meta["config"])
    elif preset:
        config = _preset_or_error(path, preset)
    else:
        preset = match_preset(state_dict)
        if preset is None:
            raise DSRIRError(
                f"{path}: the tensors match no preset ({', '.join(PRESETS)}) and the file records no config"
            )
        config = PRESETS[preset]
    return LoadedWeights(state_dict, config, preset, meta)


def pick_device(name: str) -> str:
    """``--device``: ``auto`` is CUDA when this machine has it, else the CPU; any other name is used as given."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def load_model(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", which: WhichWeights = "ema"
) -> tuple[DSRIR, LoadedWeights]:
    """Build the network the file describes and load its weights (``which``: see :func:`read_weights`) strictly."""
    weights = read_weights(path, which)
    model = DSRIR(weights.config)
    try:
        model.load_state_dict(weights.state_dict, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise DSRIRError(f"{path}: weights do not fit the recorded architecture: {' '.join(first[:3])}") from None
    return model.to(device).eval(), weights


def _preset_or_error(path: Path, preset: str) -> DSRIRConfig:
    if preset not in PRESETS:
        raise DSRIRError(f"{path}: unknown preset {preset!r} recorded in the file")
    return PRESETS[preset]


def _read_pth(path: Path, which: WhichWeights) -> tuple[StateDict, dict[str, Any]]:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise DSRIRError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__})") from None
    if isinstance(blob, dict) and "state_dict" in blob:
        recorded = ("epoch", "global_step", "preset", "config", "mode", "degradations", "clean_fraction", "blend")
        meta = {k: v for k, v in blob.items() if k in recorded}
        if "blend" in blob:  # train.blend: one set of weights, the average of others
            if which == "raw":
                raise DSRIRError(f"{path}: a weight blend (train.blend) holds no raw weights; read it as it is")
            meta["weights"] = "blend"
        else:
            meta["weights"] = "ema" if which == "ema" and "state_dict_ema" in blob else "raw"
        state_dict = blob["state_dict_ema"] if meta["weights"] == "ema" else blob["state_dict"]
    elif isinstance(blob, dict) and blob and all(isinstance(v, torch.Tensor) for v in blob.values()):
        meta, state_dict = {}, blob
    else:
        raise DSRIRError(f"{path}: expected a state_dict or a {{'epoch', 'state_dict', 'optimizer'}} checkpoint")
    return state_dict, meta


def _read_safetensors(path: Path) -> tuple[StateDict, dict[str, Any]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            raw_meta = handle.metadata() or {}
            state_dict = {k: handle.get_tensor(k) for k in handle.keys()}
    except (SafetensorError, OSError) as exc:
        raise DSRIRError(f"{path}: not a readable safetensors file ({exc})") from None
    meta: dict[str, Any] = dict(raw_meta)
    if "config" in meta:
        meta["config"] = json.loads(meta["config"])
    if "clean_fraction" in meta:  # safetensors metadata holds strings only
        meta["clean_fraction"] = float(meta["clean_fraction"])
    return state_dict, meta


def official_checkpoint(
    model: DSRIR, preset: str | None, epoch: int, optimizer: torch.optim.Optimizer | None = None, **extra: Any
) -> dict[str, Any]:
    """The official checkpoint dict, plus ``preset``, ``config`` and any training state."""
    return {
        "epoch": epoch,
        "state_dict": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "preset": preset,
        "config": model.config.to_dict(),
        **extra,
    }


def save_pth(path: str | os.PathLike[str], checkpoint: dict[str, Any]) -> None:
    """Write a checkpoint dict atomically. Serialised in memory first: ``torch.save`` to a full disk raises a
    RuntimeError without an errno, while the checked write names the file and "No space left on device"."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_bytes_atomic(path, buffer.getbuffer())


def save_safetensors(
    path: str | os.PathLike[str], model: DSRIR, preset: str | None, extra_metadata: dict[str, str] | None = None
) -> None:
    """Write weights only, with preset and config in the metadata, atomically (serialised in memory first, as
    :func:`save_pth`)."""
    from safetensors.torch import save

    metadata = {"format": "pt", "config": json.dumps(model.config.to_dict()), **(extra_metadata or {})}
    if preset:
        metadata["preset"] = preset
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    write_bytes_atomic(path, save(tensors, metadata=metadata))
