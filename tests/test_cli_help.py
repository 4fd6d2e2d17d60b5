"""Every CLI's --help (the toolkit's, the benchmark and maintenance scripts') explains each flag and shows its
defaults, with no ``(default: None)`` noise for flags that are unset; every flag the READMEs write exists."""

from __future__ import annotations

import argparse
import importlib
import re
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
    "dsrir.data.make_csv",
    "runtime.make_demo",
)


SCRIPTS = sorted(
    f"{path.parent.name}/{path.stem}"
    for folder in ("benchmarks", "scripts")
    for path in (REPO / folder).glob("*.py")
    if "argparse" in path.read_text()
)


def cli_main(name: str) -> Callable[[list[str]], object]:
    """A CLI's ``main(argv)``: a module of the toolkit, or a script for ``benchmarks/NAME`` or ``scripts/NAME``."""
    if "/" in name:
        folder, stem = name.split("/")
        return load_script(stem, folder).main
    return importlib.import_module(name).main


def help_parser(name: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    """Run ``name --help`` (it must exit 0) and return the parser its ``main`` built."""
    parsers: list[argparse.ArgumentParser] = []
    parse_args = argparse.ArgumentParser.parse_args

    def recording(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> object:
        parsers.append(self)
        return parse_args(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", recording)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(name)(["--help"])
    assert exit_info.value.code == 0
    return parsers[0]


@pytest.mark.parametrize("name", [*CLI_MODULES, *SCRIPTS])
def test_help_explains_every_flag_lists_set_defaults_and_hides_unset_ones(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = help_parser(name, monkeypatch)
    out = capsys.readouterr().out
    text = " ".join(out.split())  # argparse wraps lines anywhere
    assert "".join(str(REPO).split()) not in "".join(out.split())  # a default path as typed from the checkout
    assert "(default: " in text
    for unset in ("(default: None)", "(default: False)", "(default: [])"):
        assert unset not in text
    assert "(default: True)" not in text  # a --no-X flag is off unless given; "default: True" read as on
    listed = [action for action in parser._actions if action.help != argparse.SUPPRESS]
    assert [action.option_strings or action.dest for action in listed if not action.help] == []  # a flag, no word


def test_every_script_with_a_command_line_is_covered() -> None:
    benchmarks = {"quality", "compare_quality", "speed", "streams", "tiling_blend", "activation_memory"}
    assert {f"benchmarks/{name}" for name in benchmarks} | {"scripts/ship_weights", "scripts/fetch_photos"} <= set(
        SCRIPTS
    )


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


DOCS = sorted({REPO / "README.md", *REPO.glob("*/README.md")})
PACKAGES = ("dsrir", "train", "export", "runtime", "calibration")
COMMAND = re.compile(r"python (?:-m ([\w.]+)|((?:benchmarks|scripts)/[a-z_]+)\.py)([^\n`|;&#]*)")


def documented_flags() -> dict[str, dict[str, str]]:
    """The flags each CLI is given in the READMEs' commands (continuation lines joined), with a README writing each."""
    found: dict[str, dict[str, str]] = {}
    for doc in DOCS:
        text = re.sub(r"\\\n\s*", " ", doc.read_text(encoding="utf-8"))
        for module, script, rest in COMMAND.findall(text):
            if module and module.split(".")[0] not in PACKAGES:
                continue  # python -m pip, pytest, venv: not ours
            name = script or cli_of_module(module)
            for flag in re.findall(r"(?<![\w-])--[a-z][\w-]*", rest):
                found.setdefault(name, {}).setdefault(flag, doc.relative_to(REPO).as_posix())
    return found


def cli_of_module(module: str) -> str:
    """The module whose ``main`` ``python -m MODULE`` runs: a package's ``__main__`` imports it."""
    main_file = REPO.joinpath(*module.split("."), "__main__.py")
    if not main_file.is_file():
        return module
    imported = re.search(r"^from ([\w.]+) import main$", main_file.read_text(), re.MULTILINE)
    assert imported, f"{main_file} does not import a main"
    return imported.group(1)


DOCUMENTED = documented_flags()


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_every_flag_a_readme_writes_exists_under_that_spelling(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A renamed or removed flag leaves no README command that would fail (argparse would take a prefix: not here)."""
    parser = help_parser(name, monkeypatch)
    spellings = set(parser._option_string_actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            spellings.update(flag for sub in action.choices.values() for flag in sub._option_string_actions)
    unknown = {flag: doc for flag, doc in DOCUMENTED[name].items() if flag not in spellings}
    assert unknown == {}, f"{name}: flags written in a README that its parser lacks"


def test_readme_commands_are_found() -> None:
    """The command pattern still matches the READMEs' commands (an empty scan would pass the test above vacuously)."""
    assert {"runtime.video", "export.build_engine", "train.cli", "benchmarks/quality"} <= set(DOCUMENTED)
    assert "--precision" in DOCUMENTED["export.build_engine"] and "--input" in DOCUMENTED["runtime.video"]
