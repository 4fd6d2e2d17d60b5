"""Write a training CSV (``target,degraded`` rows) from the standard dataset layouts under a train dir.

Reproduces the paper's mixture: BSD400 + WED clean images (noise added on the fly), Rain100L train pairs repeated
25 times, and one random hazy version of 5,000 random RESIDE OTS clean images. Rows keep the official order:
noise, then rain, then haze.

    python -m dsrir.data.make_csv --train-dir /data/train --mode all_in_one --output my_all_in_one.csv

The default ``--output`` is ``datasets/train/train_{mode}.csv``; in a checkout that is one of the shipped official
CSVs (the paper's exact sampling, which ``python -m train`` reads by default), so replacing it needs ``--force``.
The output may not lie inside a source folder it reads.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from dsrir.atomic import write_text_atomic
from dsrir.cli import command, positive_int
from dsrir.cli_help import DefaultsHelpFormatter
from dsrir.errors import DSRIRError
from dsrir.imageio import is_image_file, list_images
from dsrir.modes import DEFAULT_MODE, MODE_TASKS
from dsrir.paths import refuse_overwriting_inputs, resolved

MODES = tuple(MODE_TASKS)
SHIPPED_NAMES = frozenset(f"train_{mode}.csv" for mode in MODES)
# What each source needs under the train dir, as reported when it is missing.
SOURCE_FOLDERS = {
    "BSD400": ("BSD400",),
    "WED": ("WED",),
    "Rain100L": ("Rain100L/train/gt", "Rain100L/train/rainy"),
    "Reside": ("Reside/train/gt", "Reside/train/hazy"),
}
# The official CSVs shipped in the checkout (datasets/train/train_{mode}.csv); replacing one needs --force.
SHIPPED_CSV_DIR = Path(__file__).resolve().parents[2] / "datasets" / "train"
MODE_SOURCES = {
    "all_in_one": ("BSD400", "WED", "Rain100L", "Reside"),
    "noise": ("BSD400", "WED"),
    "rain": ("Rain100L",),
    "haze": ("Reside",),
}


def shipped_csv(path: Path) -> bool:
    """Whether ``path`` (any spelling, symlinks followed) is one of the shipped official CSVs."""
    real = resolved(path)
    return real.is_file() and real.parent == resolved(SHIPPED_CSV_DIR) and real.name in SHIPPED_NAMES


def check_output(output: Path, root: Path, mode: str, force: bool) -> bool:
    """Refuse, before any work, an output inside a source folder or (without ``force``) over a shipped CSV.
    Returns whether a shipped CSV is being replaced."""
    sources = [root / folder for source in MODE_SOURCES[mode] for folder in SOURCE_FOLDERS[source]]
    refuse_overwriting_inputs([("--output", output)], sources)
    if not shipped_csv(output):
        return False
    if not force:
        rows = sum(1 for _ in resolved(output).open(encoding="utf-8", errors="replace"))
        raise DSRIRError(
            f"--output {output} is the shipped official CSV ({rows} rows, the paper's sampling, read by python -m "
            "train by default): write your own with --output PATH (then train with --train-csv PATH), or pass "
            "--force to replace it"
        )
    return True


def _relative(path: Path, root: Path) -> str:
    relative = path.relative_to(root).as_posix()
    if "," in relative or "|" in relative:
        raise DSRIRError(f"{path}: a comma or '|' in the path cannot be written to a training CSV; rename it")
    return relative


def clean_rows(root: Path, source: str) -> tuple[list[str], str]:
    """``X,X`` for every image under ``root/source`` (recursively: WED ships as ``WED/gt/*.bmp``)."""
    images = sorted(path for path in (root / source).rglob("*") if path.is_file() and is_image_file(path))
    if not images:
        raise DSRIRError(f"{root / source}: no images found; expected clean images for noise training")
    rows = [f"{_relative(path, root)},{_relative(path, root)}" for path in images]
    return rows, f"{source} {len(rows)}"


def rain_rows(root: Path, repeat: int) -> tuple[list[str], str]:
    """``gt/norain-N.png,rainy/rain-N.png`` for every Rain100L train pair, the whole list repeated ``repeat`` times."""
    gt_dir, rainy_dir = (root / folder for folder in SOURCE_FOLDERS["Rain100L"])
    targets = list_images(gt_dir)
    if not targets:
        raise DSRIRError(f"{gt_dir}: no images found; expected norain-N.png files")
    pairs = []
    for target in targets:
        rainy_name = "rain-" + target.name[len("norain-") :] if target.name.startswith("norain-") else target.name
        rainy = rainy_dir / rainy_name
        if not rainy.is_file():
            raise DSRIRError(f"{rainy}: rainy image for {target} not found; expected Rain100L/train/rainy/rain-N.png")
        pairs.append(f"{_relative(target, root)},{_relative(rainy, root)}")
    return pairs * repeat, f"Rain100L {len(pairs)} pairs x{repeat}"


def haze_rows(root: Path, count: int, seed: int) -> tuple[list[str], str]:
    """One random hazy version (``hazy/ID_A_BETA.jpg``) of ``count`` random clean images (``gt/ID.jpg``)."""
    gt_dir, hazy_dir = (root / folder for folder in SOURCE_FOLDERS["Reside"])
    versions: dict[str, list[Path]] = defaultdict(list)
    for hazy in list_images(hazy_dir):
        versions[hazy.stem.split("_", 1)[0]].append(hazy)
    candidates = [target for target in list_images(gt_dir) if target.stem in versions]
    if not candidates:
        raise DSRIRError(f"{gt_dir}: no clean image with a hazy version in {hazy_dir} (expected ID.jpg + ID_A_B.jpg)")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(candidates), size=min(count, len(candidates)), replace=False))
    rows = []
    for index in chosen:
        target = candidates[index]
        options = versions[target.stem]
        rows.append(f"{_relative(target, root)},{_relative(options[int(rng.integers(len(options)))], root)}")
    summary = f"Reside {len(rows)}"
    if len(rows) < count:
        summary += f" (only {len(candidates)} clean images with hazy versions; --ots-count {count} asked, using all)"
    return rows, summary


def build_rows(root: Path, mode: str, ots_count: int, rain_repeat: int, seed: int) -> tuple[list[str], list[str]]:
    """All rows for ``mode`` in the official order, and one summary phrase per source."""
    if not root.is_dir():
        raise DSRIRError(f"{root}: train dir not found")
    sources = MODE_SOURCES[mode]
    missing = [f"{folder}/" for source in sources for folder in SOURCE_FOLDERS[source] if not (root / folder).is_dir()]
    if missing:
        raise DSRIRError(f"{root}: missing source folder(s) for mode {mode}: {', '.join(missing)}")
    builders: dict[str, Callable[[], tuple[list[str], str]]] = {
        "BSD400": lambda: clean_rows(root, "BSD400"),
        "WED": lambda: clean_rows(root, "WED"),
        "Rain100L": lambda: rain_rows(root, rain_repeat),
        "Reside": lambda: haze_rows(root, ots_count, seed),
    }
    rows: list[str] = []
    summaries: list[str] = []
    for source in sources:
        source_rows, summary = builders[source]()
        rows += source_rows
        summaries.append(summary)
    return rows, summaries


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dsrir.data.make_csv",
        description="Write a training CSV (target,degraded rows, paths relative to the train dir).",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument(
        "--train-dir",
        required=True,
        type=Path,
        metavar="ROOT",
        help="folder holding BSD400/, WED/, Rain100L/train/{gt,rainy}/, Reside/train/{gt,hazy}/",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default=DEFAULT_MODE,
        help="all_in_one = noise + rain + haze; noise = BSD400 + WED; rain = Rain100L; haze = Reside",
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="PATH",
        help="CSV to write (default: datasets/train/train_{mode}.csv, which in a checkout is the shipped CSV: "
        "replacing that needs --force)",
    )
    parser.add_argument(
        "--force", action="store_true", help="allow replacing a shipped datasets/train/train_{mode}.csv"
    )
    parser.add_argument(
        "--ots-count",
        type=positive_int,
        default=5000,
        metavar="N",
        help="random RESIDE OTS clean images, one random hazy version each",
    )
    parser.add_argument(
        "--rain-repeat",
        type=positive_int,
        default=25,
        metavar="N",
        help="times the Rain100L pair list is repeated",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the OTS sampling")
    return parser


@command()
def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    output = args.output or Path(f"datasets/train/train_{args.mode}.csv")
    replacing = check_output(output, args.train_dir, args.mode, args.force)
    rows, summaries = build_rows(args.train_dir, args.mode, args.ots_count, args.rain_repeat, args.seed)
    write_text_atomic(output, "".join(f"{row}\n" for row in rows))
    print(f"wrote {len(rows)} rows to {output}: {', '.join(summaries)}")
    if replacing:
        print(f"replaced the shipped {output} (--force); git checkout -- {output} brings the official one back")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
