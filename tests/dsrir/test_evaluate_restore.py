"""`python -m dsrir.evaluate` on tiny generated test sets and `python -m dsrir.restore` on real files."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dsrir.checkpoint import load_model, save_safetensors
from dsrir.data.eval_sets import center_crop_to_multiple
from dsrir.evaluate import main as evaluate_main
from dsrir.imageio import read_image
from dsrir.metrics import psnr
from dsrir.model import DSRIR, PRESETS, Restorer
from dsrir.restore import main as restore_main
from tests.conftest import natural_like_image


def write_rgb(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("ckpt") / "xs.safetensors"
    save_safetensors(path, DSRIR(PRESETS["dsrir-xs"]), "dsrir-xs")
    return path


@pytest.fixture(scope="module")
def test_sets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BSD68-, Rain100L- and SOTS-shaped folders with a couple of small images each."""
    root = tmp_path_factory.mktemp("testsets")
    for i in range(2):
        write_rgb(root / "BSD68" / f"{i}.png", natural_like_image(44, 50, seed=10 + i))
    clean = natural_like_image(41, 59, seed=20)
    rainy = np.clip(clean.astype(int) + (np.arange(59) % 7 == 0)[None, :, None] * 60, 0, 255).astype(np.uint8)
    write_rgb(root / "Rain100L" / "test" / "target" / "rain-1.png", clean)
    write_rgb(root / "Rain100L" / "test" / "input" / "rain-1.png", rainy)
    hazy = (clean * 0.6 + 90).astype(np.uint8)
    write_rgb(root / "SOTS" / "outdoor" / "target" / "0001.png", clean)
    write_rgb(root / "SOTS" / "outdoor" / "input" / "0001_0.8_0.2.jpg", hazy)
    return root


def test_evaluate_prints_table_and_writes_json(
    checkpoint: Path, test_sets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval.json"
    code = evaluate_main(
        [
            "--checkpoint",
            str(checkpoint),
            "--device",
            "cpu",
            "--output",
            str(out),
            "--denoise-path",
            str(test_sets / "BSD68"),
            "--derain-path",
            str(test_sets / "Rain100L" / "test"),
            "--dehaze-path",
            str(test_sets / "SOTS" / "outdoor"),
            "--save-images",
            str(tmp_path / "restored"),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    tasks = {r["task"]: r for r in report["tasks"]}
    assert list(tasks) == ["noise15", "noise25", "noise50", "rain", "haze"]
    assert tasks["noise15"]["count"] == 2 and tasks["rain"]["count"] == 1
    assert report["average"]["psnr"] == pytest.approx(np.mean([r["psnr"] for r in report["tasks"]]))
    table = capsys.readouterr().out
    assert "average" in table and "noise50" in table and "protocol paper" in table
    assert (tmp_path / "restored" / "rain" / "rain-1.png").is_file()

    # the rain number is the paper protocol's Y-channel PSNR of the restored centre crop
    model, _ = load_model(checkpoint)
    degraded = center_crop_to_multiple(read_image(test_sets / "Rain100L/test/input/rain-1.png"), 8)
    target = center_crop_to_multiple(read_image(test_sets / "Rain100L/test/target/rain-1.png"), 8)
    expected = psnr(Restorer(model)(degraded), target, y_channel=True)
    assert tasks["rain"]["psnr"] == pytest.approx(expected, abs=1e-6)
    assert tasks["rain"]["input_psnr"] == pytest.approx(psnr(degraded, target, y_channel=True), abs=1e-6)
    assert tasks["noise15"]["input_psnr"] > tasks["noise25"]["input_psnr"] > tasks["noise50"]["input_psnr"]


def test_evaluate_synthetic_and_protocols_differ_on_rain(checkpoint: Path, clean_dir: Path, tmp_path: Path) -> None:
    reports = {}
    for protocol in ("paper", "rgb"):
        out = tmp_path / f"{protocol}.json"
        args = [
            "--checkpoint",
            str(checkpoint),
            "--synthetic",
            str(clean_dir),
            "--device",
            "cpu",
            "--protocol",
            protocol,
            "--output",
            str(out),
            "--mode",
            "rain",
        ]
        assert evaluate_main(args) == 0
        reports[protocol] = json.loads(out.read_text())
    assert [r["task"] for r in reports["paper"]["tasks"]] == ["rain"]
    assert reports["paper"]["tasks"][0]["count"] == 6
    assert reports["paper"]["tasks"][0]["psnr"] != reports["rgb"]["tasks"][0]["psnr"]


def test_evaluate_errors_are_one_line(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate_main(["--checkpoint", str(checkpoint), "--device", "cpu"]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.png").write_bytes(b"\x89PNG garbage")
    assert evaluate_main(["--checkpoint", str(checkpoint), "--denoise-path", str(broken), "--mode", "noise"]) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]  # progress bars may precede it
    assert last_line.startswith("error: ") and "bad.png: not a readable image" in last_line


def test_restore_keeps_names_sizes_and_layouts(checkpoint: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    rgb = natural_like_image(61, 97, seed=1)
    write_rgb(inputs / "photo.jpg", rgb)
    cv2.imwrite(str(inputs / "gray.png"), rgb[..., 0])
    cv2.imwrite(str(inputs / "alpha.png"), np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)]))
    cv2.imwrite(str(inputs / "deep.png"), (rgb.astype(np.uint16) * 257))
    out = tmp_path / "out"
    assert restore_main([str(inputs), "-o", str(out), "--checkpoint", str(checkpoint), "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["alpha.png", "deep.png", "gray.png", "photo.jpg"]
    assert cv2.imread(str(out / "photo.jpg")).shape == (61, 97, 3)
    assert cv2.imread(str(out / "gray.png"), cv2.IMREAD_UNCHANGED).shape == (61, 97)
    alpha = cv2.imread(str(out / "alpha.png"), cv2.IMREAD_UNCHANGED)
    assert alpha.shape == (61, 97, 4) and (alpha[..., 3] == 128).all()
    assert cv2.imread(str(out / "deep.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16


def test_restore_skips_and_names_a_bad_file_and_strict_stops(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One corrupt photo used to end the whole job; later good files were never restored."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    write_rgb(inputs / "a.png", natural_like_image(24, 32, seed=1))
    (inputs / "b.png").write_bytes(b"definitely not a png")
    write_rgb(inputs / "c.png", natural_like_image(24, 32, seed=2))
    args = [str(inputs), "-o", str(out), "--checkpoint", str(checkpoint), "--device", "cpu"]
    assert restore_main(args) == 1  # done, but not everything
    captured = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
    assert "skipped: " in captured.err and "b.png: not a readable image" in captured.err
    assert "restored 2 image(s)" in captured.out and "skipped 1 unreadable: b.png" in captured.out
    strict = tmp_path / "strict"
    assert restore_main([*args[:2], str(strict), *args[3:], "--strict"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error: ") and "b.png" in lines[-1]
    assert sorted(p.name for p in strict.iterdir()) == ["a.png"]  # stopped at b.png, in order


def test_restore_errors_name_the_file(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.png"
    assert restore_main([str(missing), "-o", str(tmp_path / "o"), "--checkpoint", str(checkpoint)]) == 2
    assert "nope.png" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"definitely not a png")
    assert restore_main([str(corrupt), "-o", str(tmp_path / "o"), "--checkpoint", str(checkpoint)]) == 2
    assert "corrupt.png: not a readable image" in capsys.readouterr().err
    assert not (tmp_path / "o" / "corrupt.png").exists()
