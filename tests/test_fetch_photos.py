"""``scripts/fetch_photos.py`` without the network: the reviewed photo lists, the validation split, output names,
the Qt resource bundle reader and the GCompris README credits."""

from __future__ import annotations

import struct
import zlib
from types import ModuleType

import pytest

from tests.benchmarks.scripts import load_script

# DESIGN.md §7: kept for held-out evaluation, never trained on.
HELD_OUT = {
    "python3-skimage",
    "python-skimage-doc",
    "python3-sporco",
    "python3-scipy",
    "python3-imgaug",
    "python3-matplotlib",
    "python-matplotlib-data",
    "palapeli-data",
    "mate-backgrounds",
    "lomiri-wallpapers-20.04",
}


@pytest.fixture(scope="module")
def fetch() -> ModuleType:
    """The script as a module (scripts/ is not a package)."""
    return load_script("fetch_photos", "scripts")


def rcc_bundle(files: dict[str, bytes], compressed: set[str]) -> bytes:
    """A format-3 ``rcc --binary`` bundle: nodes breadth first (a directory's children are consecutive), the
    size-prefixed data (``qCompress``ed for the paths in ``compressed``) and the UTF-16 names."""
    tree: dict = {}
    for path in files:
        *folders, leaf = path.split("/")
        level = tree
        for folder in folders:
            level = level.setdefault(folder, {})
        level[leaf] = path
    nodes: list[tuple[str, object]] = [("", tree)]
    records, data, names = [], b"", b""
    index = 0
    while index < len(nodes):
        name, item = nodes[index]
        name_offset = len(names)
        encoded = name.encode("utf-16-be")
        names += struct.pack(">HI", len(name), 0) + encoded
        if isinstance(item, dict):
            records.append(struct.pack(">IHII", name_offset, 2, len(item), len(nodes)) + bytes(8))
            nodes += sorted(item.items())
        else:
            content = files[str(item)]
            flags = 0
            if item in compressed:
                content, flags = struct.pack(">I", len(content)) + zlib.compress(content), 1
            records.append(struct.pack(">IHHHI", name_offset, flags, 0, 0, len(data)) + bytes(8))
            data += struct.pack(">I", len(content)) + content
        index += 1
    header_size = 24
    tree_bytes = b"".join(records)
    data_offset = header_size + len(tree_bytes)
    names_offset = data_offset + len(data)
    header = b"qres" + struct.pack(">5I", 3, header_size, data_offset, names_offset, 0)
    return header + tree_bytes + data + names


def test_rcc_reader_lists_nested_files_and_inflates_compressed_ones(fetch: ModuleType) -> None:
    files = {
        "gcompris/src/activities/a/resource/README": b"Files: x.webp\n",
        "gcompris/src/activities/a/resource/animals/x.webp": b"\x00\x01photo" * 50,
        "gcompris/src/activities/b/y.svg": b"<svg/>",
    }
    bundle = rcc_bundle(files, compressed={"gcompris/src/activities/a/resource/animals/x.webp"})
    assert fetch.rcc_files(bundle) == files
    with pytest.raises(ValueError, match="not a Qt resource bundle"):
        fetch.rcc_files(b"PK\x03\x04" + bundle[4:])


def test_readme_credits_and_the_nearest_readme(fetch: ModuleType) -> None:
    readme = (
        "Copyright: Timothee Giet, 2020\nLicense: CC-BY-SA 4.0\nFiles:\nkey.svg\negypt/egypt.svg\n\n"
        "Copyright: Gary Todd\nLicense: CC0-1.0\nSource: https://commons.wikimedia.org/wiki/File:Giza.jpg\n"
        "Files:\negypt/greatPyramidOfGiza.webp\n\n"
        "Copyright: Sergio Cambelo\nFiles: giraffe.webp\nSource: https://example.org/Giraffe.JPG\n"
        "License: Public Domain\nComments: cropping,\n sharpening\n"
    )
    credits = fetch.readme_credits(readme)
    assert credits["egypt/egypt.svg"]["License"] == "CC-BY-SA 4.0"
    assert credits["egypt/greatPyramidOfGiza.webp"] == {
        "Copyright": "Gary Todd",
        "License": "CC0-1.0",
        "Source": "https://commons.wikimedia.org/wiki/File:Giza.jpg",
    }
    assert credits["giraffe.webp"]["Comments"] == "cropping, sharpening"
    assert fetch.spdx_licence(credits["giraffe.webp"]["License"]) == "public-domain"
    assert [fetch.spdx_licence(t) for t in ("CC-BY-SA 4.0", "CC-BY 2.0", "CC0-1.0")] == [
        "CC-BY-SA-4.0",
        "CC-BY-2.0",
        "CC0-1.0",
    ]
    files = {"r/README": readme.encode(), "r/egypt/README": b"Copyright: other\nLicense: GPL-3\nFiles: x.webp\n"}
    assert fetch._credit(files, "r/egypt/greatPyramidOfGiza.webp")["Copyright"] == "Gary Todd"
    assert fetch._credit(files, "r/egypt/x.webp")["License"] == "GPL-3"
    assert fetch._credit(files, "r/egypt/unlisted.webp") is None


def test_reviewed_sources_never_include_held_out_packages(fetch: ModuleType) -> None:
    assert not HELD_OUT & set(fetch.SOURCES)
    for package, (folder, photos) in [*fetch.SOURCES.items(), *fetch.EVALUATION.items()]:
        assert folder and not folder.startswith("/") and photos, package
        assert all(licence.strip() for licence in photos.values()), package


def test_the_evaluation_set_comes_only_from_held_out_packages_and_goes_to_eval(fetch: ModuleType) -> None:
    """photos/eval is what no weights trained on: only DESIGN.md §7's held-out packages, never a training one."""
    assert set(fetch.EVALUATION) <= HELD_OUT
    assert sum(len(source.photos) for source in fetch.EVALUATION.values()) == 22
    kept = [(package, name) for package, source in fetch.EVALUATION.items() for name in source.photos]
    assert {fetch.split_of(package, name) for package, name in kept} == {"eval"}
    assert fetch.split_of("opencv-doc", "data/fruits.jpg") == "val"
    assert fetch.split_of("opencv-doc", "data/butterfly.jpg") == "train"
    taken: set[str] = set()
    for package, (_, photos) in [*fetch.SOURCES.items(), *fetch.EVALUATION.items()]:
        for name in photos:
            taken.add(fetch.output_stem(package, name, taken))  # raises on a name no prefix can make unique


def test_validation_is_the_v3_set_and_every_output_name_is_unique(fetch: ModuleType) -> None:
    """Adding photos must not move v3's validation photos (nor change their names): the comparison with v3."""
    assert fetch.VALIDATION == {
        ("lomiri-wallpapers-16.04", "seeding_by_Clements_Engelhardt.jpg"),
        ("lxqt-themes", "flowers.png"),
        ("plasma-workspace-wallpapers", "Kite/contents/images/2560x1600.jpg"),
        ("opencv-doc", "data/fruits.jpg"),
        ("opencv-doc", "data/basketball1.png"),
        ("opencv-doc", "data/rubberwhale2.png"),
    }
    assert all(name in fetch.SOURCES[package].photos for package, name in fetch.VALIDATION)
    taken: set[str] = set()
    stems = {}
    for package, (_, photos) in fetch.SOURCES.items():
        for name in photos:
            stems[package, name] = fetch.output_stem(package, name, taken)
            taken.add(stems[package, name])
    assert len(taken) == len(stems)
    assert sorted(stem for key, stem in stems.items() if key in fetch.VALIDATION) == [
        "Kite",
        "basketball1",
        "flowers",
        "fruits",
        "rubberwhale2",
        "seeding_by_Clements_Engelhardt",
    ]
    assert stems["opencv-doc", "data/butterfly.jpg"] == "opencv-doc-butterfly"  # lxqt-themes' butterfly came first
    with pytest.raises(SystemExit, match="overwrite"):
        fetch.output_stem("opencv-doc", "data/butterfly.jpg", taken)
