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
from dsrir.model.arch import DSRIR
from dsrir.tiling import TileBlender, plan_tiles


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Pad (N, C, H, W) at the bottom/right to multiples of ``multiple``; reflect where the
    image is large enough, replicate otherwise (reflect needs pad < size)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x, (h, w)
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (h, w)


AUTO_TILE = 512  # tile edge when ``max_pixels`` forces tiling and no tile was given


def check_tiling(tile: int | None, overlap: int) -> None:
    """``--tile`` positive and ``0 <= --tile-overlap < tile`` (512 for automatic tiles): a negative overlap leaves
    gaps between tiles (black pixels), one as large as the tile never advances."""
    if tile is not None and tile < 1:
        raise DSRIRError(f"--tile {tile}: expected a positive number of pixels")
    edge = AUTO_TILE if tile is None else tile
    if not 0 <= overlap < edge:
        raise DSRIRError(f"--tile-overlap {overlap}: expected 0 <= overlap < tile ({edge})")


class Restorer:
    """Run a DSRIR model on images of any size and layout, returning only the final image.

    Args:
        model: the network (its weights are not copied).
        device: where to run.
        tile: tile edge in pixels (rounded up to the size multiple); ``None`` disables tiling
            unless ``max_pixels`` forces it.
        tile_overlap: pixels shared by neighbouring tiles, ``0 <= tile_overlap < tile`` (or < 512).
        max_pixels: images with more pixels than this are tiled (with ``tile`` or 512).
    """

    def __init__(
        self,
        model: DSRIR,
        device: str | torch.device = "cpu",
        tile: int | None = None,
        tile_overlap: int = 32,
        max_pixels: int | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.multiple = model.config.size_multiple
        check_tiling(tile, tile_overlap)
        self.tile = None if tile is None else -(-tile // self.multiple) * self.multiple
        self.tile_overlap = tile_overlap
        self.max_pixels = max_pixels

    @torch.inference_mode()
    def restore_tensor(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) float in [0, 1], any H and W -> restored tensor of the same shape."""
        if x.ndim != 4 or x.shape[1] != self.model.config.in_channels:
            raise DSRIRError(f"expected an (N, {self.model.config.in_channels}, H, W) tensor, got {tuple(x.shape)}")
        x = x.to(self.device, torch.float32)
        h, w = x.shape[-2:]
        tile = self.tile
        if tile is None and self.max_pixels is not None and h * w > self.max_pixels:
            tile = AUTO_TILE
        if tile is None or (h <= tile and w <= tile):
            padded, _ = pad_to_multiple(x, self.multiple)
            return self.model.restore(padded)[..., :h, :w]
        return self._restore_tiled(x, tile)

    def _restore_tiled(self, x: Tensor, tile: int) -> Tensor:
        """Tiles of the unpadded image, each padded to the size multiple on its own (as the video runtime does)."""
        plan = plan_tiles((x.shape[-2], x.shape[-1]), (tile, tile), self.tile_overlap)
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
        planes = image.astype(np.float32) * np.float32(1.0 / scale)  # as the video runtime converts frames
        if planes.ndim == 2:
            planes = planes[:, :, None]
        colour, alpha = planes[:, :, :3], planes[:, :, 3:] if planes.shape[2] == 4 else None
        gray = colour.shape[2] == 1
        if gray:
            colour = np.repeat(colour, 3, axis=2)
        tensor = torch.from_numpy(np.ascontiguousarray(colour.transpose(2, 0, 1)))[None]
        restored = self.restore_tensor(tensor)[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        if gray:
            restored = restored.mean(axis=2, keepdims=True)
        if alpha is not None:
            restored = np.concatenate([restored, alpha], axis=2)
        if image.ndim == 2:
            restored = restored[:, :, 0]
        if np.issubdtype(image.dtype, np.integer):
            return np.rint(restored * scale).astype(image.dtype)
        return restored.astype(image.dtype)


def _dtype_scale(dtype: np.dtype) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise DSRIRError(f"unsupported image dtype {dtype}; expected uint8, uint16 or float")
