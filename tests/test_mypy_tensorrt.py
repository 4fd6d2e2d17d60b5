"""The TensorRT-facing Python passes mypy against ``tensorrt-stubs`` (the 10.13 API), with the stubs really used.

TensorRT cannot be installed on our CPU machines, so type checking is how the builder, the loader and the
calibrator bridge meet the real API before a Jetson does. Two facts about ``tensorrt-stubs`` (all releases
on PyPI, 10.8 to 10.13) shape this test:

* its ``tensorrt`` folder has no ``py.typed``, so mypy ignores it as an installed package;
* ``tensorrt_bindings/tensorrt.pyi`` is not valid Python (pybind11-stubgen output: parameters named ``in``,
  parameters without a default after ones with a default), a blocking syntax error for mypy.

So the test copies the installed ``.pyi`` files to a temporary folder, repairs exactly those two things
(rename ``in`` -> ``in_``; give the trailing parameters ``= ...``), puts the folder on ``mypy_path`` and
silences errors *inside* the stubs only. A canary file misusing the API (``create_network(flags="x")``)
must be flagged, which proves the stubs are used rather than ``Any``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import REPO

CHECKED = [
    "export/build_engine.py",
    "dsrir/trt/engine.py",
    "export/engine/builder.py",
    "dsrir/trt/plugin.py",
    "export/engine/calibrator.py",
    "export/engine/torch_trt.py",
    "export/engine/plan.py",
    "export/engine/precision.py",
    "export/engine/shapes.py",
    "dsrir/trt/sidecar.py",
    "dsrir/trt/compat.py",
    "export/engine/graph.py",
    "export/engine/trtexec.py",
    "dsrir/trt/version.py",
    "dsrir/trt/gpu.py",
    "dsrir/trt/calib_cache.py",
    "runtime/backends/tensorrt_backend.py",
    "runtime/backends/trt_buffers.py",
]
CANARY = """
import tensorrt as trt


def misuse() -> None:
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    builder.create_network(flags="x")
    builder.create_builder_config().set_flag("FP16")
"""


def _stub_files() -> list[Path]:
    try:
        dist = importlib.metadata.distribution("tensorrt-stubs")
    except importlib.metadata.PackageNotFoundError:
        return []
    return [Path(str(dist.locate_file(f))) for f in dist.files or [] if str(f).endswith(".pyi")]


def _split_params(params: str) -> list[str]:
    """Split a parameter list on top-level commas (annotations nest brackets)."""
    parts, depth, current = [], 0, ""
    for char in params:
        depth += char in "[(" and 1 or 0
        depth -= char in "])" and 1 or 0
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current] if current.strip() else parts


def repair_def(line: str) -> str:
    """One stub ``def`` line made valid: ``in`` renamed, trailing parameters after a default given ``= ...``."""
    match = re.match(r"^(\s*def \w+\()(.*)(\)\s*(->.*)?:\s*(\.\.\.)?\s*)$", line)
    if not match:
        return line
    head, params, tail = match.group(1), match.group(2), match.group(3)
    fixed, seen_default, keyword_only = [], False, False
    for param in _split_params(params):
        name = param.strip()
        name = re.sub(r"^in(\s*:)", r"in_\1", name)
        if name.startswith("*"):
            keyword_only = True
        elif "=" in name:
            seen_default = True
        elif seen_default and not keyword_only:
            name += " = ..."
        fixed.append(name)
    return f"{head}{', '.join(fixed)}{tail}"


def repair_stub(text: str) -> str:
    return "\n".join(repair_def(line) if line.lstrip().startswith("def ") else line for line in text.splitlines())


@pytest.fixture(scope="module")
def mypy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str]:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install mypy); .ci/run installs it")
    stubs = _stub_files()
    if not stubs:
        pytest.skip("tensorrt-stubs is not installed (pip install --no-deps tensorrt-stubs); .ci/run installs it")
    work = tmp_path_factory.mktemp("mypy")
    stub_root = work / "stubs"
    for path in stubs:
        relative = Path(*path.parts[-2:])  # tensorrt/__init__.pyi, tensorrt_bindings/tensorrt.pyi, ...
        target = stub_root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        text = repair_stub(path.read_text(encoding="utf-8"))
        try:
            ast.parse(text, str(relative))
        except SyntaxError as exc:
            pytest.fail(f"tensorrt-stubs {relative} line {exc.lineno} still not valid Python after repair: {exc.msg}")
        target.write_text(text, encoding="utf-8")
    canary = work / "trt_canary.py"
    canary.write_text(CANARY, encoding="utf-8")
    config = work / "mypy.ini"
    config.write_text(
        "\n".join(
            [
                "[mypy]",
                f"mypy_path = {stub_root}",
                f"cache_dir = {work / 'cache'}",
                "strict = True",
                "disallow_subclassing_any = False",  # torch is skipped below, so torch.nn.Module is Any
                "follow_imports = silent",
                "[mypy-tensorrt,tensorrt.*,tensorrt_bindings,tensorrt_bindings.*]",
                "ignore_errors = True",
                "[mypy-torch_tensorrt,torch_tensorrt.*]",
                "ignore_missing_imports = True",
                "[mypy-torch,torch.*]",
                "follow_imports = skip",
                "",
            ]
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), "--no-error-summary", *CHECKED, str(canary)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result.returncode, result.stdout + result.stderr


def test_tensorrt_code_passes_mypy_against_the_stubs(mypy_run: tuple[int, str]) -> None:
    _, output = mypy_run
    ours = [line for line in output.splitlines() if line and "trt_canary.py" not in line]
    assert not ours, "mypy found problems in the TensorRT-facing code:\n" + "\n".join(ours)


def test_a_misuse_of_the_tensorrt_api_is_flagged(mypy_run: tuple[int, str]) -> None:
    code, output = mypy_run
    canary = [line for line in output.splitlines() if "trt_canary.py" in line]
    assert code == 1
    assert any("create_network" in line and '"str"' in line and '"int"' in line for line in canary), output
    assert any("set_flag" in line and "BuilderFlag" in line for line in canary), output


def test_stub_repair_keeps_valid_lines_and_fixes_the_two_known_defects() -> None:
    assert (
        repair_def("    def f(self, in: list[int], out: int) -> int:")
        == "    def f(self, in_: list[int], out: int) -> int:"
    )
    assert (
        repair_def("    def g(self, a: W = None, b: dict[str, tuple[int, int]] = None, c: int) -> X:")
        == "    def g(self, a: W = None, b: dict[str, tuple[int, int]] = None, c: int = ...) -> X:"
    )
    assert (
        repair_def("    def h(self, *, a: int = 1, b: int) -> None:")
        == "    def h(self, *, a: int = 1, b: int) -> None:"
    )
    assert repair_def("    x: int") == "    x: int"
