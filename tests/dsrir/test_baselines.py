"""Classical baselines (NLM, dark channel prior, guided filter, optional CBM3D) and the quality benchmark script."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dsrir import baselines
from dsrir.checkpoint import official_checkpoint, read_weights, save_pth, save_safetensors
from dsrir.data.degrade import add_haze
from dsrir.data.eval_sets import official_test_noise
from dsrir.errors import DSRIRError
from dsrir.metrics import psnr
from dsrir.model import DSRIR, PRESETS
from tests.benchmarks.scripts import load_script
from tests.conftest import natural_like_image
from train.blend import main as blend_main


def far_haze(clean: np.ndarray) -> np.ndarray:
    """Haze with A = 0.9 that is nearly opaque at the top (t = 0.05), where DCP looks for the airlight."""
    depth = np.repeat(np.linspace(1.5, 0.2, clean.shape[0], dtype=np.float32)[:, None], clean.shape[1], axis=1)
    return add_haze(clean, np.random.default_rng(0), airlight=0.9, beta=0.2, depth=depth)


@pytest.mark.parametrize("seed", [0, 1])
def test_nlm_removes_most_of_sigma_25_noise(seed: int) -> None:
    clean = natural_like_image(96, 128, seed)
    noisy = official_test_noise(clean, 25, np.random.default_rng(seed))
    denoised = baselines.nlm_denoise(noisy, 25)
    assert denoised.shape == clean.shape and denoised.dtype == np.uint8
    assert psnr(denoised, clean) > psnr(noisy, clean) + 5.0


def test_dcp_raises_psnr_on_synthetic_haze() -> None:
    clean = natural_like_image(96, 128, seed=2)
    hazy = add_haze(clean, np.random.default_rng(2), airlight=0.9, beta=0.16)
    dehazed = baselines.dark_channel_dehaze(hazy)
    assert dehazed.shape == clean.shape and dehazed.dtype == np.uint8
    assert psnr(dehazed, clean) > psnr(hazy, clean) + 4.0


def test_dcp_recovers_the_airlight_of_dense_haze() -> None:
    clean = natural_like_image(96, 128, seed=3)
    hazy = far_haze(clean).astype(np.float32) / 255.0
    airlight = baselines.estimate_airlight(hazy, baselines.dark_channel(hazy))
    np.testing.assert_allclose(airlight, 0.9, atol=0.04)
    assert psnr(baselines.dark_channel_dehaze(far_haze(clean)), clean) > psnr(far_haze(clean), clean) + 3.0


def test_guided_filter_keeps_a_constant_and_smooths_noise() -> None:
    guide = cv2.cvtColor(natural_like_image(96, 128, seed=4), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    constant = np.full_like(guide, 0.3)
    np.testing.assert_allclose(baselines.guided_filter(guide, constant, 8, 1e-3), 0.3, atol=1e-5)

    ramp = np.tile(np.linspace(0.2, 0.8, 128, dtype=np.float32), (96, 1))
    noisy = ramp + np.random.default_rng(0).normal(0.0, 0.1, ramp.shape).astype(np.float32)
    smoothed = baselines.guided_filter(ramp, noisy, 8, 1e-3)
    assert np.std(smoothed - ramp) < 0.25 * np.std(noisy - ramp)


def test_cbm3d_without_bm3d_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bm3d", None)  # makes ``import bm3d`` raise ImportError
    assert not baselines.has_bm3d()
    with pytest.raises(DSRIRError) as caught:
        baselines.cbm3d_denoise(natural_like_image(16, 16, seed=0), 25)
    assert str(caught.value) == "bm3d is not installed: pip install bm3d (non-commercial licence)"


def test_cbm3d_denoises_when_installed() -> None:
    pytest.importorskip("bm3d")
    clean = natural_like_image(48, 48, seed=5)
    noisy = official_test_noise(clean, 25, np.random.default_rng(5))
    assert psnr(baselines.cbm3d_denoise(noisy, 25), clean) > psnr(noisy, clean) + 5.0


@pytest.fixture(scope="module")
def quality_main() -> Callable[[list[str]], int]:
    """``benchmarks/quality.py``'s ``main``."""
    return load_script("quality").main  # type: ignore[no-any-return]


def test_quality_benchmark_end_to_end(
    tmp_path: Path, quality_main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    """One tiny photo: the table, the JSON and one picture per task (input | ours | best baseline | clean)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "photo.png"), cv2.cvtColor(natural_like_image(72, 84, 0), cv2.COLOR_RGB2BGR))
    torch.manual_seed(0)
    model = DSRIR(PRESETS["dsrir-xs"])
    save_pth(tmp_path / "tiny.pth", official_checkpoint(model, "dsrir-xs", epoch=0))
    output = tmp_path / "out" / "quality.json"
    argv = ["--model", str(tmp_path / "tiny.pth"), "--photos", str(photos), "--crop", "64", "--picture-crop", "48"]
    argv += ["--tasks", "noise25", "rain-heavy", "haze-dense", "clean", "--output", str(output), "--no-progress"]

    assert quality_main(argv) == 0

    def refuse(constant: str) -> None:
        raise AssertionError(f"not strict JSON: {constant}")

    report = json.loads(output.read_text(), parse_constant=refuse)
    assert {"date", "model", "backend", "machine", "notes", "summary", "images", "pictures", "trained_on"} <= set(
        report
    )
    assert {"platform", "cpu", "cpu_count", "packages"} <= set(report["machine"])
    assert report["trained_on"]["degradations"] == "v3"  # the checkpoint records no set: made before the families
    assert list(report["summary"]) == ["noise25", "rain-heavy", "haze-dense", "clean"]
    training = {task: methods["training"] for task, methods in report["summary"].items()}
    # no record: trained on the v3 generator, which leaves no sample clean
    assert training == {"noise25": "seen", "rain-heavy": "held out", "haze-dense": "held out", "clean": "held out"}
    assert len(report["images"]) == 4
    for record in report["images"][:3]:
        assert record["size"] == [64, 64] and record["dsrir"]["seconds"] > 0
        expected = {"noise25": {"nlm"}, "rain-heavy": set(), "haze-dense": {"dcp"}}[record["task"]]
        assert {"input", "dsrir"} | expected <= set(record)
    clean = report["images"][3]  # the photo undegraded: the model's output scored against the photo itself
    assert set(clean) == {"task", "image", "size", "dsrir"} and 0 < clean["dsrir"]["psnr"] < 100
    assert 2 <= report["images"][1]["params"]["layers"] <= 5 and report["images"][2]["params"]["beta"] >= 0.1
    assert report["summary"]["noise25"]["nlm"]["psnr"] > report["summary"]["noise25"]["input"]["psnr"]
    assert report["pictures"] == {
        "noise25": "quality-noise25.png",
        "rain-heavy": "quality-rain-heavy.png",
        "haze-dense": "quality-haze-dense.png",
        "clean": "quality-clean.png",
    }
    for name in report["pictures"].values():
        picture = cv2.imread(str(output.parent / name))
        assert picture.shape == (22 + 48 + 2 * 4, 4 * 48 + 5 * 4, 3)  # header, one row of four 48-pixel windows
    out = capsys.readouterr().out
    assert "held out" in out and "trained on: v3" in out and "quality-haze-dense.png" in out


def test_quality_benchmark_scores_what_training_held_out(
    tmp_path: Path, quality_main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "photo.png"), natural_like_image(40, 40, 1))
    torch.manual_seed(0)
    model = DSRIR(PRESETS["dsrir-xs"])
    checkpoint = official_checkpoint(model, "dsrir-xs", epoch=0, degradations="families rain-slanted:tilt=35..45")
    save_pth(tmp_path / "loo.pth", checkpoint)
    output = tmp_path / "quality.json"
    argv = ["--model", str(tmp_path / "loo.pth"), "--photos", str(photos), "--crop", "32", "--output", str(output)]
    argv += ["--no-progress", "--tasks", "rain-slanted", "rain-slanted:tilt=45..55"]

    trained = ["--trained-on", "noise-gaussian rain-light rain-slanted haze-light haze-nonhomogeneous"]
    assert quality_main([*argv, "held-out", *trained]) == 0  # held-out: every family the training left out
    report = json.loads(output.read_text())
    assert report["trained_on"]["source"] == "--trained-on"
    assert {t: m["training"] for t, m in report["summary"].items()} == {
        "rain-heavy": "held out",
        "haze-dense": "held out",
        "rain-slanted": "seen",
        "rain-slanted:tilt=45..55": "seen",
    }
    assert (tmp_path / "quality-rain-slanted_tilt_45..55.png").is_file()

    assert quality_main(argv) == 0  # the set the checkpoint records: rain-slanted narrowed, no family held out
    report = json.loads(output.read_text())
    assert report["trained_on"] == {
        "degradations": " ".join(
            [
                "noise-gaussian",
                "rain-light",
                "rain-heavy",
                "rain-slanted:tilt=35..45",
                "haze-light",
                "haze-dense",
                "haze-nonhomogeneous",
            ]
        ),
        "clean_fraction": None,  # recorded before --clean-fraction was
        "source": "the model's record",
    }
    assert {t: m["training"] for t, m in report["summary"].items()} == {
        "rain-slanted": "partly seen",
        "rain-slanted:tilt=45..55": "held out",
    }
    recorded = quality_main.__globals__["recorded_training"]
    written = {"degradations": "rain-light haze-dense", "clean_fraction": "0.1"}
    save_safetensors(tmp_path / "w.safetensors", model, "dsrir-xs", written)
    assert recorded(tmp_path / "w.onnx") == recorded(tmp_path / "w.safetensors") == written
    assert read_weights(tmp_path / "w.safetensors").metadata["clean_fraction"] == 0.1
    assert recorded(tmp_path / "none.onnx") == {}

    with_clean = official_checkpoint(model, "dsrir-xs", epoch=0, degradations="families", clean_fraction=0.1)
    save_pth(tmp_path / "clean.pth", with_clean)
    clean_argv = ["--model", str(tmp_path / "clean.pth"), "--photos", str(photos), "--crop", "32", "--tasks", "clean"]
    capsys.readouterr()
    assert quality_main([*clean_argv, "--output", str(output), "--no-progress"]) == 0
    report = json.loads(output.read_text())
    assert report["trained_on"]["clean_fraction"] == 0.1 and report["summary"]["clean"]["training"] == "seen"
    assert "0.1 of the samples left clean (the model's record)" in capsys.readouterr().out
    capsys.readouterr()
    assert quality_main([*argv, "held-out", "--trained-on", "families"]) == 2
    assert "training drew from every family" in capsys.readouterr().err


def test_quality_benchmark_without_a_model_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], quality_main: Callable
) -> None:
    monkeypatch.setitem(quality_main.__globals__, "DEFAULT_MODEL", tmp_path / "weights" / "gone.onnx")
    assert quality_main(["--photos", str(tmp_path)]) == 2
    assert "no --model given and the shipped weights/gone.onnx is missing" in capsys.readouterr().err
    assert quality_main(["--photos", str(tmp_path), "--model", str(tmp_path / "other.onnx")]) == 2
    assert "other.onnx: not found" in capsys.readouterr().err


def test_quality_benchmark_scores_a_checkpoints_raw_weights_on_request(
    tmp_path: Path, quality_main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    """The EMA lags the raw weights (a short run's by most of the run): ``--weights raw`` scores what the last step
    left, and says so in the report; only a .pth keeps both."""
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "photo.png"), natural_like_image(40, 40, 2))
    torch.manual_seed(0)
    raw, average = DSRIR(PRESETS["dsrir-xs"]), DSRIR(PRESETS["dsrir-xs"])
    checkpoint = official_checkpoint(raw, "dsrir-xs", epoch=1, state_dict_ema=average.state_dict(), ema_decay=0.999)
    save_pth(tmp_path / "run.pth", checkpoint)
    argv = ["--model", str(tmp_path / "run.pth"), "--photos", str(photos), "--crop", "32", "--tasks", "noise25"]
    scores = {}
    for which in ("ema", "raw"):
        output = tmp_path / f"{which}.json"
        assert quality_main([*argv, "--weights", which, "--output", str(output), "--no-progress"]) == 0
        report = json.loads(output.read_text())
        assert report["weights"] == which
        scores[which] = report["summary"]["noise25"]["dsrir"]["psnr"]
    assert scores["ema"] != scores["raw"]
    assert ", raw weights" in report["backend"]

    # The report names what the file holds, not the flag's default: a train.blend average is a blend, weights that
    # record nothing (v3-era files) say so.
    blend = tmp_path / "blend.pth"
    run = str(tmp_path / "run.pth")
    assert blend_main(["--checkpoints", run, run, "--output", str(blend)]) == 0
    save_safetensors(tmp_path / "old.safetensors", raw, "dsrir-xs")
    for model, expected in ((blend, "blend"), (tmp_path / "old.safetensors", "not recorded")):
        output = tmp_path / f"{model.stem}.json"
        assert quality_main([*argv[2:], "--model", str(model), "--output", str(output), "--no-progress"]) == 0
        assert json.loads(output.read_text())["weights"] == expected

    save_safetensors(tmp_path / "w.safetensors", raw, "dsrir-xs")
    capsys.readouterr()
    bad = ["--model", str(tmp_path / "w.safetensors"), "--photos", str(photos), "--crop", "32", "--weights", "raw"]
    assert quality_main([*bad, "--output", str(tmp_path / "bad.json"), "--no-progress"]) == 2
    assert "--weights raw: " in capsys.readouterr().err and not (tmp_path / "bad.json").exists()
