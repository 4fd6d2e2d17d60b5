"""benchmarks/trajectory.py: a session's checkpoints scored with EMA and raw weights, as a table, JSON and a plot."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
import torch

from dsrir.checkpoint import official_checkpoint, save_pth
from dsrir.data.eval_sets import synthetic_sets
from dsrir.evaluate import average, evaluate_sets
from dsrir.model import DSRIR, PRESETS
from dsrir.model.restorer import Restorer
from tests.benchmarks.scripts import load_script
from tests.conftest import natural_like_image

pytest.importorskip("matplotlib")  # in the [test] extra; the missing-package error is tested below


@pytest.fixture(scope="module")
def trajectory_main() -> Callable[[list[str]], int]:
    return load_script("trajectory").main  # type: ignore[no-any-return]


def tiny_model(seed: int) -> DSRIR:
    torch.manual_seed(seed)
    return DSRIR(PRESETS["dsrir-xs"]).eval()


def save_session(folder: Path) -> dict[tuple[int, str], DSRIR]:
    """Two numbered checkpoints, model_latest.pth repeating the second and model_best.pth: raw and EMA weights
    differ in each."""
    folder.mkdir(parents=True)
    models = {}
    for epoch, step in ((1, 10), (2, 20)):
        raw, ema = tiny_model(epoch), tiny_model(epoch + 10)
        models[(step, "raw")], models[(step, "ema")] = raw, ema
        checkpoint = official_checkpoint(raw, "dsrir-xs", epoch, global_step=step, state_dict_ema=ema.state_dict())
        for name in (f"model_{epoch}.pth", "model_latest.pth", "model_best.pth"):
            save_pth(folder / name, checkpoint)
    return models


def test_trajectory_scores_ema_and_raw_weights_of_every_checkpoint(
    tmp_path: Path, trajectory_main: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "photo.png"), natural_like_image(48, 48, 3))
    models = save_session(tmp_path / "session")
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    output = tmp_path / "out" / "trajectory.json"
    argv = [str(tmp_path / "session"), str(tmp_path / "broken.pth"), "--photos", str(photos), "--crop", "32"]
    argv += ["--tasks", "noise25", "rain-heavy", "clean", "--output", str(output), "--no-progress", "--device", "cpu"]

    assert trajectory_main(argv) == 1  # done, but one input was skipped

    captured = capsys.readouterr()
    assert "skipped: " in captured.err and "broken.pth: not a readable PyTorch checkpoint" in captured.err

    def refuse(constant: str) -> None:
        raise AssertionError(f"not strict JSON: {constant}")

    report = json.loads(output.read_text(), parse_constant=refuse)  # no input score for clean frames (infinite)
    points = report["points"]
    assert set(points[0]["input"]) == {"noise25", "rain-heavy"} and "clean" in points[0]["tasks"]
    assert [(p["step"], p["weights"]) for p in points] == [(10, "ema"), (10, "raw"), (20, "ema"), (20, "raw")]
    assert [Path(p).name for p in report["checkpoints"]] == ["model_1.pth", "model_2.pth"]  # latest repeats 2
    sets = synthetic_sets(photos, tasks=["noise25", "rain-heavy", "clean"], seed=0, crop=32)
    for point in points:  # each number is the weights it names, not the other set
        expected = evaluate_sets(Restorer(models[(point["step"], point["weights"])]), sets, "paper", progress=False)
        assert point["average_psnr"] == pytest.approx(average(expected).psnr)
    assert points[0]["average_psnr"] != points[1]["average_psnr"]
    picture = cv2.imread(str(output.parent / report["picture"]))
    assert picture is not None and picture.shape[0] > 100 and picture.shape[1] > 300
    assert "input" in captured.out and "   ema " in captured.out and "   raw " in captured.out


def test_trajectory_errors_are_one_line(
    tmp_path: Path,
    trajectory_main: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "empty").mkdir()
    assert trajectory_main([str(tmp_path / "empty"), "--photos", str(tmp_path)]) == 2
    assert "empty: no model_<epoch>.pth or model_latest.pth checkpoints" in capsys.readouterr().err
    save_pth(tmp_path / "shipped.pth", official_checkpoint(tiny_model(0), "dsrir-xs", epoch=0))
    assert trajectory_main([str(tmp_path / "shipped.pth"), "--photos", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a training checkpoint" in err and "no readable training checkpoint" in err
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert trajectory_main([str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.strip() == "error: the trajectory picture needs matplotlib: pip install matplotlib"
