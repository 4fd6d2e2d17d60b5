"""Issue 16, the CLI layer: every command turns what a user can act on into one ``error:`` line and its exit code
(``dsrir.cli.command``), refuses bad numbers in argparse, and reports success only for work that exists."""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import subprocess
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from calibration.ranges import Ranges
from dsrir.cli import EXTRAS, command, non_negative_int, positive_float, positive_int
from dsrir.errors import DSRIRError
from dsrir.onnx_file import load_onnx
from tests.paths import REPO, SHIPPED_CHECKPOINT, SHIPPED_ONNX

# The lean runtime install: neither PyTorch nor scikit-image (the train extra) can be imported.
LEAN = "import runpy, sys; sys.modules['torch'] = sys.modules['skimage'] = None; "


class OrtRuntimeException(Exception):
    """As ONNX Runtime's pybind RuntimeException: an Exception, not a RuntimeError."""


def _run(body: Callable[[], int], **options: object) -> int:
    @command(**options)  # type: ignore[arg-type]
    def main(argv: Sequence[str] | None = None) -> int:
        return body()

    return main([])


def _raise(exc: BaseException) -> Callable[[], int]:
    def body() -> int:
        raise exc

    return body


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    ("exc", "code", "words"),
    [
        (DSRIRError("--tile 0: expected a positive number"), 2, ["--tile 0"]),
        (OSError(errno.ENOSPC, "No space left on device", "/media/sd/out.mp4"), 2, ["/media/sd/out.mp4", "No space"]),
        (
            OSError(errno.EXDEV, "Invalid cross-device link", "a.tmp", None, "b.png"),
            2,
            ["a.tmp -> b.png", "cross-device"],
        ),
        (MemoryError(), 2, ["out of memory", "--tile"]),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB"), 2, ["9 GB", "--tile"]),
        (OrtRuntimeException("Failed to allocate memory for requested buffer of size 9e9"), 2, ["9e9", "--tile"]),
        (KeyboardInterrupt(), 130, ["interrupted"]),
        (ModuleNotFoundError("No module named 'torch'", name="torch"), 2, ["torch", "pip install -e '.[train]'"]),
        (ModuleNotFoundError("no cv2", name="cv2.gapi"), 2, ["cv2 is not installed: pip install -e ."]),
        (ModuleNotFoundError("no pytriton", name="pytriton"), 2, ["pip install nvidia-pytriton"]),
    ],
)
def test_what_a_user_can_act_on_is_one_line_and_its_exit_code(
    capsys: pytest.CaptureFixture[str], exc: BaseException, code: int, words: list[str]
) -> None:
    assert _run(_raise(exc), memory_hint="use --tile 512") == code
    line = _one_error_line(capsys.readouterr().err)
    assert all(word in line for word in words), line


def test_failures_are_exit_1_and_bugs_keep_their_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    class CheckFailed(Exception):
        pass

    assert _run(_raise(CheckFailed("parity check failed")), failed=(CheckFailed,)) == 1
    assert _one_error_line(capsys.readouterr().err) == "error: parity check failed"
    assert _run(_raise(ValueError("bad frame")), worker_errors=True) == 1  # a pipeline's worker, re-raised
    assert _one_error_line(capsys.readouterr().err) == "error: ValueError: bad frame"
    with pytest.raises(ValueError):  # anywhere else a bug: the traceback is what a report needs
        _run(_raise(ValueError("bug")))
    with pytest.raises(ModuleNotFoundError):  # one of our own modules missing is a broken checkout, not a pip hint
        _run(_raise(ModuleNotFoundError("no", name="dsrir.nothing")))
    with pytest.raises(SystemExit):  # argparse's usage error passes through
        _run(_raise(SystemExit(2)))


def test_warnings_are_one_line_while_the_command_runs() -> None:
    before = warnings.formatwarning
    seen: list[str] = []

    def body() -> int:
        seen.append(warnings.formatwarning(UserWarning("weights differ"), UserWarning, "x.py", 3))
        return 0

    assert _run(body) == 0
    assert seen == ["warning: weights differ\n"] and warnings.formatwarning is before


def test_install_hints_follow_pyproject_extras() -> None:
    """``EXTRAS`` names, for each optional import, the extra of pyproject.toml that installs it."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lists = {"": project["dependencies"], **project["optional-dependencies"]}
    pip_names = {"cv2": "opencv-python-headless", "skimage": "scikit-image"}
    for module, extra in EXTRAS.items():
        wanted = pip_names.get(module, module).replace("_", "-")
        assert any(item.startswith(wanted) for item in lists[extra]), (module, extra)


def test_numeric_flag_types_refuse_zero_negative_and_nan(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="cmd")
    parser.add_argument("--batch-size", type=positive_int)
    parser.add_argument("--learning-rate", type=positive_float)
    parser.add_argument("--workers", type=non_negative_int)
    args = parser.parse_args(["--batch-size", "2", "--learning-rate", "1e-4", "--workers", "0"])
    assert (args.batch_size, args.learning_rate, args.workers) == (2, 1e-4, 0)
    for argv, words in (
        (["--batch-size", "0"], "argument --batch-size: '0': expected a whole number >= 1"),
        (["--batch-size", "2.5"], "argument --batch-size: '2.5': expected a whole number >= 1"),
        (["--learning-rate", "-1"], "argument --learning-rate: '-1': expected a number > 0"),
        (["--learning-rate", "nan"], "argument --learning-rate: 'nan': expected a number > 0"),
        (["--workers", "-1"], "argument --workers: '-1': expected a whole number >= 0"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(argv)
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == f"cmd: error: {words}"


def test_restore_and_evaluate_on_the_lean_install_say_what_to_install(tmp_path: Path) -> None:
    """``python -m dsrir.restore`` without PyTorch: the pip command, not ``ModuleNotFoundError: torch``."""
    for module, args in (
        ("dsrir.restore", [str(tmp_path), "-o", str(tmp_path / "out"), "--checkpoint", str(SHIPPED_CHECKPOINT)]),
        ("dsrir.evaluate", ["--checkpoint", str(SHIPPED_CHECKPOINT), "--synthetic", str(tmp_path)]),
    ):
        code = LEAN + f"sys.argv[1:] = {args!r}; runpy.run_module({module!r}, run_name='__main__')"
        result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        line = _one_error_line(result.stderr)
        assert "pip install -e '.[train]'" in line, line


@pytest.mark.parametrize(
    ("module", "argv"),
    [
        ("train.cli", ["--batch-size", "0"]),  # ZeroDivisionError mid-setup before
        ("train.cli", ["--learning-rate", "-1"]),  # ValueError from AdamW before
        ("train.cli", ["--epochs", "0"]),  # trained nothing and named a model_latest.pth that did not exist
        ("train.cli", ["--max-minutes", "0"]),
        ("train.prune.cli", ["--checkpoint", "w.pth", "--target-flops", "0.5", "--batch-size", "0"]),
        ("train.qat.cli", ["--checkpoint", "w.pth", "--ranges", "r.json", "--onnx", "m.onnx", "--learning-rate", "0"]),
        ("dsrir.restore", ["in", "-o", "out", "--checkpoint", "w.pth", "--max-memory", "0"]),
        ("dsrir.evaluate", ["--checkpoint", "w.pth", "--tile", "-8"]),
        ("dsrir.data.make_csv", ["--train-dir", "d", "--rain-repeat", "0"]),
        ("calibration.cli", ["--onnx", "m.onnx", "--synthetic", "d", "--count", "0"]),
        ("runtime.video", ["--input-rate", "0"]),
        ("runtime.video", ["--max-frames", "0"]),  # moved from test_runtime_pipeline (was a DSRIRError line)
        ("runtime.video", ["--max-batch", "0"]),  # moved from test_multistream
        ("runtime.video", ["--batch-wait-ms", "-1"]),
        ("runtime.serve", ["--model", "m.onnx", "--max-batch-size", "0"]),
        ("export.triton", ["--model", "m.onnx", "--max-queue-delay-us", "-1"]),
    ],
)
def test_bad_numbers_are_argparse_usage_errors_before_any_work(
    module: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    flag, value = argv[-2:]  # the bad one is last
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"error: argument {flag}: {value!r}: expected" in last, last


def test_a_truncated_onnx_is_one_line_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A cut-off download: protobuf's DecodeError said neither which file nor what was wrong with it."""
    from runtime.video import main as video_main

    data = SHIPPED_ONNX.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 3])
    assert video_main(["--model", str(cut), "--input", "demo", "--no-output", "--no-progress"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"--model {cut}: not a readable ONNX model (truncated, or not ONNX)" in line, line
    with pytest.raises(DSRIRError, match=f"^--onnx {tmp_path / 'gone.onnx'}: no such ONNX file$"):
        load_onnx(tmp_path / "gone.onnx", "--onnx")


def test_qat_given_a_calibration_manifest_for_ranges_says_which_file_it_wants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--ranges manifest.json`` (the file beside ranges.json) was ``TypeError: Ranges.__init__() got an unexpected
    keyword argument 'kind'``."""
    from train.qat.cli import main as qat_main

    manifest = tmp_path / "manifest.json"
    for fmt in (1, 2):  # format 1: manifests of earlier calibration runs
        manifest.write_text(json.dumps({"format": fmt, "kind": "synthetic", "size": [32, 32], "frames": []}))
        argv = ["--checkpoint", str(SHIPPED_CHECKPOINT), "--ranges", str(manifest), "--onnx", str(SHIPPED_ONNX)]
        assert qat_main([*argv, "--synthetic", str(tmp_path), "--device", "cpu"]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert f"--ranges {manifest}: a calibration manifest, not a ranges file" in line and "ranges.json" in line
    for text in ("[1, 2]", '{"format": 1, "calibrator": "max"}'):
        manifest.write_text(text)
        with pytest.raises(DSRIRError, match="not a ranges file"):
            Ranges.load(manifest, "--ranges")


# --- runtime.video: success only for real work, messages that name what was typed ----------------------------------


def _last_error_line(err: str) -> str:
    """runtime.video prints what it runs and a statistics table on stderr; the one ``error:`` line ends it."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert sum(line.startswith("error:") for line in lines) == 1 and "Traceback" not in err, err
    return lines[-1]


def _video(argv: list[str]) -> int:
    from runtime.video import main as video_main

    return video_main([*argv, "--model", str(SHIPPED_ONNX), "--no-progress"])


def _clip(path: Path, frames: int) -> Path:
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (32, 24))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    writer.release()
    return path


def test_a_source_with_no_readable_frame_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Three unreadable images: 0 frames restored and exit 0 before."""
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        (bad / name).write_bytes(b"not a png")
    assert _video(["--input", str(bad), "--output", f"{tmp_path / 'out'}/"]) == 2
    line = _last_error_line(capsys.readouterr().err)
    assert f"--input {str(bad)!r}: no readable frame (3 unreadable skipped)" in line, line
    assert not (tmp_path / "out").exists()
    good = _clip(tmp_path / "good.avi", 2)  # several inputs: the empty one is named, the other one still runs
    assert _video(["--input", str(good), "--input", str(bad), "--no-output"]) == 1
    err = capsys.readouterr().err
    assert f"error: stream 1 ({bad}): no readable frame (3 unreadable skipped)" in err, err


def test_no_output_with_an_output_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--no-output --output x.mp4`` wrote nothing without a word."""
    clip = _clip(tmp_path / "clip.avi", 2)
    assert _video(["--input", str(clip), "--no-output", "--output", str(tmp_path / "x.mp4")]) == 2
    line = _last_error_line(capsys.readouterr().err)
    assert "--no-output" in line and "--output" in line and "x.mp4" in line, line


def test_camera_errors_name_the_input_as_typed(capsys: pytest.CaptureFixture[str]) -> None:
    if Path("/dev/video97").exists():
        pytest.skip("this machine has a /dev/video97")
    assert _video(["--input", "cam97", "--no-output"]) == 2
    line = _last_error_line(capsys.readouterr().err)
    assert line.startswith("error: --input 'cam97': no camera at /dev/video97"), line


def test_a_truncated_clip_reports_the_frames_missing_from_its_frame_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 40-frame AVI cut in half: 19 frames read, 21 missing, and the run said 'skipped 5'."""
    import cv2

    whole = _clip(tmp_path / "whole.avi", 40).read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole[: len(whole) // 2])
    capture = cv2.VideoCapture(str(cut))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    readable = 0
    while capture.read()[0]:
        readable += 1
    capture.release()
    assert count == 40 and 0 < readable < 40  # the container still says 40
    stats = tmp_path / "stats.json"
    assert _video(["--input", str(cut), "--no-output", "--stats", str(stats)]) == 0
    summary = json.loads(stats.read_text())
    assert (summary["frames_in"], summary["skipped"]) == (readable, count - readable), summary
    assert f"skipped {count - readable}," in capsys.readouterr().err


# --- train: success only for work that exists --------------------------------------------------------------------


def test_a_train_run_with_nothing_left_to_train_is_an_error(
    tmp_path: Path, clean_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Resuming a finished run into a new session trained nothing and printed a model_latest.pth that did not exist
    (exit 0)."""
    from tests.train.test_train import tiny_args
    from train.cli import main as train_main

    assert train_main(tiny_args(clean_dir, tmp_path, "done")) == 0
    finished = tmp_path / "all_in_one" / "models" / "done" / "model_latest.pth"
    capsys.readouterr()
    assert train_main([*tiny_args(clean_dir, tmp_path, "more"), "--resume", str(finished)]) == 2
    out, err = capsys.readouterr()
    line = _last_error_line(err)
    assert "nothing to train: the checkpoint resumed from already completed 1 epoch(s) of --epochs 1" in line, line
    assert f"resuming from {finished}" in out and "latest checkpoint" not in out
    assert not (tmp_path / "all_in_one" / "models" / "more").exists()


def test_the_train_summary_names_only_a_checkpoint_that_exists(tmp_path: Path) -> None:
    """Stopped before the first step: no checkpoint, so none is named and no --resume is suggested."""
    from train.cli import summary_rows
    from train.config import TrainConfig
    from train.trainer import TrainSummary

    missing = tmp_path / "model_latest.pth"
    rows = dict(summary_rows(TrainSummary(0, 0, None, missing, True, 1.0), TrainConfig(epochs=3)))
    assert rows["latest checkpoint"] == "none written (no step was trained)" and "resume with" not in rows
    missing.write_bytes(b"saved")
    rows = dict(summary_rows(TrainSummary(0, 5, None, missing, True, 1.0), TrainConfig(epochs=3)))
    assert rows["latest checkpoint"] == str(missing) and rows["resume with"] == "python -m train ... --resume"


def test_an_os_error_in_a_command_is_one_line_with_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """export.triton with --output-dir under a file: a FileExistsError/NotADirectoryError traceback before."""
    pytest.importorskip("tritonclient.grpc", reason="export.triton builds its config with tritonclient")
    from export.triton import main as triton_main

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert triton_main(["--model", str(SHIPPED_ONNX), "--output-dir", str(blocker / "repo")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {blocker}") and ("exists" in line or "Not a directory" in line), line


# --- one spelling per concept (issue 18) -------------------------------------------------------------------------


def test_every_frame_size_flag_is_width_x_height() -> None:
    """export.onnx --check-size was HxW while calibration --size/--crop are WxH."""
    from calibration.cli import parse_args as calibration_args
    from export.onnx.build import DEFAULT_CHECK_SIZE
    from export.onnx.build import parse_args as export_args

    assert export_args(["--checkpoint", "w.pth", "--check-size", "96x64"]).check_size == (64, 96)  # (H, W) inside
    assert export_args(["--checkpoint", "w.pth"]).check_size == DEFAULT_CHECK_SIZE
    assert calibration_args(["--onnx", "m.onnx", "--synthetic", "d", "--size", "96x64"]).size == "96x64"
    # calibration's earlier --trt-version still works, unlisted in --help
    args = calibration_args(["--onnx", "m.onnx", "--synthetic", "d", "--trt-version", "8.6"])
    assert args.target_trt == "8.6"


def test_calibration_help_lists_one_spelling_of_the_target(capsys: pytest.CaptureFixture[str]) -> None:
    from calibration.cli import parse_args as calibration_args

    with pytest.raises(SystemExit):
        calibration_args(["--help"])
    out = capsys.readouterr().out
    assert "--target-trt" in out and "--trt-version" not in out
