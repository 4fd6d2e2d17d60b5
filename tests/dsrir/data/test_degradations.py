"""Degradation families: each covers its stated ranges (measured on generated samples), sets, hold-outs, v3."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dsrir.data import degrade_rain
from dsrir.data.degradations import FAMILIES, NAMED_FAMILIES, V3_FAMILIES, parse_degradations, union_of
from dsrir.data.degrade import AIRLIGHTS, BETAS, add_haze, degrade
from dsrir.data.degrade_haze import haze_airlight, haze_depth, haze_transmission
from dsrir.data.eval_sets import synthetic_sets
from dsrir.data.family import Coverage, Uniform
from dsrir.data.train_set import SyntheticTrainSet
from dsrir.data.transforms import augment_pair, random_crop_pair, to_tensor
from dsrir.errors import DSRIRError
from dsrir.imageio import list_images, read_image
from dsrir.metrics import psnr, score
from tests.conftest import natural_like_image

RAIN = [name for name, family in FAMILIES.items() if family.task == "rain"]
HAZE = [name for name, family in FAMILIES.items() if family.task == "haze"]
# Every streak of a family, all layers included, lies within these degrees of vertical (module docstring).
TILT_BANDS = {"rain-light": (0.0, 20.0), "rain-heavy": (0.0, 25.0), "rain-slanted": (30.0, 60.0)}
# exp(-10 beta) at the family's beta range: the transmission of the farthest pixel.
FAR_TRANSMISSION = {"haze-light": (0.37, 0.82), "haze-dense": (0.05, 0.37), "haze-nonhomogeneous": (0.14, 0.67)}


def draws(name: str, count: int, seed: int = 0) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [NAMED_FAMILIES[name].draw(rng) for _ in range(count)]


def assert_covers(values: Sequence[float], stated: Uniform, what: str) -> None:
    """All values inside the stated range and every quarter of it (every value, for whole numbers) drawn."""
    values = np.asarray(values, np.float64)
    assert stated.low <= values.min() and values.max() <= stated.high, what
    if stated.integer:
        assert set(values.astype(int)) == set(range(int(stated.low), int(stated.high) + 1)), what
    elif stated.high > stated.low:
        histogram, _ = np.histogram(values, bins=4, range=(stated.low, stated.high))
        assert histogram.min() > 0, f"{what}: {histogram}"
    else:
        assert np.all(values == stated.low), what


def measured_tilt(layer: np.ndarray) -> float:
    """Streak direction of a rendered layer in degrees from vertical (positive: leaning right at the top), from the
    structure tensor of the slightly blurred layer (the blur removes the pixel grid's pull towards the axes)."""
    smooth = cv2.GaussianBlur(layer.astype(np.float64), (0, 0), 2.0)
    gx, gy = cv2.Sobel(smooth, cv2.CV_64F, 1, 0), cv2.Sobel(smooth, cv2.CV_64F, 0, 1)
    return 0.5 * math.degrees(math.atan2(2 * (gx * gy).sum(), (gx * gx).sum() - (gy * gy).sum()))


@pytest.mark.parametrize("name", list(NAMED_FAMILIES))
def test_every_parameter_of_every_family_covers_its_stated_range(name: str) -> None:
    samples = draws(name, 400)
    for param, stated in NAMED_FAMILIES[name].ranges:
        assert_covers([s[param] for s in samples], stated, f"{name}.{param}")


def test_noise_sigma_spans_0_to_55_and_is_the_noise_added() -> None:
    family, grey = FAMILIES["noise-gaussian"], np.full((128, 128, 3), 128, np.uint8)
    sigmas = [s["sigma"] for s in draws("noise-gaussian", 600)]
    assert set(sigmas) == set(range(56))  # the paper's U{0..55}
    for seed in range(12):
        noisy, params = family.apply(grey, np.random.default_rng(seed))
        assert noisy.astype(np.float64).std() == pytest.approx(params["sigma"], abs=0.5 + 0.03 * params["sigma"])


@pytest.mark.parametrize("name", RAIN)
def test_rendered_streak_angles_follow_the_tilt_and_fill_the_family_band(name: str) -> None:
    """The streak angle histogram: measured on each sample's first layer, both signs, across the family's band."""
    measured = []
    for params in draws(name, 48, seed=1):
        tilt = degrade_rain.signed_tilt(params)
        layer = degrade_rain.streak_layer(
            (160, 160), np.random.default_rng(0), 0.03, params["length"], params["width"], tilt, 1.0
        )
        measured.append(measured_tilt(layer))
        assert measured[-1] == pytest.approx(tilt, abs=4.0)
    low, high = FAMILIES[name].range_of["tilt"].low, FAMILIES[name].range_of["tilt"].high
    magnitudes = np.abs(measured)
    histogram, _ = np.histogram(magnitudes, bins=3, range=(low, high))
    assert histogram.min() > 0, histogram
    assert min(measured) < 0 < max(measured)
    band = TILT_BANDS[name]
    assert band[0] - 4 <= magnitudes.min() and magnitudes.max() <= band[1] + 4


@pytest.mark.parametrize("name", RAIN)
def test_every_layer_stays_in_its_family_band(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """All layers, farther ones included: tilt within the band, smaller and dimmer than the first layer."""
    layers: list[dict[str, float]] = []
    render = degrade_rain.streak_layer

    def recording(shape, rng, density, length, width, tilt, brightness):  # type: ignore[no-untyped-def]
        layers.append({"length": length, "width": width, "tilt": tilt, "brightness": brightness})
        return render(shape, rng, density, length, width, tilt, brightness)

    monkeypatch.setattr(degrade_rain, "streak_layer", recording)
    image, family, stated = natural_like_image(48, 48, seed=0), FAMILIES[name], FAMILIES[name].range_of
    counts = []
    for seed in range(40):
        layers.clear()
        _, params = family.apply(image, np.random.default_rng(seed), reference_height=1080)
        counts.append(len(layers))
        assert len(layers) == params["layers"]
        for layer in layers:
            assert TILT_BANDS[name][0] <= abs(layer["tilt"]) <= TILT_BANDS[name][1]
            assert layer["length"] <= max(3.0, params["length"]) and layer["width"] <= max(1.0, params["width"])
            assert layer["brightness"] <= params["brightness"] <= stated["brightness"].high
    assert set(counts) == set(range(int(stated["layers"].low), int(stated["layers"].high) + 1))


def test_heavy_rain_veils_the_scene_towards_the_atmospheric_light() -> None:
    """On black, the pixels no streak touches show the veil alone: (1 - alpha) * A."""
    black = np.zeros((96, 96, 3), np.uint8)
    veils = []
    for seed in range(16):
        rainy, params = FAMILIES["rain-heavy"].apply(black, np.random.default_rng(seed), reference_height=1080)
        levels, counts = np.unique(rainy, return_counts=True)
        assert levels[np.argmax(counts)] == pytest.approx(params["veil"] * params["veil_light"] * 255, abs=1)
        veils.append(params["veil"])
    assert min(veils) < 0.12 and max(veils) > 0.28
    light, _ = FAMILIES["rain-light"].apply(black, np.random.default_rng(0), reference_height=1080)
    values, counts = np.unique(light, return_counts=True)
    assert values[np.argmax(counts)] == 0  # Rain100L-like: streaks, no veil


@pytest.mark.parametrize("name", HAZE)
def test_transmission_spans_the_family_range(name: str) -> None:
    """Per sample the farthest pixel has t = exp(-10 beta) (and the nearest exp(-10 beta near)) unless the haze is
    patchy; over samples the far transmission spans the family's range."""
    image, family = natural_like_image(64, 80, seed=2), FAMILIES[name]
    far = []
    for seed, params in enumerate(draws(name, 80, seed=3)):
        depth = haze_depth(image, params, np.random.default_rng(seed))
        transmission = haze_transmission(image, params, np.random.default_rng(seed))
        assert depth.min() == pytest.approx(params["near"], abs=1e-5) and depth.max() == pytest.approx(1, abs=1e-5)
        local_beta = -np.log(transmission) / (10 * depth)
        if family.range_of["patchiness"].high == 0:
            assert transmission.min() == pytest.approx(math.exp(-10 * params["beta"]), rel=1e-4)
            assert transmission.max() == pytest.approx(math.exp(-10 * params["beta"] * params["near"]), rel=1e-4)
            assert np.allclose(local_beta[depth > 0.05], params["beta"], rtol=1e-3)
            far.append(float(transmission.min()))
        else:  # NH-HAZE-like: beta varies over the image by 1 +- patchiness
            valid = local_beta[depth > 0.05]
            assert valid.max() / valid.min() > 1.5
            assert params["beta"] * (1 - params["patchiness"]) - 1e-4 <= valid.min()
            assert valid.max() <= params["beta"] * (1 + params["patchiness"]) + 1e-4
            far.append(math.exp(-10 * params["beta"]))
    low, high = FAR_TRANSMISSION[name]
    assert min(far) < low + 0.04 and max(far) > high - 0.04 and low - 0.01 <= min(far) and max(far) <= high + 0.01


@pytest.mark.parametrize("name", HAZE)
def test_haze_is_the_scattering_model_with_a_tinted_airlight(name: str) -> None:
    """On black, I = A (1 - t): the image gives back the family's transmission and airlight colour."""
    black = np.zeros((48, 64, 3), np.uint8)
    airlights = []
    for seed in range(24):
        hazy, params = FAMILIES[name].apply(black, np.random.default_rng(seed))
        transmission = haze_transmission(black, params, _after_draw(name, seed))
        airlight = haze_airlight(params)
        expected = airlight * 255 * (1 - transmission[..., None])
        assert np.abs(hazy - expected).max() <= 0.51
        airlights.append(airlight)
    colours = np.array(airlights)
    assert colours.min() >= 0.5 and colours.max() <= 1.0
    assert np.ptp(colours, axis=1).max() > 0.1  # some airlights are clearly tinted
    assert np.argmax(haze_airlight({"airlight": 0.8, "tint": 0.1, "tint_hue": 240.0})) == 2  # blue cast


def _after_draw(name: str, seed: int) -> np.random.Generator:
    """The generator as ``Family.apply`` leaves it after drawing the parameters (the synthesis continues from it)."""
    rng = np.random.default_rng(seed)
    FAMILIES[name].draw(rng)
    return rng


def test_families_degrade_their_task_deterministically_and_cheaply() -> None:
    image = natural_like_image(96, 96, seed=5)
    for family in FAMILIES.values():
        first, params = family.apply(image, np.random.default_rng(7), reference_height=600)
        again, params_again = family.apply(image, np.random.default_rng(7), reference_height=600)
        assert np.array_equal(first, again) and params == params_again and first.dtype == np.uint8
        assert 5 < psnr(first, image) < 45, family.name
    crop, photo = natural_like_image(128, 128, seed=4), natural_like_image(1024, 1024, seed=4)

    def seconds(picture: np.ndarray, name: str) -> float:
        FAMILIES[name].apply(picture, np.random.default_rng(0), 1600)  # first call: set-up not timed
        start = time.perf_counter()
        for seed in range(2):
            FAMILIES[name].apply(picture, np.random.default_rng(seed), 1600)
        return time.perf_counter() - start

    for name in ("rain-heavy", "rain-slanted", "haze-nonhomogeneous"):
        assert seconds(crop, name) < 0.3 * seconds(photo, name), name


def test_parse_selects_narrows_and_holds_out() -> None:
    every = parse_degradations(["families"])
    assert [f.name for f in every.families] == list(FAMILIES) and every.spec == " ".join(FAMILIES)
    narrowed = parse_degradations(["families", "rain-slanted:tilt=35..45:layers=1..1"], hold_out=["haze-dense"])
    assert "haze-dense" not in narrowed.spec and "rain-slanted:tilt=35..45:layers=1..1" in narrowed.spec
    slanted = narrowed.families_of("rain")[-1]
    assert slanted.range_of["tilt"] == Uniform(35, 45) and slanted.range_of["layers"] == Uniform(1, 1, True)
    assert parse_degradations([narrowed.spec]) == narrowed  # the recorded spec reads back as the same set
    only_rain = parse_degradations(["families"], tasks=["rain"])
    assert {f.task for f in only_rain.families} == {"rain"}
    assert parse_degradations(["v3"]).is_v3
    for tokens, hold_out, message in [
        (["snow"], [], "unknown degradation family 'snow'"),
        (["rain-slanted:tilt=10..20"], [], "outside its stated range 35..55"),
        (["rain-slanted:tilt=40..35"], [], "empty range"),
        (["rain-heavy:layers=2.5..3"], [], "whole numbers"),
        (["rain-heavy:angle=1..2"], [], "has no parameter 'angle'"),
        (["rain-heavy:layers"], [], "expected NAME:PARAM=LOW..HIGH"),
        (["v3", "rain-heavy"], [], "v3 is the old generator on its own"),
        (["families"], ["fog"], "--hold-out fog: unknown family"),
        (["noise-gaussian", "rain-light", "haze-light"], ["rain-heavy"], "--hold-out rain-heavy: not among"),
        (["families"], ["rain-light", "rain-heavy", "rain-slanted"], "leave no family for rain"),
        (["rain-light", "rain-light:tilt=0..5"], [], "named twice"),
    ]:
        with pytest.raises(DSRIRError, match=message):
            parse_degradations(tokens, hold_out)
    with pytest.raises(DSRIRError, match="haze-dense: not a task of rain"):
        parse_degradations(["rain-light", "haze-dense"], tasks=["rain"])


def test_a_union_reads_back_and_covers_what_each_set_drew_from() -> None:
    v3, slanted = parse_degradations(["v3"]), parse_degradations(["rain-slanted", "haze-dense", "noise-gaussian"])
    assert union_of([v3, v3]).is_v3
    both = union_of([v3, slanted])
    assert parse_degradations([both.spec], tasks=None) == both
    for label in ("rain", "haze", "rain-slanted", "haze-dense", "noise25"):
        assert both.coverage(label) == Coverage.SEEN, label
    assert both.coverage("rain-heavy") == Coverage.HELD_OUT
    with pytest.raises(DSRIRError, match="rain-slanted:tilt=35..45 and rain-slanted:tilt=45..55"):
        union_of([parse_degradations([f"rain-slanted:tilt={tilt}"], tasks=None) for tilt in ("35..45", "45..55")])


def test_coverage_tells_seen_from_held_out() -> None:
    narrowed = parse_degradations(["families", "rain-slanted:tilt=35..45"], hold_out=["haze-dense"])
    assert narrowed.coverage("rain-slanted:tilt=40..45") == "seen"
    assert narrowed.coverage("rain-slanted") == "partly seen"
    assert narrowed.coverage("rain-slanted:tilt=45..55") == "held out"  # a shared end is drawn with probability 0
    assert narrowed.coverage("haze-dense") == "held out" and narrowed.coverage("haze-light") == "seen"
    assert narrowed.coverage("noise25") == "seen" and narrowed.coverage("noise75") == "held out"
    assert narrowed.coverage("rain") == "held out"  # the v3 evaluation rain is no family
    v3 = parse_degradations(["v3"])
    assert [v3.coverage(label) for label in ("noise50", "rain", "haze", "rain-light")] == [
        "seen",
        "seen",
        "seen",
        "held out",
    ]


def test_v3_families_are_the_old_generator_and_mix_with_the_others() -> None:
    """rain-v3 gives v3's rain sample for sample; haze-v3 is v3's haze over the span of its OTS values; a set
    naming them beside ``families`` draws them after every family of ``families``, and seen/held out follow."""
    image = natural_like_image(64, 64, seed=3)
    for seed in range(3):
        ours, params = V3_FAMILIES["rain-v3"].apply(image, np.random.default_rng(seed), 700)
        old, old_params = degrade(image, "rain", np.random.default_rng(seed), 700)
        assert np.array_equal(ours, old) and params == old_params
    haze = V3_FAMILIES["haze-v3"]
    assert (haze.range_of["beta"].low, haze.range_of["beta"].high) == (min(BETAS), max(BETAS))
    assert (haze.range_of["airlight"].low, haze.range_of["airlight"].high) == (min(AIRLIGHTS), max(AIRLIGHTS))
    hazy, params = haze.apply(image, np.random.default_rng(1))
    assert np.array_equal(hazy, add_haze(image, np.random.default_rng(0), params["airlight"], params["beta"]))

    mixed = parse_degradations(["families", "rain-v3", "haze-v3"])
    assert [f.name for f in mixed.families] == [*FAMILIES, "rain-v3", "haze-v3"]
    assert parse_degradations([mixed.spec]) == mixed
    assert parse_degradations(["families"]).spec == " ".join(FAMILIES)  # what v4 trained on, unchanged
    chosen = {mixed.degrade(image, "rain", np.random.default_rng(i))[1]["family"] for i in range(40)}
    assert chosen == {"rain-light", "rain-heavy", "rain-slanted", "rain-v3"}
    assert [mixed.coverage(label) for label in ("rain", "haze", "rain-v3", "rain-slanted")] == ["seen"] * 4
    without_rain_v3 = parse_degradations(["families", "rain-v3", "haze-v3"], hold_out=["rain-v3"])
    assert without_rain_v3.coverage("rain") == "held out" and without_rain_v3.coverage("haze") == "seen"
    assert parse_degradations(["families"]).coverage("rain-v3") == "held out"
    assert parse_degradations(["v3"]).coverage("haze-v3") == "seen"


def test_family_weights_draw_a_family_that_much_more_often_and_record_nothing_new() -> None:
    """``--task-mix haze-v3=3``: haze-v3 is 3 of the 6 haze draws; weights of 1 leave the draws unchanged; the
    recorded spec (what was seen) is the unweighted one; only families the set draws can be weighed."""
    image = natural_like_image(24, 24, seed=1)
    mixed = parse_degradations(["families", "rain-v3", "haze-v3"])
    weighted = mixed.weighted({"haze-v3": 3})
    assert weighted.spec == mixed.spec and weighted.coverage("haze") == "seen"
    drawn = Counter(weighted.degrade(image, "haze", np.random.default_rng(i))[1]["family"] for i in range(400))
    assert set(drawn) == {"haze-light", "haze-dense", "haze-nonhomogeneous", "haze-v3"}
    assert 160 <= drawn["haze-v3"] <= 240  # expected 200 (3/6), binomial sd 10
    assert all(35 <= drawn[name] <= 100 for name in ("haze-light", "haze-dense", "haze-nonhomogeneous"))  # 67 each

    ones = mixed.weighted({name: 1 for name in ("rain-v3", "haze-v3", "rain-light")})
    for task in ("rain", "haze"):
        for seed in range(8):
            ours, params = ones.degrade(image, task, np.random.default_rng(seed))
            unweighted, unweighted_params = mixed.degrade(image, task, np.random.default_rng(seed))
            assert np.array_equal(ours, unweighted) and params == unweighted_params
    assert mixed.weighted({}) is mixed

    with pytest.raises(DSRIRError, match="--task-mix haze-v3: not among the degradations"):
        parse_degradations(["families"]).weighted({"haze-v3": 2})
    with pytest.raises(DSRIRError, match="--task-mix rain-heavy: not among"):
        parse_degradations(["families"], hold_out=["rain-heavy"]).weighted({"rain-heavy": 2})
    with pytest.raises(DSRIRError, match="v3 is one generator"):
        parse_degradations(["v3"]).weighted({"haze-v3": 2})
    with pytest.raises(DSRIRError, match="whole number"):
        mixed.weighted({"haze-v3": 0})


def test_v3_set_is_the_old_generator_sample_for_sample(clean_dir: Path) -> None:
    """Training with --degradations v3 sees exactly the samples the runs before the families saw."""
    v3, image = parse_degradations(["v3"]), natural_like_image(64, 64, seed=3)
    for task in ("noise", "rain", "haze"):
        ours, params = v3.degrade(image, task, np.random.default_rng(5), 700)
        old, old_params = degrade(image, task, np.random.default_rng(5), 700)
        assert np.array_equal(ours, old) and params == old_params
    paths = list_images(clean_dir)
    dataset = SyntheticTrainSet(paths, ("noise", "rain", "haze"), 32, seed=4, degradations=v3)
    for index in range(6):
        rng = np.random.default_rng([4, 0, index])  # the per-sample generator of the dataset
        task = ("noise", "rain", "haze")[int(rng.integers(0, 3))]
        photo = read_image(paths[index])
        crop, _ = random_crop_pair(photo, photo, 32, rng)
        degraded, _ = degrade(crop, task, rng, reference_height=photo.shape[0])
        target, degraded = augment_pair(crop, degraded, int(rng.integers(0, 8)))
        sample = dataset[index]
        assert sample["task"] == task
        assert torch.equal(sample["degraded"], to_tensor(degraded)) and torch.equal(sample["target"], to_tensor(target))


def test_training_draws_every_family_of_the_set_and_nothing_held_out(clean_dir: Path) -> None:
    paths = list_images(clean_dir) * 20
    held_out = parse_degradations(["families"], hold_out=["rain-heavy"])
    dataset = SyntheticTrainSet(paths, ("rain",), 24, seed=0, degradations=held_out)
    chosen = [held_out.degrade(natural_like_image(24, 24, i), "rain", np.random.default_rng(i))[1] for i in range(60)]
    assert {c["family"] for c in chosen} == {"rain-light", "rain-slanted"}
    assert dataset[0]["task"] == "rain"
    with pytest.raises(DSRIRError, match="no family for haze"):
        SyntheticTrainSet(paths, ("haze",), 24, degradations=parse_degradations(["rain-light"], tasks=["rain"]))


def test_clean_fraction_leaves_that_share_of_samples_clean_and_zero_draws_nothing(clean_dir: Path) -> None:
    paths = list_images(clean_dir) * 40
    degraded = SyntheticTrainSet(paths, ("noise", "rain", "haze"), 24, seed=2)
    clean_share = SyntheticTrainSet(paths, ("noise", "rain", "haze"), 24, seed=2, clean_fraction=0.25)
    untouched = [torch.equal(s["degraded"], s["target"]) for s in (clean_share[i] for i in range(len(paths)))]
    assert 0.15 < np.mean(untouched) < 0.35, np.mean(untouched)
    assert not any(torch.equal(degraded[i]["degraded"], degraded[i]["target"]) for i in range(20))
    # At 0 no draw is made: test_v3_set_is_the_old_generator_sample_for_sample rebuilds samples draw by draw.
    with pytest.raises(DSRIRError, match="clean fraction 1.0"):
        SyntheticTrainSet(paths, ("noise",), 24, clean_fraction=1.0)


def test_family_evaluation_labels_record_their_draws(clean_dir: Path) -> None:
    clean = synthetic_sets(clean_dir, ["clean"], crop=48)[0][0]  # the photo itself, as input and as target
    assert clean.task == "clean" and np.array_equal(clean.degraded, clean.target)
    assert clean.degraded.shape == (48, 48, 3)
    assert clean.degraded is not clean.target and parse_degradations(["families"]).coverage("clean") == "-"
    sets = synthetic_sets(clean_dir, ["rain-heavy", "haze-dense:beta=0.25..0.3", "noise-gaussian"], crop=48)
    heavy, dense, noise = sets[0][1], sets[1][1], sets[2][1]
    assert heavy.task == "rain-heavy" and 2 <= heavy.params["layers"] <= 5 and heavy.degraded.shape == (48, 48, 3)
    assert 0.25 <= dense.params["beta"] <= 0.3 and 0 <= noise.params["sigma"] <= 55
    again = synthetic_sets(list_images(clean_dir)[1:2], ["rain-heavy"], crop=48)[0][0]
    assert np.array_equal(again.degraded, heavy.degraded) and again.params == heavy.params  # seeded per image
    assert score(heavy.degraded, heavy.target, heavy.task, "paper") == score(
        heavy.degraded, heavy.target, "rain", "paper"
    )  # rain families are scored on Y, as rain
    with pytest.raises(DSRIRError, match="outside its stated range"):
        synthetic_sets(clean_dir, ["haze-dense:beta=0.5..0.6"])
    with pytest.raises(DSRIRError, match="or a degradation"):
        synthetic_sets(clean_dir, ["snow"])
