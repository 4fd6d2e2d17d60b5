"""dsrir.data: CSV pairs, synthetic degradations, crops/augmentation, training datasets, eval sets, make_csv."""

from __future__ import annotations

import pickle
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from dsrir.data.degradations import FAMILIES, parse_degradations
from dsrir.data.degrade import AIRLIGHTS, BETAS, add_gaussian_noise, add_haze, add_rain, degrade, synthetic_depth
from dsrir.data.eval_sets import (
    center_crop_to_multiple,
    denoise_set,
    pair_validation_set,
    rain100l_set,
    sots_set,
    synthetic_sets,
    synthetic_validation_set,
)
from dsrir.data.make_csv import main as make_csv_main
from dsrir.data.pairs import TASKS, Pair, read_pairs_csv, split_holdout
from dsrir.data.train_set import PairedTrainSet, SyntheticTrainSet
from dsrir.data.transforms import augment_image, augment_pair, random_crop_pair, to_tensor
from dsrir.errors import DSRIRError
from dsrir.imageio import list_images, read_image, write_image
from tests.conftest import natural_like_image
from tests.paths import FIXTURES

V3_SET = parse_degradations(["v3"])

OFFICIAL_ROWS = FIXTURES / "data_official_rows.csv"  # copied from the official CSVs


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def official_paths() -> list[str]:
    return sorted({p for line in OFFICIAL_ROWS.read_text().splitlines() for p in line.split(",")})


def make_images(root: Path, relative: list[str], height: int = 40, width: int = 48) -> None:
    for i, rel in enumerate(relative):
        write_image(root / rel, natural_like_image(height, width, seed=i))


@pytest.fixture()
def official_tree(tmp_path: Path) -> tuple[Path, Path]:
    """The fixture rows' images (PNG data under their official names) and a copy of the CSV."""
    train_dir = tmp_path / "train"
    make_images(train_dir, official_paths())
    csv = tmp_path / "train_all_in_one.csv"
    shutil.copy(OFFICIAL_ROWS, csv)
    return train_dir, csv


# ---------------------------------------------------------------- pairs


def test_official_rows_parse_and_first_row_is_kept(official_tree: tuple[Path, Path]) -> None:
    train_dir, csv = official_tree
    pairs = read_pairs_csv(csv, train_dir)
    assert len(pairs) == 7
    assert pairs[0] == Pair(train_dir / "BSD400/70090.jpg", None, "noise")
    assert pairs[2] == Pair(train_dir / "WED/gt/00735.bmp", None, "noise")
    assert pairs[3] == Pair(
        train_dir / "Rain100L/train/gt/norain-61.png", train_dir / "Rain100L/train/rainy/rain-61.png", "rain"
    )
    assert pairs[5] == Pair(
        train_dir / "Reside/train/gt/8365.jpg", train_dir / "Reside/train/hazy/8365_0.95_0.16.jpg", "haze"
    )
    assert [p.task for p in pairs] == ["noise"] * 3 + ["rain"] * 2 + ["haze"] * 2


def test_pipe_separator_header_and_blank_lines(official_tree: tuple[Path, Path], tmp_path: Path) -> None:
    train_dir, csv = official_tree
    lines = csv.read_text().splitlines()
    piped = tmp_path / "piped.csv"
    piped.write_text("target | degraded\n\n" + "\n".join(f"  {line.replace(',', ' | ')}  " for line in lines) + "\n\n")
    assert read_pairs_csv(piped, train_dir) == read_pairs_csv(csv, train_dir)
    with_header = tmp_path / "header.csv"
    with_header.write_text("target,degraded\n" + "\n".join(lines))
    assert len(read_pairs_csv(with_header, train_dir)) == 7


def test_csv_errors_name_file_and_line(official_tree: tuple[Path, Path], tmp_path: Path) -> None:
    train_dir, _ = official_tree
    with pytest.raises(DSRIRError, match="nothere.csv"):
        read_pairs_csv(tmp_path / "nothere.csv", train_dir)
    bad = tmp_path / "bad.csv"
    bad.write_text("BSD400/70090.jpg,BSD400/70090.jpg\nBSD400/a.jpg,BSD400/a.jpg,extra\n")
    with pytest.raises(DSRIRError, match=f"{bad}:2: expected 'target,degraded'"):
        read_pairs_csv(bad, train_dir)
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("\nfoo/a.png,foo/b.png\n")
    with pytest.raises(DSRIRError, match=f"{unknown}:2: cannot tell the task"):
        read_pairs_csv(unknown, train_dir, check_files=False)
    empty = tmp_path / "empty.csv"
    empty.write_text("\n  \n")
    with pytest.raises(DSRIRError, match="no pairs"):
        read_pairs_csv(empty, train_dir)


def test_missing_image_names_csv_line_and_image(official_tree: tuple[Path, Path]) -> None:
    train_dir, csv = official_tree
    (train_dir / "Rain100L/train/rainy/rain-165.png").unlink()
    (train_dir / "Reside/train/gt/4518.jpg").unlink()
    with pytest.raises(DSRIRError) as info:
        read_pairs_csv(csv, train_dir)
    message = str(info.value)
    assert message.startswith(f"{csv}:5: image not found: {train_dir / 'Rain100L/train/rainy/rain-165.png'}")
    assert "2 referenced image(s) missing" in message and "\n" not in message
    assert len(read_pairs_csv(csv, train_dir, check_files=False)) == 7


def test_split_holdout_is_deterministic_and_keeps_duplicates_together() -> None:
    items = [f"img{i}" for i in range(20)] + ["rain"] * 5
    train, val = split_holdout(items, 0.2, seed=3)
    assert (train, val) == split_holdout(items, 0.2, seed=3)
    assert sorted(train + val) == sorted(items) and not set(train) & set(val)
    assert len(set(val)) == round(21 * 0.2)
    assert split_holdout(items, 0.2, seed=4) != (train, val)
    assert split_holdout(items, 0.0, seed=0) == (items, [])
    assert [len(part) for part in split_holdout([1, 2], 0.01, seed=0)] == [1, 1]
    with pytest.raises(DSRIRError):
        split_holdout(items, 1.0, seed=0)


# ---------------------------------------------------------------- degradations


def test_gaussian_noise_sigma_and_rounding() -> None:
    grey = np.full((128, 128, 3), 128, np.uint8)
    assert np.array_equal(add_gaussian_noise(grey, 0, np.random.default_rng(0)), grey)
    noisy = add_gaussian_noise(grey, 20, np.random.default_rng(0)).astype(np.float64)
    assert noisy.std() == pytest.approx(20, abs=0.5)
    assert noisy.mean() == pytest.approx(128, abs=0.2)  # rounded, not truncated (which would give 127.5)


def test_rain_is_visible_light_and_vertical() -> None:
    clean = natural_like_image(128, 128, seed=1)
    scores = [psnr(add_rain(clean, np.random.default_rng(s)), clean) for s in range(8)]
    assert 24 < np.median(scores) < 33 and min(scores) > 20
    rainy = add_rain(clean, np.random.default_rng(0), angle=90, length=40, reference_height=1080)
    diff = rainy.astype(np.float64) - clean
    assert diff.min() >= 0 and 0.005 < np.mean(diff.max(axis=2) > 8) < 0.3  # additive, sparse
    streaks = diff.mean(axis=2)
    vertical = np.mean(streaks[1:] * streaks[:-1])
    horizontal = np.mean(streaks[:, 1:] * streaks[:, :-1])
    assert vertical > 2 * horizontal


def test_haze_lifts_dark_pixels_and_lowers_contrast() -> None:
    clean = natural_like_image(96, 96, seed=2)
    clean[40:60, 30:70] = 20
    depth = synthetic_depth(clean)
    assert depth.shape == (96, 96) and depth.dtype == np.float32
    assert 0 <= depth.min() and depth.max() <= 1 and depth[:10].mean() > depth[-10:].mean() + 0.3
    light = add_haze(clean, np.random.default_rng(0), airlight=0.9, beta=0.04)
    heavy = add_haze(clean, np.random.default_rng(0), airlight=0.9, beta=0.2)
    assert 8 < psnr(heavy, clean) < psnr(light, clean) < 30
    dark = clean.max(axis=2) <= 20
    assert light[dark].mean() > clean[dark].mean() + 30 and heavy[dark].mean() > light[dark].mean() + 60
    assert heavy.std() < light.std() < clean.std()
    assert heavy[:10].mean() > heavy[-10:].mean()  # far (top) is hazier


def test_degrade_is_deterministic_with_training_ranges() -> None:
    image = natural_like_image(64, 64, seed=3)
    for task in TASKS:
        first, params = degrade(image, task, np.random.default_rng(7))
        again, params_again = degrade(image, task, np.random.default_rng(7))
        assert np.array_equal(first, again) and params == params_again
        assert first.dtype == np.uint8 and first.shape == image.shape
        assert not np.array_equal(first, degrade(image, task, np.random.default_rng(8))[0])
    sigmas = {degrade(image, "noise", np.random.default_rng(s))[1]["sigma"] for s in range(300)}
    assert min(sigmas) == 0 and max(sigmas) == 55 and all(isinstance(s, int) for s in sigmas)
    _, haze = degrade(image, "haze", np.random.default_rng(1))
    assert haze["airlight"] in AIRLIGHTS and haze["beta"] in BETAS
    _, rain = degrade(image, "rain", np.random.default_rng(1))
    assert 80 <= rain["angle"] <= 100 and 20 <= rain["length"] <= 60
    with pytest.raises(ValueError):
        degrade(image, "snow", np.random.default_rng(0))


def test_degrading_a_patch_costs_a_patch_not_a_photo() -> None:
    """A 128 patch of a 1600-high photo (streaks sized for the photo) must cost a fraction of degrading the photo
    itself: a ratio measured side by side, so a loaded machine slows both alike."""
    crop, photo = natural_like_image(128, 128, seed=4), natural_like_image(1024, 1024, seed=4)

    def seconds(image: np.ndarray, task: str) -> float:
        rng = np.random.default_rng(0)
        degrade(image, task, rng, reference_height=1600)  # first call: set-up not timed
        start = time.perf_counter()
        for _ in range(3):
            degrade(image, task, rng, reference_height=1600)
        return time.perf_counter() - start

    for task in TASKS:
        assert seconds(crop, task) < 0.25 * seconds(photo, task), task


# ---------------------------------------------------------------- transforms


def test_random_crop_pair_same_window_and_reflect_padding() -> None:
    image = natural_like_image(40, 50, seed=5)
    target, degraded = random_crop_pair(image, 255 - image, 16, np.random.default_rng(0))
    assert target.shape == (16, 16, 3) and np.array_equal(degraded, 255 - target)
    tops = {random_crop_pair(image, image, 16, np.random.default_rng(s))[0].tobytes() for s in range(10)}
    assert len(tops) > 5
    small = natural_like_image(20, 30, seed=6)
    padded, _ = random_crop_pair(small, small, 48, np.random.default_rng(0))
    assert padded.shape == (48, 48, 3)
    assert np.array_equal(padded[14:34, 9:39], small)  # centred
    assert np.array_equal(padded[13], padded[15]) and np.array_equal(padded[:, 8], padded[:, 10])  # reflect-101


def test_augment_variants_are_the_dihedral_group() -> None:
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    variants = [augment_pair(image, 255 - image, v) for v in range(8)]
    assert np.array_equal(variants[0][0], image)
    assert len({(t.shape, t.tobytes()) for t, _ in variants}) == 8
    for v, (target, degraded) in enumerate(variants):
        assert target.flags.c_contiguous and np.array_equal(degraded, 255 - target)
        inverse = (4 - v) % 4 if v < 4 else v
        assert np.array_equal(augment_image(target, inverse), image)


def test_to_tensor() -> None:
    image = np.zeros((4, 6, 3), np.uint8)
    image[1, 2] = (255, 0, 51)
    tensor = to_tensor(image)
    assert tensor.dtype == torch.float32 and tensor.shape == (3, 4, 6)
    assert tensor[:, 1, 2].tolist() == pytest.approx([1.0, 0.0, 0.2])


# ---------------------------------------------------------------- training datasets


def assert_same_sample(a: dict, b: dict) -> None:
    assert a["task"] == b["task"]
    assert torch.equal(a["target"], b["target"]) and torch.equal(a["degraded"], b["degraded"])


def test_paired_train_set(official_tree: tuple[Path, Path]) -> None:
    train_dir, csv = official_tree
    rainy = train_dir / "Rain100L/train/rainy/rain-61.png"
    write_image(rainy, 255 - read_image(train_dir / "Rain100L/train/gt/norain-61.png"))
    write_image(train_dir / "BSD400/70090.jpg", natural_like_image(20, 24, seed=9))  # smaller than the patch
    dataset = PairedTrainSet(read_pairs_csv(csv, train_dir), patch_size=32, seed=5)
    assert len(dataset) == 7
    for index, task in enumerate(["noise"] * 3 + ["rain"] * 2 + ["haze"] * 2):
        sample = dataset[index]
        assert sample["task"] == task
        for key in ("target", "degraded"):
            assert sample[key].shape == (3, 32, 32) and sample[key].dtype == torch.float32
            assert 0 <= sample[key].min() and sample[key].max() <= 1
    rain = dataset[3]
    assert torch.allclose(rain["degraded"], 1 - rain["target"], atol=1e-6)  # same window and variant
    wrapped = dataset[3 + 7]  # epochs longer than the dataset: same pair, fresh crop
    assert wrapped["task"] == "rain" and torch.allclose(wrapped["degraded"], 1 - wrapped["target"], atol=1e-6)
    assert not torch.equal(wrapped["target"], rain["target"])
    assert_same_sample(dataset[-1], dataset[6])
    assert len(list(dataset)) == 7
    noisy = [dataset[0]]
    for epoch in (1, 2):
        dataset.set_epoch(epoch)
        noisy.append(dataset[0])
    assert any((s["degraded"] - s["target"]).abs().max() > 0.02 for s in noisy)
    assert not torch.equal(noisy[0]["degraded"], noisy[1]["degraded"])
    twin = pickle.loads(pickle.dumps(PairedTrainSet(dataset.pairs, patch_size=32, seed=5)))
    twin.set_epoch(2)
    for index in (6, 3, 0):  # order does not matter
        assert_same_sample(twin[index], dataset[index])
    dataset.set_patch_size(16)
    assert dataset.patch_size == 16 and dataset[5]["degraded"].shape == (3, 16, 16)


def test_paired_train_set_size_mismatch_and_corrupt_image(official_tree: tuple[Path, Path]) -> None:
    train_dir, csv = official_tree
    target, rainy = train_dir / "Rain100L/train/gt/norain-61.png", train_dir / "Rain100L/train/rainy/rain-61.png"
    write_image(rainy, natural_like_image(30, 48, seed=0))
    pairs = read_pairs_csv(csv, train_dir)
    with pytest.raises(DSRIRError) as info:
        PairedTrainSet(pairs, patch_size=16)[3]
    assert str(rainy) in str(info.value) and str(target) in str(info.value)
    corrupt = train_dir / "BSD400/70090.jpg"
    corrupt.write_bytes(b"this is not an image")
    with pytest.raises(DSRIRError, match=str(corrupt)):
        PairedTrainSet(pairs, patch_size=16)[0]


def test_synthetic_train_set(clean_dir: Path) -> None:
    paths = list_images(clean_dir)
    dataset = SyntheticTrainSet(paths, TASKS, patch_size=64, seed=1)  # larger than the photos: padded
    assert len(dataset) == 6
    samples = [dataset[i] for i in range(6)]
    for sample in samples:
        assert sample["target"].shape == sample["degraded"].shape == (3, 64, 64) and sample["task"] in TASKS
    assert sum(not torch.equal(s["target"], s["degraded"]) for s in samples) >= 5
    assert_same_sample(SyntheticTrainSet(paths, TASKS, patch_size=64, seed=1)[4], samples[4])
    dataset.set_epoch(1)
    assert not torch.equal(dataset[4]["target"], samples[4]["target"])
    tasks = Counter(SyntheticTrainSet(paths * 10, TASKS, 16, seed=0)[i]["task"] for i in range(60))
    assert set(tasks) == set(TASKS) and min(tasks.values()) >= 10
    haze_only = SyntheticTrainSet(paths, ["haze"], patch_size=24)
    assert haze_only[0]["task"] == "haze" and haze_only[0]["degraded"].mean() > haze_only[0]["target"].mean()
    with pytest.raises(DSRIRError):
        SyntheticTrainSet([], TASKS, 32)
    with pytest.raises(DSRIRError, match="snow"):
        SyntheticTrainSet(paths, ["noise", "snow"], 32)


# ---------------------------------------------------------------- evaluation sets


def test_denoise_set_is_official_and_order_independent(tmp_path: Path) -> None:
    folder = tmp_path / "BSD68"
    for i, name in enumerate(["a.png", "b.png", "c.png"]):
        write_image(folder / name, natural_like_image(32, 40, seed=i))
    write_image(folder / "d.png", np.full((64, 64, 3), 128, np.uint8))
    eval_set = denoise_set(folder, 25)
    assert eval_set.task == "noise25" and len(eval_set) == 4
    sample = eval_set[1]
    assert sample.name == "b.png" and sample.task == "noise25"
    assert np.array_equal(sample.target, read_image(folder / "b.png"))
    assert np.array_equal(sample.degraded, denoise_set(folder, 25)[1].degraded)
    alone = tmp_path / "alone"
    write_image(alone / "b.png", sample.target)
    assert np.array_equal(denoise_set(alone, 25)[0].degraded, sample.degraded)
    assert not np.array_equal(denoise_set(folder, 25, seed=1)[1].degraded, sample.degraded)
    grey = eval_set[3]
    diff = grey.degraded.astype(np.float64) - grey.target
    assert diff.std() == pytest.approx(25, abs=1.0)
    assert -0.9 < diff.mean() < -0.1  # truncating cast, as the official test
    (tmp_path / "empty").mkdir()
    with pytest.raises(DSRIRError, match="no images"):
        denoise_set(tmp_path / "empty", 15)


def test_rain100l_and_sots_layouts(tmp_path: Path) -> None:
    rain = tmp_path / "Rain100L"
    for i, name in enumerate(["rain-1.png", "rain-2.png"]):
        write_image(rain / "input" / name, natural_like_image(24, 32, seed=i))
        write_image(rain / "target" / name, natural_like_image(24, 32, seed=10 + i))
    rain_set = rain100l_set(rain)
    assert rain_set.task == "rain" and len(rain_set) == 2
    assert np.array_equal(rain_set[1].degraded, natural_like_image(24, 32, seed=1))
    assert np.array_equal(rain_set[1].target, natural_like_image(24, 32, seed=11))
    write_image(rain / "input" / "rain-3.png", natural_like_image(24, 32, seed=3))
    with pytest.raises(DSRIRError, match=str(rain / "target" / "rain-3.png")):
        rain100l_set(rain)

    sots = tmp_path / "SOTS"
    write_image(sots / "input" / "0001_0.8_0.2.jpg", natural_like_image(24, 32, seed=1))
    write_image(sots / "input" / "0002_0.9_0.1.jpg", natural_like_image(24, 32, seed=2))
    write_image(sots / "target" / "0001.png", natural_like_image(24, 32, seed=3))
    write_image(sots / "target" / "0002.jpg", natural_like_image(24, 32, seed=4))
    sots_samples = list(sots_set(sots))
    assert [s.name for s in sots_samples] == ["0001_0.8_0.2.jpg", "0002_0.9_0.1.jpg"]
    assert all(s.task == "haze" for s in sots_samples)
    assert np.array_equal(sots_samples[0].target, natural_like_image(24, 32, seed=3))
    write_image(sots / "input" / "0003_1_0.04.jpg", natural_like_image(24, 32, seed=5))
    with pytest.raises(DSRIRError, match="0003.png"):
        sots_set(sots)
    with pytest.raises(DSRIRError, match="input"):
        sots_set(tmp_path / "nowhere")


def test_synthetic_sets(clean_dir: Path) -> None:
    sets = synthetic_sets(clean_dir)
    assert [s.task for s in sets] == ["noise15", "noise25", "noise50", "rain", "haze"]
    assert all(len(s) == 6 for s in sets)
    for ours, official in zip(sets[0], denoise_set(clean_dir, 15)):
        assert np.array_equal(ours.degraded, official.degraded)
    rain, haze = sets[3][2], sets[4][2]
    assert np.array_equal(rain.degraded, synthetic_sets(list_images(clean_dir), ["rain"])[0][2].degraded)
    assert 20 < psnr(rain.degraded, rain.target) < 40 and psnr(haze.degraded, haze.target) < 30
    assert not np.array_equal(synthetic_sets(clean_dir, ["haze"], seed=1)[0][0].degraded, sets[4][0].degraded)
    with pytest.raises(DSRIRError, match="blur"):
        synthetic_sets(clean_dir, ["blur"])


def test_validation_sets_crop_and_label(official_tree: tuple[Path, Path], clean_dir: Path) -> None:
    train_dir, csv = official_tree
    pairs = read_pairs_csv(csv, train_dir)
    val = pair_validation_set(pairs + pairs[3:5], crop=20)  # repeated rows are scored once
    assert val.task == "mixed" and len(val) == 7
    assert [s.task for s in val] == ["noise15", "noise25", "noise50", "rain", "rain", "haze", "haze"]
    sample = val[3]
    assert sample.target.shape == (16, 16, 3)
    assert np.array_equal(sample.target, read_image(pairs[3].target)[12:28, 16:32])
    paths = list_images(clean_dir)[:2]
    synthetic = synthetic_validation_set(paths, TASKS, crop=100, degradations=V3_SET)
    assert synthetic.task == "mixed" and [s.task for s in synthetic] == ["noise25", "rain", "haze"] * 2
    shapes = [s.target.shape for s in synthetic]
    assert shapes == [(48, 64, 3)] * 3 + [(56, 72, 3)] * 3  # photos 52x70 and 56x72: multiples of 8
    assert all(s.degraded.shape == s.target.shape for s in synthetic)
    again = synthetic_validation_set(paths, TASKS, crop=100, degradations=V3_SET)
    assert np.array_equal(synthetic[4].degraded, again[4].degraded)
    held_out = parse_degradations(["families"], hold_out=["rain-heavy", "haze-dense"])
    families = synthetic_validation_set(paths[:1], TASKS, crop=100, degradations=held_out)
    assert [s.task for s in families] == ["noise25", "rain-light", "rain-slanted", "haze-light", "haze-nonhomogeneous"]
    assert [s.task for s in synthetic_validation_set(paths[:1], TASKS, crop=100)][1:4] == [*FAMILIES][1:4]
    assert len(synthetic_validation_set([], TASKS, crop=64)) == len(pair_validation_set([], crop=64)) == 0
    with pytest.raises(DSRIRError):
        synthetic_validation_set(paths, ["noise25"], crop=64)


def test_center_crop_to_multiple() -> None:
    image = natural_like_image(53, 70, seed=0)
    cropped = center_crop_to_multiple(image)
    assert cropped.shape == (48, 64, 3) and np.array_equal(cropped, image[2:50, 3:67])
    assert center_crop_to_multiple(image, 1).shape == image.shape


# ---------------------------------------------------------------- make_csv


def make_train_tree(root: Path) -> None:
    names = [
        "BSD400/1.jpg",
        "BSD400/2.jpg",
        "WED/gt/00001.bmp",
        "Rain100L/train/gt/norain-1.png",
        "Rain100L/train/rainy/rain-1.png",
        "Rain100L/train/gt/norain-2.png",
        "Rain100L/train/rainy/rain-2.png",
    ]
    for image_id in ("10", "11", "12"):
        names += [
            f"Reside/train/gt/{image_id}.jpg",
            f"Reside/train/hazy/{image_id}_0.8_0.04.jpg",
            f"Reside/train/hazy/{image_id}_1_0.2.jpg",
        ]
    make_images(root, names, height=16, width=16)


def test_make_csv_writes_a_loadable_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, out = tmp_path / "train", tmp_path / "out.csv"
    make_train_tree(root)
    args = ["--train-dir", str(root), "--output", str(out), "--rain-repeat", "3", "--ots-count", "2"]
    assert make_csv_main(args) == 0
    assert "wrote 11 rows" in capsys.readouterr().out
    pairs = read_pairs_csv(out, root)
    assert [p.task for p in pairs] == ["noise"] * 3 + ["rain"] * 6 + ["haze"] * 2
    assert pairs[0] == Pair(root / "BSD400/1.jpg", None, "noise")
    assert pairs[3:5] == pairs[5:7] == pairs[7:9]
    assert pairs[3].degraded == root / "Rain100L/train/rainy/rain-1.png"
    hazy = [p for p in pairs if p.task == "haze"]
    assert len({p.target for p in hazy}) == 2
    assert all(p.degraded.name.startswith(p.target.stem + "_") for p in hazy)
    assert "\\" not in out.read_text() and out.read_text().startswith("BSD400/1.jpg,BSD400/1.jpg\n")
    first = out.read_text()
    assert make_csv_main(args) == 0 and out.read_text() == first  # deterministic
    assert make_csv_main(["--train-dir", str(root), "--output", str(out), "--mode", "haze", "--ots-count", "9"]) == 0
    assert "only 3" in capsys.readouterr().out
    assert len(read_pairs_csv(out, root)) == 3


def test_make_csv_default_output_and_missing_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "train"
    make_train_tree(root)
    monkeypatch.chdir(tmp_path)
    assert make_csv_main(["--train-dir", str(root), "--mode", "noise"]) == 0
    assert len(read_pairs_csv(tmp_path / "datasets/train/train_noise.csv", root)) == 3
    shutil.rmtree(root / "Rain100L")
    capsys.readouterr()
    assert make_csv_main(["--train-dir", str(root), "--mode", "rain"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Rain100L/train/gt/" in err and err.count("\n") == 1
    assert make_csv_main(["--train-dir", str(tmp_path / "nope")]) == 2


def test_make_csv_refuses_an_output_inside_a_source_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "train"
    make_train_tree(root)
    inside = root / "Rain100L" / "train" / "gt" / "norain-1.png"
    before = inside.read_bytes()
    assert make_csv_main(["--train-dir", str(root), "--mode", "rain", "--output", str(inside)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lies inside the input folder" in err and "Rain100L/train/gt" in err
    assert inside.read_bytes() == before
    assert make_csv_main(["--train-dir", str(root), "--mode", "rain", "--output", str(root / "rain.csv")]) == 0
