"""Issue 16, data loss: no command overwrites its inputs, a failed write (a full disk) publishes nothing and says
where and why, a negative tile overlap is refused, and an image-folder output keeps every frame's size and name.

Every test here failed on the code before the fix (exit 0 with the data gone, or an error without the path).
The full-disk tests mount a 1 MiB tmpfs and are skipped, with the reason, where mounting is not permitted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from dsrir.data import make_csv
from dsrir.errors import DSRIRError
from dsrir.restore import main as restore_main
from runtime.video import main as video_main
from tests.paths import REPO, SHIPPED_CHECKPOINT, SHIPPED_ONNX


def _noise(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _clip(path: Path, frames: int = 12, size: tuple[int, int] = (64, 48)) -> bytes:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(_noise(size[1], size[0], i))
    writer.release()
    return path.read_bytes()


def _images(folder: Path, sizes: dict[str, tuple[int, int]]) -> dict[str, bytes]:
    """PNG files of the given (height, width); returns their bytes to compare with afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, (height, width)) in enumerate(sizes.items()):
        cv2.imwrite(str(folder / name), _noise(height, width, i))
    return {name: (folder / name).read_bytes() for name in sizes}


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _error_line(err: str) -> str:
    """The last stderr line, which must be the one ``error:`` line (a progress line may precede it)."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    assert sum(line.startswith("error:") for line in lines) == 1, err
    return lines[-1]


def _video(argv: list[str]) -> int:
    return video_main([*argv, "--model", str(SHIPPED_ONNX), "--no-progress"])


# --- outputs never overwrite inputs ------------------------------------------------------------------------------


def test_runtime_video_refuses_to_write_over_its_input_clip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = tmp_path / "clip.avi"
    original = _clip(clip)
    assert _video(["--input", str(clip), "--output", str(clip), "--max-frames", "3"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "--output" in line and str(clip) in line and "input" in line
    assert clip.read_bytes() == original and sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi"]
    (tmp_path / "link.avi").symlink_to(clip)  # another spelling of the same file
    assert _video(["--input", str(clip), "--output", str(tmp_path / "link.avi")]) == 2
    assert "link.avi" in _error_line(capsys.readouterr().err) and clip.read_bytes() == original


def test_runtime_video_refuses_an_image_folder_written_into_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = tmp_path / "frames"
    original = _images(frames, {"a.png": (24, 32), "b.png": (24, 32)})
    for argv in (
        ["--input", str(frames), "--output", f"{frames}/"],
        ["--input", str(frames), "--output", f"{frames}/restored/"],
        ["--input", str(frames), "--output", f"{frames}/%06d.png"],
        ["--input", str(frames / "*.png"), "--output", f"{frames}/"],  # a glob: the outputs keep the inputs' names
        ["--input", str(frames / "a.png"), "--output", f"{frames}/"],
    ):
        assert _video(argv) == 2, argv
        line = _error_line(capsys.readouterr().err)
        assert str(frames) in line and "input" in line, line
        assert _contents(frames) == original and not (frames / "restored").exists()


def test_restore_refuses_to_write_over_its_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = tmp_path / "photos"
    original = _images(photos, {"a.png": (20, 24), "b.png": (20, 24)})
    for argv in (
        [str(photos), "-o", str(photos)],  # the folder itself
        [str(photos / "a.png"), "-o", str(photos)],  # a file in the output folder, same name
        [str(photos), "-o", str(photos / "restored")],  # inside an input folder
    ):
        assert restore_main([*argv, "--checkpoint", str(SHIPPED_CHECKPOINT), "--device", "cpu"]) == 2, argv
        line = _error_line(capsys.readouterr().err)
        assert str(photos) in line and "input" in line, line
        assert _contents(photos) == original and not (photos / "restored").exists()


@pytest.fixture
def fake_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout with a shipped datasets/train/train_rain.csv, as the working directory (the real one is never
    written by a test)."""
    checkout = tmp_path / "checkout"
    shipped = checkout / "datasets" / "train"
    shipped.mkdir(parents=True)
    for mode in ("rain", "noise"):
        (shipped / f"train_{mode}.csv").write_text("".join(f"gt/{i}.png,rainy/{i}.png\n" for i in range(50)))
    monkeypatch.setattr(make_csv, "SHIPPED_CSV_DIR", shipped, raising=False)
    monkeypatch.chdir(checkout)
    root = tmp_path / "train"
    for name in ("norain-1.png", "norain-2.png"):
        (root / "Rain100L/train/gt").mkdir(parents=True, exist_ok=True)
        (root / "Rain100L/train/rainy").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "Rain100L/train/gt" / name), _noise(8, 8, 0))
        cv2.imwrite(str(root / "Rain100L/train/rainy" / name.replace("norain", "rain")), _noise(8, 8, 1))
    return checkout


def test_make_csv_never_replaces_a_shipped_csv_without_force(
    fake_checkout: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = fake_checkout / "datasets" / "train" / "train_rain.csv"
    original = shipped.read_text()
    train_dir = str(tmp_path / "train")
    assert make_csv.main(["--train-dir", train_dir, "--mode", "rain"]) == 2  # the default --output is the shipped CSV
    line = _error_line(capsys.readouterr().err)
    assert "train_rain.csv" in line and "--force" in line and "--output" in line
    assert shipped.read_text() == original
    (tmp_path / "mine.csv").symlink_to(shipped)
    assert make_csv.main(["--train-dir", train_dir, "--mode", "rain", "--output", str(tmp_path / "mine.csv")]) == 2
    assert shipped.read_text() == original
    capsys.readouterr()
    # Elsewhere it writes as before; with --force it replaces the shipped file (atomically) and says so.
    assert make_csv.main(["--train-dir", train_dir, "--mode", "rain", "--output", str(tmp_path / "new.csv")]) == 0
    assert make_csv.main(["--train-dir", train_dir, "--mode", "rain", "--rain-repeat", "1", "--force"]) == 0
    assert shipped.read_text() == "Rain100L/train/gt/norain-1.png,Rain100L/train/rainy/rain-1.png\n" + (
        "Rain100L/train/gt/norain-2.png,Rain100L/train/rainy/rain-2.png\n"
    )
    assert "replaced the shipped" in capsys.readouterr().out


def test_make_csv_knows_the_real_shipped_csvs() -> None:
    for mode in make_csv.MODES:
        csv = REPO / "datasets" / "train" / f"train_{mode}.csv"
        assert make_csv.shipped_csv(csv) and make_csv.shipped_csv(Path(os.path.relpath(csv)))
    assert not make_csv.shipped_csv(REPO / "datasets" / "train" / "train_mine.csv")


# --- a negative tile overlap ---------------------------------------------------------------------------------------


def test_negative_or_too_large_tile_overlap_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = tmp_path / "in"
    _images(photos, {"big.png": (150, 140)})
    out = tmp_path / "out"
    for overlap in ("-40", "64"):
        argv = [str(photos), "-o", str(out), "--checkpoint", str(SHIPPED_CHECKPOINT), "--tile", "64"]
        argv += ["--tile-overlap", overlap]
        assert restore_main([*argv, "--device", "cpu"]) == 2
        line = _error_line(capsys.readouterr().err)
        assert f"--tile-overlap {overlap}" in line and "0 <=" in line
        assert not out.exists()

    from dsrir.model import DSRIR, PRESETS, Restorer

    model = DSRIR(PRESETS["dsrir-xs"])
    with pytest.raises(DSRIRError, match="--tile-overlap -1"):
        Restorer(model, tile=64, tile_overlap=-1)
    with pytest.raises(DSRIRError, match="--tile-overlap -1"):  # tiles sized by the budget too
        Restorer(model, tile_overlap=-1, max_memory=10**9)
    with pytest.raises(DSRIRError, match=r"--tile-overlap 64: expected 0 <= overlap < tile \(64\)"):
        Restorer(model, tile=64, tile_overlap=64)


# --- an image-folder output keeps sizes and names --------------------------------------------------------------------


def test_image_folder_output_keeps_each_frames_size_and_name(tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    sizes = {"small.png": (7, 9), "wide.jpg": (16, 40), "tall.png": (30, 12)}
    _images(frames, sizes)
    out = tmp_path / "out"
    assert _video(["--input", str(frames), "--output", f"{out}/"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(sizes)
    for name, (height, width) in sizes.items():
        assert cv2.imread(str(out / name)).shape == (height, width, 3), name


# --- full disk ---------------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB filesystem (tmpfs), so a write fails with ENOSPC the way a full SD card does."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if shutil.which("mount") is None or not hasattr(os, "statvfs"):
        pytest.skip("full-disk test: no mount(8) on this machine")
    command = ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"full-disk test: mounting a tmpfs is not permitted here ({result.stderr.strip()})")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "--lazy", str(mount_point)], capture_output=True, check=False)  # a file held open


def _fill(folder: Path, leave: int) -> None:
    """Leave about ``leave`` bytes free on the filesystem holding ``folder``."""
    stat = os.statvfs(folder)
    (folder / "filler").write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))


def _photos_and_an_earlier_output_on_a_full_disk(
    small_disk: Path, photos: Path, prefix: str, count: int
) -> tuple[Path, Path, bytes]:
    """``count`` 64x96 PNG photos ``{prefix}{i}.png`` in ``photos``; an output folder on the small disk holding an
    earlier run's image under the last photo's name; then the disk filled. Returns the folder, that image, its bytes."""
    _images(photos, {f"{prefix}{i}.png": (64, 96) for i in range(count)})
    out = small_disk / "out"
    out.mkdir()
    earlier = out / f"{prefix}{count - 1}.png"
    cv2.imwrite(str(earlier), _noise(8, 8, 99))  # from an earlier run
    before = earlier.read_bytes()
    _fill(small_disk, leave=12 * 1024)
    return out, earlier, before


def _refused_for_the_full_disk(err: str, out: Path, earlier: Path, before: bytes) -> None:
    """One error line naming the output folder and the full disk; the earlier image intact; no temporary left."""
    line = _error_line(err)
    assert str(out) in line and "No space left on device" in line, line
    assert earlier.read_bytes() == before
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_full_disk_video_output_is_an_error_and_publishes_nothing(
    small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = tmp_path / "clip.avi"
    _clip(clip, frames=40, size=(96, 64))
    earlier = small_disk / "out.mp4"
    _clip(small_disk / "earlier.avi", frames=2)
    os.replace(small_disk / "earlier.avi", earlier)  # an earlier run's file, to be left as it is
    before = earlier.read_bytes()
    _fill(small_disk, leave=12 * 1024)
    assert _video(["--input", str(clip), "--output", str(earlier)]) != 0
    line = _error_line(capsys.readouterr().err)
    assert str(earlier) in line and "No space left on device" in line, line
    assert earlier.read_bytes() == before
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "out.mp4"]  # no temporary left behind


def test_full_disk_image_output_is_an_error_naming_the_file(
    small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = tmp_path / "frames"
    out, earlier, before = _photos_and_an_earlier_output_on_a_full_disk(small_disk, frames, "f", 6)
    assert _video(["--input", str(frames), "--output", f"{out}/"]) != 0
    _refused_for_the_full_disk(capsys.readouterr().err, out, earlier, before)
    for path in out.iterdir():  # whatever was published is complete
        assert cv2.imread(str(path)) is not None, path.name


def test_full_disk_restore_is_one_line_naming_the_file(
    small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    out, earlier, before = _photos_and_an_earlier_output_on_a_full_disk(small_disk, photos, "p", 3)
    assert restore_main([str(photos), "-o", str(out), "--checkpoint", str(SHIPPED_CHECKPOINT), "--device", "cpu"]) == 2
    _refused_for_the_full_disk(capsys.readouterr().err, out, earlier, before)


def test_export_onnx_refuses_to_overwrite_its_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``export.onnx --checkpoint w.safetensors --output w.safetensors`` replaced the trained weights with ONNX."""
    from dsrir.checkpoint import official_checkpoint, save_pth
    from dsrir.model import DSRIR, PRESETS
    from export.onnx.build import main as export_main

    weights = tmp_path / "w.pth"
    save_pth(weights, official_checkpoint(DSRIR(PRESETS["dsrir-xs"]), "dsrir-xs", epoch=1, mode="all_in_one"))
    before = weights.read_bytes()
    assert export_main(["--checkpoint", str(weights), "--output", str(weights), "--check-size", "none"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "an output may not overwrite an input" in lines[0], lines
    assert weights.read_bytes() == before


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


def test_full_disk_checkpoints_are_one_error_naming_the_file(small_disk: Path) -> None:
    """``torch.save`` on a full disk raises a RuntimeError, not an OSError: the checkpoint is serialised in memory
    and written with a checked write instead, so the error names the file and the cause."""
    from dsrir.checkpoint import official_checkpoint, save_pth, save_safetensors
    from dsrir.model import DSRIR, PRESETS

    model = DSRIR(PRESETS["dsrir-xs"])  # 4.6 MB of weights on a 1 MiB disk
    targets = {"model_latest.pth": b"an earlier checkpoint", "w.safetensors": b"earlier weights"}
    for name, content in targets.items():
        (small_disk / name).write_bytes(content)
    saves = {
        "model_latest.pth": lambda path: save_pth(path, official_checkpoint(model, "dsrir-xs", epoch=1)),
        "w.safetensors": lambda path: save_safetensors(path, model, "dsrir-xs"),
    }
    for name, save in saves.items():
        with pytest.raises(DSRIRError) as info:
            save(small_disk / name)
        message = str(info.value)
        assert str(small_disk / name) in message and "No space left on device" in message and "\n" not in message
    assert _contents(small_disk) == targets  # earlier files intact, no temporary left


def test_full_disk_during_training_is_one_line_and_publishes_nothing(
    small_disk: Path, clean_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from train.cli import main as train_main

    argv = [
        "--synthetic",
        str(clean_dir),
        "--preset",
        "dsrir-xs",
        "--epochs",
        "1",
        "--epoch-chg",
        "1",
        "--patch-size",
        "32",
    ]
    argv += ["--batch-size", "2", "--samples-per-epoch", "2", "--workers", "0", "--val-epochs", "100", "--val-size"]
    argv += ["32", "--device", "cpu", "--save-dir", str(small_disk), "--session", "run", "--no-progress"]
    assert train_main(argv) != 0
    line = _error_line(capsys.readouterr().err)  # after a warning that VGG19 weights are not installed
    models = small_disk / "all_in_one" / "models" / "run"
    assert str(models) in line and "No space left on device" in line, line
    assert not [p for p in small_disk.rglob("*") if p.suffix == ".pth" or ".tmp" in p.name]


def test_full_disk_export_onnx_is_one_line_and_keeps_the_earlier_file(
    small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from export.onnx.build import main as export_main

    output = small_disk / "model.onnx"
    output.write_bytes(b"an earlier export")
    code = export_main(["--checkpoint", str(SHIPPED_CHECKPOINT), "--output", str(output), "--check-size", "none"])
    assert code != 0
    line = _one_error_line(capsys.readouterr().err)
    assert str(output) in line and "No space left on device" in line, line
    assert _contents(small_disk) == {"model.onnx": b"an earlier export"}
