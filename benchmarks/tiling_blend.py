"""Ramps or a plain average where tiles overlap: which is closer to restoring the image whole?

    python benchmarks/tiling_blend.py --checkpoint weights/dsrir-xs-p50_all_in_one.safetensors --tile 128

A frame of the shipped demo clip (640x360) with sigma-25 noise is restored whole and in tiles (``dsrir.tiling``'s
plan), the tiles blended once with the ramps and once averaged; the table gives each result's PSNR against the
whole-image restoration, over the whole image and over the pixels where tiles overlap (where a seam would show).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dsrir.checkpoint import load_model  # noqa: E402
from dsrir.cli_help import DefaultsHelpFormatter  # noqa: E402
from dsrir.model.restorer import pad_to_multiple  # noqa: E402
from dsrir.tiling import TileBlender, auto_overlap, plan_tiles  # noqa: E402

DEMO = REPO / "runtime" / "assets" / "demo.mp4"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-12)))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument(
        "--checkpoint",
        default=str(REPO / "weights" / "dsrir-xs-p50_all_in_one.safetensors"),
        help="weights to tile (.safetensors or .pth)",
    )
    parser.add_argument("--frame", type=int, default=40, help="which frame of the demo clip")
    parser.add_argument("--tile", type=int, default=128, help="tile side (pixels)")
    args = parser.parse_args(argv)
    model, _ = load_model(args.checkpoint, "cpu")
    capture = cv2.VideoCapture(str(DEMO))
    capture.set(cv2.CAP_PROP_POS_FRAMES, args.frame)
    ok, frame = capture.read()
    if not ok:
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        sys.exit(f"error: --frame {args.frame}: {DEMO} has no such frame (it has {frames}, numbered from 0)")
    clean = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    height, width = clean.shape[:2]
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32)
    x = torch.from_numpy(np.ascontiguousarray(noisy.transpose(2, 0, 1)))[None]

    def restore(patch: torch.Tensor) -> np.ndarray:
        padded, (h, w) = pad_to_multiple(patch.contiguous(), model.config.size_multiple)
        with torch.inference_mode():
            return model.restore(padded)[0, :, :h, :w].numpy()

    whole = restore(x)
    plan = plan_tiles((height, width), (args.tile, args.tile), auto_overlap((args.tile, args.tile)))
    th, tw = plan.tile_hw
    ramps = TileBlender(plan, (3,))
    total, count = np.zeros_like(whole), np.zeros((height, width), np.float32)
    for top, left in plan.boxes():
        out = restore(x[..., top : top + th, left : left + tw])
        ramps.add(top, left, out)
        total[:, top : top + th, left : left + tw] += out
        count[top : top + th, left : left + tw] += 1
    blended = {"ramps": ramps.result(), "average": total / count}
    shared = count > 1
    print(f"{len(plan)} tiles of {tw}x{th}, overlap {plan.overlap}, {width}x{height}; PSNR against the whole image:")
    print(f"{'blend':<8} {'all pixels':>11} {'overlaps':>9}")
    for name, image in blended.items():
        print(f"{name:<8} {psnr(image, whole):>8.2f} dB {psnr(image[:, shared], whole[:, shared]):>6.2f} dB")


if __name__ == "__main__":
    main()
