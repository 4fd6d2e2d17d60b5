"""Loading a ``benchmarks/*.py`` (or ``scripts/*.py``) script as a module: they are scripts, not a package users
import."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.paths import REPO


def load_script(name: str, folder: str = "benchmarks") -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{folder}_{name}", REPO / folder / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # their dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
