"""benchmarks/compare_quality.py: two real quality.py reports, task by task and photo by photo."""

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

TASKS = ["noise25", "haze-dense", "clean"]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """quality.py reports of two different tiny models on the same two photos, and of the first at another crop."""
    folder = tmp_path_factory.mktemp("compare")
    photos = folder / "photos"
    photos.mkdir()
    for seed in (1, 2):
        cv2.imwrite(str(photos / f"photo{seed}.png"), natural_like_image(40, 40, seed))
    quality = load_script("quality")
    paths = {}
    for name, seed, crop in (("before", 0, "32"), ("after", 1, "32"), ("other-crop", 0, "24")):
        torch.manual_seed(seed)
        model = DSRIR(PRESETS["dsrir-xs"])
        save_pth(folder / f"{name}.pth", official_checkpoint(model, "dsrir-xs", epoch=0))
        paths[name] = folder / f"{name}.json"
        argv = ["--model", str(folder / f"{name}.pth"), "--photos", str(photos), "--crop", crop, "--no-progress"]
        assert quality.main([*argv, "--tasks", *TASKS, "--output", str(paths[name])]) == 0
    return paths


def test_differences_per_task_and_the_photo_lost_most_on(
    reports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out" / "comparison.json"
    argv = [str(reports["before"]), str(reports["after"]), "--output", str(output)]

    assert load_script("compare_quality").main(argv) == 0

    before, after = (json.loads(reports[name].read_text()) for name in ("before", "after"))
    rows = json.loads(output.read_text())["tasks"]
    assert [row["task"] for row in rows] == TASKS
    for row in rows:
        task = row["task"]
        ours = {r["image"]: r["dsrir"]["psnr"] for r in before["images"] if r["task"] == task}
        theirs = {r["image"]: r["dsrir"]["psnr"] for r in after["images"] if r["task"] == task}
        drops = {name: theirs[name] - ours[name] for name in ours}
        assert row["photos"] == 2 and row["worst_photo"] == min(drops, key=drops.__getitem__)
        assert row["worst_photo_difference"] == pytest.approx(min(drops.values()))
        means = [report["summary"][task]["dsrir"]["psnr"] for report in (before, after)]
        assert row["difference"] == pytest.approx(means[1] - means[0])
    assert rows[0]["best_baseline"] == "nlm" and rows[1]["best_baseline"] == "dcp"
    assert rows[2]["best_baseline"] is None and rows[2]["input"] is None  # clean frames: no input score, no baseline
    out = capsys.readouterr().out
    assert "haze-dense" in out and "mean difference over 3 tasks" in out


def test_swapping_the_reports_negates_every_difference(reports: dict[str, Path], tmp_path: Path) -> None:
    main = load_script("compare_quality").main
    forward, backward = tmp_path / "f.json", tmp_path / "b.json"
    assert main([str(reports["before"]), str(reports["after"]), "--tasks", "clean", "--output", str(forward)]) == 0
    assert main([str(reports["after"]), str(reports["before"]), "--tasks", "clean", "--output", str(backward)]) == 0
    (f,), (b,) = (json.loads(path.read_text())["tasks"] for path in (forward, backward))
    assert f["difference"] == pytest.approx(-b["difference"]) and f["difference"] != 0


@pytest.mark.parametrize(
    ("pick", "extra", "message"),
    [
        (("before", "other-crop"), [], "error: the reports differ in crop (32 vs 24): not comparable"),
        (("before", "after"), ["--tasks", "rain"], "error: --tasks rain: not in both reports"),
        (("before", "missing"), [], "missing.json: not a readable quality.py report"),
        (("before", "garbage"), [], "garbage.json: not a readable quality.py report"),
    ],
)
def test_reports_that_cannot_be_compared_are_one_line_and_exit_2(
    reports: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    pick: tuple[str, str],
    extra: list[str],
    message: str,
) -> None:
    (tmp_path / "garbage.json").write_text("{not json")
    paths = [reports.get(name, tmp_path / f"{name}.json") for name in pick]
    output = tmp_path / "comparison.json"

    assert load_script("compare_quality").main([*map(str, paths), *extra, "--output", str(output)]) == 2

    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err
    assert not output.exists()


def test_the_output_never_overwrites_a_report(reports: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    report = reports["after"]
    text = report.read_text()
    assert load_script("compare_quality").main([str(reports["before"]), str(report), "--output", str(report)]) == 2
    assert "is one of the reports compared" in capsys.readouterr().err and report.read_text() == text


def test_a_task_in_one_report_only_is_named_not_compared(
    reports: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fewer = json.loads(reports["after"].read_text())
    del fewer["summary"]["clean"]
    (tmp_path / "fewer.json").write_text(json.dumps(fewer))
    output = tmp_path / "comparison.json"

    assert (
        load_script("compare_quality").main(
            [str(reports["before"]), str(tmp_path / "fewer.json"), "--output", str(output)]
        )
        == 0
    )

    assert "only in before (not compared): clean" in capsys.readouterr().out
    assert [row["task"] for row in json.loads(output.read_text())["tasks"]] == TASKS[:2]
