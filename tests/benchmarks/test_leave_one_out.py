"""benchmarks/leave_one_out.py: the held-out rows of real quality.py reports, against the bar and a seen control."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import torch

from dsrir.checkpoint import official_checkpoint, save_pth
from dsrir.model import DSRIR, PRESETS
from tests.benchmarks.scripts import load_script
from tests.conftest import natural_like_image

TASKS = ["noise25", "rain-heavy", "haze-dense", "clean"]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """quality.py reports of one tiny model whose record holds rain-heavy and haze-dense out, and of the same
    model recorded as trained on every family (the control)."""
    folder = tmp_path_factory.mktemp("loo")
    photos = folder / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "photo.png"), natural_like_image(48, 48, 2))
    torch.manual_seed(0)
    model = DSRIR(PRESETS["dsrir-xs"])
    quality = load_script("quality")
    trained = {"loo": "noise-gaussian rain-light rain-slanted haze-light haze-nonhomogeneous", "seen": "families"}
    paths = {}
    for name, degradations in trained.items():
        checkpoint = official_checkpoint(
            model, "dsrir-xs", epoch=0, degradations=degradations, state_dict_ema=model.state_dict(), ema_decay=0.999
        )
        save_pth(folder / f"{name}.pth", checkpoint)
        paths[name] = folder / f"{name}.json"
        argv = ["--model", str(folder / f"{name}.pth"), "--photos", str(photos), "--crop", "48", "--no-progress"]
        assert quality.main([*argv, "--tasks", *TASKS, "--output", str(paths[name])]) == 0
    return paths


def test_held_out_rows_with_their_seen_control_and_verdict(
    reports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    output = tmp_path / "loo" / "table.json"
    argv = [str(reports["loo"]), str(garbage), str(reports["seen"]), "--seen", str(reports["seen"])]

    assert load_script("leave_one_out").main([*argv, "--gain", "-100", "--output", str(output)]) == 0

    captured = capsys.readouterr()
    assert f"skipped: {garbage}: not a readable quality.py report" in captured.err
    assert f"skipped: {reports['seen']}: its model held no family out" in captured.err
    loo, seen = (json.loads(reports[name].read_text())["summary"] for name in ("loo", "seen"))
    rows = json.loads(output.read_text())["rows"]
    assert [row["task"] for row in rows] == ["rain-heavy", "haze-dense"]  # seen noise and the clean frames are not
    for row in rows:
        task = row["task"]
        assert row["held_out_psnr"] == loo[task]["dsrir"]["psnr"] and row["seen_psnr"] == seen[task]["dsrir"]["psnr"]
        assert row["gain"] == pytest.approx(loo[task]["dsrir"]["psnr"] - loo[task]["input"]["psnr"])
    haze, rain = rows[1], rows[0]
    assert rain["baselines"] == {} and rain["passes"]  # no classical rain baseline: the gain alone decides
    assert haze["passes"] == (loo["haze-dense"]["dsrir"]["psnr"] > loo["haze-dense"]["dcp"]["psnr"])
    assert "| rain-heavy | loo | ema |" in captured.out and "held-out families pass the bar" in captured.out
    assert [row["weights"] for row in rows] == ["ema", "ema"]  # what quality.py scores unless told --weights raw


def test_the_bar_is_the_gain_and_the_required_baselines_only() -> None:
    module = load_script("leave_one_out")

    def row(ours: float, **baselines: float) -> object:
        return module.HeldOutRow("haze-dense", "r.json", "m", 12.0, ours, None, baselines)

    assert row(15.0).passes(3.0) and not row(14.99).passes(3.0)
    assert not row(16.0, dcp=16.5).passes(3.0)  # under the dark channel prior
    assert row(16.0, nlm=15.0, cbm3d=17.0).passes(3.0)  # CBM3D is the goal beyond, not the bar


def test_no_held_out_family_anywhere_is_one_line_and_exit_2(
    reports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main = load_script("leave_one_out").main
    assert main([str(reports["seen"]), "--output", str(tmp_path / "t.json")]) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("error: no held-out family in any report")
    assert main([str(reports["loo"]), "--seen", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: not a readable quality.py report" in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists()
