"""``python -m dsrir.restore IN... -o OUT``: restore image files or folders with a checkpoint.

Outputs keep the input file names (and bit depth / alpha / grayscale layout). Each output is
written atomically, so an interrupted run never leaves a half-written image, and a failed write (a full
disk) is one error line naming the file. The output folder may not be, or lie inside, an input folder,
nor hold an input under an output's name: that is refused before any work.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from dsrir.cli import command, positive_int
from dsrir.cli_help import DefaultsHelpFormatter
from dsrir.errors import DSRIRError, error_line
from dsrir.imageio import is_image_file, list_images, read_image_raw, write_image
from dsrir.memory_budget import DEFAULT_MAX_MEMORY, size_argument
from dsrir.paths import refuse_overwriting_inputs
from dsrir.tiling import DEFAULT_OVERLAP

if TYPE_CHECKING:
    from dsrir.model.restorer import Restorer


def collect_inputs(inputs: Sequence[str]) -> list[Path]:
    """Expand folders into their images; every named file must be an image."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise DSRIRError(f"{path}: folder contains no images")
            files += found
        elif path.is_file():
            if not is_image_file(path):
                raise DSRIRError(f"{path}: not an image file (expected one of the usual image extensions)")
            files.append(path)
        else:
            raise DSRIRError(f"{path}: no such file or folder")
    names = [f.name for f in files]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DSRIRError(f"several inputs are named {duplicates[0]}: outputs would overwrite each other")
    return files


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m dsrir.restore",
        description="Restore noisy, rainy or hazy images with a DSRIR checkpoint (any size, gray/RGB/RGBA).",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="IN", help="image files or folders of images")
    parser.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="output folder (same file names); never an input folder"
    )
    parser.add_argument("--checkpoint", required=True, help="official .pth or project .safetensors weights")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--tile", type=positive_int, default=None, help="restore in overlapping tiles of this many pixels"
    )
    parser.add_argument(
        "--tile-overlap",
        type=int,
        default=DEFAULT_OVERLAP,
        help="pixels shared by neighbouring tiles (0 <= overlap < tile)",
    )
    parser.add_argument(
        "--max-memory",
        type=size_argument,
        default=DEFAULT_MAX_MEMORY,
        help="peak memory of the process (e.g. 3GB, 512MB): images whose activations would not fit are restored in "
        "tiles sized to it, unless --tile is given",
    )
    parser.add_argument(
        "--strict", action="store_true", help="stop at the first unreadable input instead of skipping and naming it"
    )
    return parser.parse_args(argv)


@command(
    interrupted="interrupted; the images written so far are complete, the one in progress was not written",
    memory_hint="give a smaller budget (--max-memory 2GB) or smaller tiles (--tile 512)",
)
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # here, not at the top: on the lean runtime install, a one-line pip hint instead of a traceback
    from dsrir.checkpoint import load_model, pick_device
    from dsrir.model.restorer import Restorer, check_tiling

    device = pick_device(args.device)
    check_tiling(args.tile, args.tile_overlap)
    files = collect_inputs(args.inputs)
    out_dir = Path(args.output)
    refuse_overwriting_inputs(
        [("-o", out_dir), *(("-o", out_dir / path.name) for path in files)],
        [*args.inputs, *files, args.checkpoint],
    )
    model, weights = load_model(args.checkpoint, device)
    restorer = Restorer(model, device, tile=args.tile, tile_overlap=args.tile_overlap, max_memory=args.max_memory)
    started = time.perf_counter()
    restored, skipped = restore_all(files, out_dir, restorer, args.strict)
    seconds = time.perf_counter() - started
    if skipped and not restored:
        print(f"error: no image could be restored ({len(skipped)} unreadable)", file=sys.stderr)
        return 2
    note = f"; skipped {len(skipped)} unreadable: {', '.join(p.name for p in skipped)}" if skipped else ""
    print(
        f"restored {restored} image(s) with {weights.preset or 'custom'} on {device} in {seconds:.1f} s -> {out_dir}"
        + note
    )
    return 1 if skipped else 0


def restore_all(files: list[Path], out_dir: Path, restorer: Restorer, strict: bool) -> tuple[int, list[Path]]:
    """Restore every readable file; an unreadable one is named on stderr and skipped (``strict``: the error stops
    the run). A write failure always stops it: it is the disk, not the input."""
    restored, skipped = 0, []
    for path in tqdm(files, desc="restore", unit="img"):
        try:
            image = read_image_raw(path)
        except DSRIRError as exc:
            if strict:
                raise
            tqdm.write(f"skipped: {error_line(exc)}", file=sys.stderr)
            skipped.append(path)
            continue
        write_image(out_dir / path.name, restorer(image))
        restored += 1
    return restored, skipped


if __name__ == "__main__":
    sys.exit(main())
