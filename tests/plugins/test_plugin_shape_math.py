"""The plugin's size arithmetic (plugins/patchAttention/patchAttentionShapeMath.h), compiled and run on the CPU.

The header decides the TensorRT plugin's workspace (from a profile's kMAX N and C, whatever H and W) and the cell
limit (fewer than 2^31 cells) that configurePlugin enforces. It uses standard C++ only, so the host C++ compiler
builds its test program (plugins/tests/testPatchAttentionShapeMath.cpp) without CUDA or TensorRT; the plugin itself
is compiled against TensorRT headers by scripts/check_plugin_headers.sh.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.paths import REPO

KERNEL_DIR = REPO / "plugins" / "patchAttention"
HEADER = KERNEL_DIR / "patchAttentionShapeMath.h"
PROGRAM = REPO / "plugins" / "tests" / "testPatchAttentionShapeMath.cpp"


def _cxx() -> str | None:
    for candidate in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def test_shape_math_header_is_plain_cpp() -> None:
    """No TensorRT or CUDA includes: the header must build in CI without either."""
    includes = re.findall(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', HEADER.read_text(), flags=re.MULTILINE)
    assert includes and set(includes) <= {"cstddef", "cstdint"}, includes


def test_kernel_sources_have_no_tensorrt_types() -> None:
    """The CUDA kernels (and the shared size header) stay free of TensorRT, which CI does not have."""
    for name in ("patchAttentionKernel.h", "patchAttentionKernel.cu", "patchAttentionShapeMath.h"):
        text = (KERNEL_DIR / name).read_text()
        assert "nvinfer1" not in text and "NvInfer" not in text, name


@pytest.mark.skipif(_cxx() is None, reason="needs a C++ compiler (c++, g++ or clang++) on PATH")
def test_shape_math_program_passes(tmp_path: Path) -> None:
    binary = tmp_path / "test_patch_attention_shape_math"
    compiler = _cxx()
    assert compiler is not None
    # C++14: the oldest standard the JetPack 5 toolchain (CUDA 11.4, GCC 9) would build the kernels with
    command = [compiler, "-std=c++14", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O1"]
    command += [f"-I{KERNEL_DIR}", str(PROGRAM), "-o", str(binary)]
    built = subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert built.returncode == 0, f"compile failed:\n{built.stdout}{built.stderr}"
    assert "warning" not in (built.stdout + built.stderr).lower(), built.stderr

    ran = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert ran.returncode == 0, f"exit {ran.returncode}:\n{ran.stdout[-3000:]}{ran.stderr[-1000:]}"
    assert re.search(r"^\d+ passed, 0 failed$", ran.stdout, flags=re.MULTILINE), ran.stdout[-3000:]
    assert "FAIL" not in ran.stdout, ran.stdout[-3000:]
