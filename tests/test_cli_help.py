"""Every CLI's --help (the toolkit's and the benchmark scripts') explains each flag and shows its defaults, with no
``(default: None)`` noise for flags that are unset."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path

import pytest

from dsrir.cli_help import DefaultsHelpFormatter
from tests.benchmarks.scripts import load_script
from tests.paths import REPO

CLI_MODULES = (
    "train.cli",
    "train.qat.cli",
    "train.prune.cli",
    "train.blend",
    "export.onnx.build",
    "export.build_engine",
    "export.triton",
    "runtime.video",
    "runtime.serve",
    "calibration.cli",
    "dsrir.restore",
    "dsrir.evaluate",
)


BENCHMARKS = sorted(path.stem for path in (REPO / "benchmarks").glob("*.py") if "argparse" in path.read_text())


def cli_main(name: str) -> Callable[[list[str]], object]:
    """A CLI's ``main(argv)``: a module of the toolkit, or ``benchmarks/NAME.py`` for a bare name."""
    return importlib.import_module(name).main if "." in name else load_script(name).main


@pytest.mark.parametrize("name", [*CLI_MODULES, *BENCHMARKS])
def test_help_explains_every_flag_lists_set_defaults_and_hides_unset_ones(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    parsers: list[argparse.ArgumentParser] = []
    parse_args = argparse.ArgumentParser.parse_args

    def recording(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> object:
        parsers.append(self)
        return parse_args(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", recording)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(name)(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    text = " ".join(out.split())  # argparse wraps lines anywhere
    assert "".join(str(REPO).split()) not in "".join(out.split())  # a default path as typed from the checkout
    assert "(default: " in text
    for unset in ("(default: None)", "(default: False)", "(default: [])"):
        assert unset not in text
    assert "(default: True)" not in text  # a --no-X flag is off unless given; "default: True" read as on
    listed = [action for action in parsers[0]._actions if action.help != argparse.SUPPRESS]
    assert [action.option_strings or action.dest for action in listed if not action.help] == []  # a flag, no word


def test_every_benchmark_with_a_command_line_is_covered() -> None:
    assert {"quality", "compare_quality", "speed", "streams", "tiling_blend", "activation_memory"} <= set(BENCHMARKS)


def test_zero_defaults_are_shown_though_zero_equals_false(capsys: pytest.CaptureFixture[str]) -> None:
    """``0 == False`` in Python: a seed or overlap of 0 is a real default, unlike an unset flag."""
    parser = argparse.ArgumentParser(prog="tool", formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="seed")
    parser.add_argument("--scale", type=float, default=0.0, help="scale")
    parser.add_argument("--fast", action="store_true", help="fast")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    parser.print_help()
    text = " ".join(capsys.readouterr().out.split())
    assert "seed (default: 0)" in text and "scale (default: 0.0)" in text
    assert "(default: False)" not in text and "no progress bars (default" not in text


def test_description_keeps_paragraphs_and_usage_examples_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="tool",
        description="First paragraph.\n\nSecond paragraph that\nwraps.\n\n"
        "    python tool.py --long-flag x \\\n        --more",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.print_help()
    text = capsys.readouterr().out
    assert "First paragraph.\n\nSecond paragraph that wraps.\n\n" in text
    assert "    python tool.py --long-flag x \\\n        --more\n" in text


def test_earlier_spellings_still_parse_but_are_not_listed(capsys: pytest.CaptureFixture[str]) -> None:
    """One spelling per concept in --help; commands written with the earlier one keep working."""
    from train.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["--save-dir", "runs"]).save_dir == parser.parse_args(["--output-dir", "runs"]).save_dir
    assert parser.parse_args([]).save_dir == parser.parse_args(["--output-dir", "experiments"]).save_dir  # no clash
    parser.print_help()
    text = capsys.readouterr().out
    assert "--output-dir" in text and "--save-dir" not in text


def test_a_default_in_the_checkout_shows_as_typed_from_its_root_and_others_as_given(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    parser = argparse.ArgumentParser(prog="tool", formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO / "weights" / "x%.onnx", help="model")
    parser.add_argument("--output", type=Path, default=tmp_path / "out.mp4", help="output")
    parser.add_argument("--name", default="weights", help="name")
    parser.print_help()
    text = "".join(capsys.readouterr().out.split())
    assert "model(default:weights/x%.onnx)" in text
    assert f"output(default:{tmp_path / 'out.mp4'})" in text and "name(default:weights)" in text
