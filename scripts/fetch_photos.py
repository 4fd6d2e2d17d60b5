"""Build the photo folders the shipped weights are trained and validated on, from Debian packages (offline-friendly).

Only photographs are kept (renders, logos and paintings in these packages are listed out by name), each resized so
its long side is at most ``--long-side`` pixels (deployment resolution, and cheaper to decode per training sample).
A ``manifest.json`` records package, version, source path and sha256 of every file, for the weights' provenance.

    python scripts/fetch_photos.py --output photos     # -> photos/train, photos/val, photos/manifest.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import tempfile
from pathlib import Path

import cv2

from dsrir.cli_help import DefaultsHelpFormatter

# package -> (folder inside the package, photographs kept). Licences from each package's debian/copyright.
SOURCES: dict[str, tuple[str, list[str]]] = {
    "lomiri-wallpapers-16.04": (
        "usr/share/backgrounds",
        [
            "Bridge_by_Sander_Klootwijk.jpg",
            "Dragonfly_by_Bolly.jpg",
            "Picture_0B_by_freespace.jpg",
            "Picture_1A_by_freespace.jpg",
            "Wine_by_Jakkub_Mede.jpg",
            "aitzgorri_by_Aitzol_Berasategi.jpg",
            "free_by_Peter_Nerlich.jpg",
            "friends_by_Aitzol_Berasategi.jpg",
            "greentock_by_Peter_Nerlich.jpg",
            "life_by_Aitzol_Berasategi.jpg",
            "picosdeeuropa_by_Aitzol_Berasategi.jpg",
            "seeding_by_Clements_Engelhardt.jpg",
            "sunset_by_Aitzol_Berasategi.jpg",
        ],
    ),
    "lxqt-themes": (
        "usr/share/lxqt/wallpapers",
        [
            "Butterfly-Kenneth-Wimer.jpg",
            "Valendas.png",
            "after-the-rain.jpg",
            "appleflower.png",
            "beam.png",
            "butterfly.png",
            "cloud.png",
            "drop.png",
            "flowers.png",
            "fog.jpg",
            "this-is-not-windows.jpg",
        ],
    ),
    "plasma-workspace-wallpapers": (
        "usr/share/wallpapers",
        [
            f"{name}/contents/images/2560x1600.jpg"
            for name in (
                "BytheWater",
                "ColdRipple",
                "ColorfulCups",
                "DarkestHour",
                "EveningGlow",
                "FallenLeaf",
                "Grey",
                "Kite",
                "OneStandsOut",
                "Path",
                "summer_1am",
            )
        ],
    ),
    "opencv-doc": (
        "usr/share/doc/opencv-doc/examples",
        [
            "data/HappyFish.jpg",
            "data/aloeL.jpg",
            "data/baboon.jpg",
            "data/fruits.jpg",
            "data/home.jpg",
            "data/leuvenA.jpg",
            "data/messi5.jpg",
            "data/orange.jpg",
            "data/squirrel_cls.jpg",
            "data/stuff.jpg",
            "data/basketball1.png",
            "data/graf1.png",
            "alphamat/input_images/plant.jpg",
            "data/rubberwhale2.png",
        ],
    ),
}

# Held out for validation (never trained on): one or two per package, different subjects.
VALIDATION = {
    "seeding_by_Clements_Engelhardt.jpg",
    "flowers.png",
    "Kite/contents/images/2560x1600.jpg",
    "data/fruits.jpg",
    "data/basketball1.png",
    "data/rubberwhale2.png",
}


def _unpack(package: str, workdir: Path) -> tuple[Path, str]:
    """``apt-get download`` + ``dpkg-deb -x``: no root, nothing installed."""
    subprocess.run(["apt-get", "download", package], cwd=workdir, check=True, capture_output=True)
    deb = next(workdir.glob(f"{package}_*.deb"))
    version = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
    ).stdout.strip()
    root = workdir / package
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root, version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("photos"), help="folder for train/, val/, manifest.json")
    parser.add_argument("--long-side", type=int, default=1280, help="resize so the long side is at most this")
    args = parser.parse_args()
    manifest = []
    with tempfile.TemporaryDirectory() as tmp:
        for package, (folder, names) in SOURCES.items():
            root, version = _unpack(package, Path(tmp))
            for name in names:
                source = root / folder / name
                image = cv2.imread(str(source), cv2.IMREAD_COLOR)
                if image is None:
                    raise SystemExit(f"{package}: cannot read {folder}/{name}")
                scale = min(1.0, args.long_side / max(image.shape[:2]))
                if scale < 1.0:
                    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                split = "val" if name in VALIDATION else "train"
                # Plasma wallpapers are named by their folder (.../NAME/contents/images/2560x1600.jpg).
                stem = Path(name).parts[0] if "/contents/" in name else Path(name).stem
                target = args.output / split / f"{stem}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(target), image)
                manifest.append(
                    {
                        "file": f"{split}/{target.name}",
                        "package": package,
                        "version": version,
                        "source": f"/{folder}/{name}",
                        "size": [image.shape[1], image.shape[0]],
                        "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
                    }
                )
    (args.output / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    counts = {split: sum(entry["file"].startswith(split) for entry in manifest) for split in ("train", "val")}
    print(f"{counts['train']} training and {counts['val']} validation photos in {args.output}")


if __name__ == "__main__":
    main()
