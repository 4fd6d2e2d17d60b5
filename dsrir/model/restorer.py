"""Inference wrapper: any image size, grayscale/RGB/RGBA, optional overlapping tiles.

The network needs H and W to be multiples of 8; the official evaluation centre-crops, which
loses pixels. Here the image is reflect-padded and the result cropped back, so the output
always has the input's size. Large images can be processed in overlapping tiles so memory stays
bounded; the tiles and their blending are :mod:`dsrir.tiling`'s, shared with the video runtime.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dsrir.errors import DSRIRError
from dsrir.memory_budget import activation_bytes_per_pixel, tile_for_budget
from dsrir.model.arch import DSRIR
from dsrir.model.cost import widest_channels
from dsrir.tiling import DEFAULT_OVERLAP, TileBlender, TilePlan, auto_overlap, plan_tiles


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Pad (N, C, H, W) at the bottom/right to multiples of ``multiple``; reflect where the
    image is large enough, replicate otherwise (reflect needs pad < size)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x, (h, w)
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (h, w)


def check_tiling(tile: int | None, overlap: int) -> None:
    """``--tile`` positive and ``0 <= --tile-overlap < tile``: a negative overlap leaves gaps between tiles (black
    pixels), one as large as the tile never advances. Tiles sized by the memory budget overlap by at most a quarter
    of themselves (:func:`dsrir.tiling.auto_overlap`)."""
    if tile is not None and tile < 1:
        raise DSRIRError(f"--tile {tile}: expected a positive number of pixels")
    if overlap < 0 or (tile is not None and overlap >= tile):
        bound = f" < tile ({tile})" if tile is not None else ""
        raise DSRIRError(f"--tile-overlap {overlap}: expected 0 <= overlap{bound}")


class Restorer:
    """Run a DSRIR model on images of any size and layout, returning only the final image.

    Args:
        model: the network (its weights are not copied).
        device: where to run.
        tile: tile edge in pixels (rounded up to the size multiple); ``None``: tiles only where
            ``max_memory`` needs them, sized by it.
        tile_overlap: pixels shared by neighbouring tiles, ``0 <= tile_overlap < tile`` (tiles sized by
            the budget: at most a quarter of the tile).
        max_memory: peak bytes the process may use (:mod:`dsrir.memory_budget`); ``None``: no limit.
    """

    def __init__(
        self,
        model: DSRIR,
        device: str | torch.device = "cpu",
        tile: int | None = None,
        tile_overlap: int = DEFAULT_OVERLAP,
        max_memory: int | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.multiple = model.config.size_multiple
        check_tiling(tile, tile_overlap)
        self.tile = None if tile is None else -(-tile // self.multiple) * self.multiple
        self.tile_overlap = tile_overlap
        self.max_memory = max_memory
        self.activation_bytes_per_pixel = activation_bytes_per_pixel(widest_channels(model))

    @torch.inference_mode()
    def restore_tensor(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) float in [0, 1], any H and W -> restored tensor of the same shape."""
        if x.ndim != 4 or x.shape[1] != self.model.config.in_channels:
            raise DSRIRError(f"expected an (N, {self.model.config.in_channels}, H, W) tensor, got {tuple(x.shape)}")
        x = x.to(self.device, torch.float32)
        h, w = x.shape[-2:]
        plan = self.plan((h, w), images=x.shape[0])
        if plan is None:
            padded, _ = pad_to_multiple(x, self.multiple)
            return self.model.restore(padded)[..., :h, :w]
        return self._restore_tiled(x, plan)

    def plan(self, hw: tuple[int, int], images: int = 1) -> TilePlan | None:
        """The tiles for ``images`` images of ``hw`` at once (``--tile``, else the budget), None to restore whole."""
        if self.tile is not None:
            return plan_tiles(hw, (self.tile, self.tile), self.tile_overlap) if max(hw) > self.tile else None
        if self.max_memory is None:
            return None
        tile_hw = tile_for_budget(self.max_memory, hw, self.activation_bytes_per_pixel, self.multiple, images)
        return None if tile_hw is None else plan_tiles(hw, tile_hw, auto_overlap(tile_hw, self.tile_overlap))

    def _restore_tiled(self, x: Tensor, plan: TilePlan) -> Tensor:
        """Tiles of the unpadded image, each padded to the size multiple on its own (as the video runtime does)."""
        blender = TileBlender(plan, tuple(x.shape[:-2]))
        th, tw = plan.tile_hw
        for top, left in plan.boxes():
            patch, _ = pad_to_multiple(x[..., top : top + th, left : left + tw].contiguous(), self.multiple)
            blender.add(top, left, self.model.restore(patch)[..., :th, :tw].cpu().numpy())
        return torch.from_numpy(blender.result()).to(self.device)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Restore one RGB(A) or grayscale image (H x W, H x W x 1/3/4; uint8, uint16 or float
        in [0, 1]). Returns the same shape and dtype; an alpha channel passes through."""
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
            raise DSRIRError(f"expected an H x W grayscale or H x W x 1/3/4 image, got shape {image.shape}")
        scale = _dtype_scale(image.dtype)
        planes = image if image.ndim == 3 else image[:, :, None]
        colour = planes[:, :, :3] if planes.shape[2] != 1 else np.repeat(planes, 3, axis=2)
        # One float copy, converted as the video runtime converts frames (x * float32(1/255)); the rest in place,
        # so a large photo costs a few bytes per pixel beside the network (dsrir.memory_budget).
        chw = np.empty((3, *colour.shape[:2]), np.float32)
        np.multiply(colour.transpose(2, 0, 1), np.float32(1.0 / scale), out=chw)
        restored = self.restore_tensor(torch.from_numpy(chw)[None])[0].cpu().numpy()
        del chw
        np.clip(restored, 0, 1, out=restored)
        if planes.shape[2] == 1:
            restored = restored.mean(axis=0, keepdims=True)
        if np.issubdtype(image.dtype, np.integer):
            restored *= np.float32(scale)
            np.rint(restored, out=restored)
        result = restored.transpose(1, 2, 0).astype(image.dtype)
        if planes.shape[2] == 4:
            result = np.concatenate([result, planes[:, :, 3:]], axis=2)  # alpha passes through untouched
        return result if image.ndim == 3 else result[:, :, 0]


def _dtype_scale(dtype: np.dtype) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise DSRIRError(f"unsupported image dtype {dtype}; expected uint8, uint16 or float")
