"""Every CLI's --help shows its defaults, and no ``(default: None)`` noise for flags that are unset."""

from __future__ import annotations

import importlib

import pytest

CLI_MODULES = (
    "train.cli",
    "train.qat",
    "train.prune",
    "export.onnx",
    "export.build_engine",
    "runtime.video",
    "calibration.cli",
    "dsrir.restore",
    "dsrir.evaluate",
)


@pytest.mark.parametrize("module_name", CLI_MODULES)
def test_help_lists_set_defaults_and_hides_unset_ones(module_name: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = importlib.import_module(module_name)
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere
    assert "(default: " in text
    assert "(default: None)" not in text
    assert "(default: False)" not in text
