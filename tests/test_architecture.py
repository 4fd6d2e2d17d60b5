"""The package layering holds, and every ``python -m`` command of the README still names a runnable module.

The contracts live in pyproject's ``[tool.importlinter]`` (the comment above it says why the layers are in that
order): stages above ``dsrir`` (train, then calibration | export | runtime, independent of each other), ``dsrir``
importing no stage, and the lean runtime importing no torch. CI runs only pytest, so this test is what fails CI on
a broken contract; its message is ``lint-imports``' report, which names the offending import chain.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest

from tests.paths import REPO

LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"


def test_import_contracts_are_kept() -> None:
    pytest.importorskip("importlinter", reason="import-linter is in the test extra: pip install -e '.[test]'")
    result = subprocess.run([sys.executable, "-c", LINT], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_commands_name_runnable_modules() -> None:
    modules = sorted(set(re.findall(r"python -m ([\w.]+)", (REPO / "README.md").read_text(encoding="utf-8"))))
    assert "export.onnx" in modules and "export.build_engine" in modules
    for name in modules:
        spec = importlib.util.find_spec(name)
        assert spec is not None, f"README runs python -m {name}, which does not exist"
        if spec.submodule_search_locations is not None:  # a package runs its __main__
            assert importlib.util.find_spec(f"{name}.__main__") is not None, f"python -m {name}: no {name}.__main__"


def test_export_onnx_runs_as_a_package() -> None:
    """``export.onnx`` became a package; ``python -m export.onnx`` is still the exporter's CLI."""
    result = subprocess.run(
        [sys.executable, "-m", "export.onnx", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout.startswith("usage: python -m export.onnx"), result.stderr
