"""Fused patch attention on CUDA: the kernels of plugins/patchAttention as a PyTorch op.

``torch.ops.dsrir.patch_attention(res, skip, w1, b1, w2, b2, grid_h, grid_w)`` computes
``res * sigmoid(W2 relu(W1 mean_cell(res) + b1) + b2) (+ skip)`` in one pass over the image (two
reads of ``res``, one of ``skip``, one write), on the current CUDA stream. res/skip are contiguous
NCHW float32 or float16; the weights may be the 1x1 conv tensors (they are used as float32 2-D).
It has a fake (meta) implementation, so it traces under torch.compile and torch.export.

The extension is compiled on first use (not at import, and never on a machine without CUDA) with
``torch.utils.cpp_extension.load`` from plugins/patchAttention/patchAttentionKernel.cu and
plugins/torch/patchAttentionTorch.cpp into the torch extensions cache (``TORCH_EXTENSIONS_DIR``,
default ~/.cache/torch_extensions); without ninja, setuptools builds it there instead. If the build
fails, :func:`fused_patch_attention_available` warns once with the reason and returns False, and
:class:`dsrir.ops.patch_attention.PatchAttention` keeps using the PyTorch reference. ``DSRIR_DISABLE_FUSED_PA=1``
turns the fused path off (read on every call).
"""

import hashlib
import importlib.util
import logging
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from types import ModuleType
from typing import Optional

import torch
from torch import Tensor

EXTENSION_NAME = "dsrir_patch_attention"
DISABLE_ENV = "DSRIR_DISABLE_FUSED_PA"
PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"
KERNEL_SOURCE = PLUGINS_DIR / "patchAttention" / "patchAttentionKernel.cu"
BINDING_SOURCE = PLUGINS_DIR / "torch" / "patchAttentionTorch.cpp"

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_extension: ModuleType | None = None
_build_error: str | None = None
_cuda_available: bool | None = None


def fused_disabled() -> bool:
    """True when ``DSRIR_DISABLE_FUSED_PA=1`` is set."""
    return os.environ.get(DISABLE_ENV, "").strip() == "1"


def fused_patch_attention_available() -> bool:
    """Whether the fused op can run: CUDA present, not disabled, and the extension built (builds it on first call)."""
    global _cuda_available
    if fused_disabled():
        return False
    if _cuda_available is None:
        _cuda_available = torch.cuda.is_available()
    if not _cuda_available:
        return False
    return load_extension() is not None


def fused_unavailable_reason() -> str | None:
    """Why the fused op is not available (None when it is, or when nothing has been tried yet)."""
    if fused_disabled():
        return f"{DISABLE_ENV}=1"
    if _cuda_available is False:
        return "CUDA is not available"
    return _build_error


def _source_digest() -> str:
    digest = hashlib.sha256()
    for path in (KERNEL_SOURCE, BINDING_SOURCE, KERNEL_SOURCE.with_suffix(".h")):
        digest.update(path.read_bytes())
    digest.update(f"{torch.__version__} {torch.version.cuda} {sys.version_info[:2]}".encode())
    return digest.hexdigest()[:16]


# torch adds -D__CUDA_NO_HALF_OPERATORS__ (and the like) to every .cu it compiles; undo that so the
# kernels compile exactly as in the CMake build (they may use __half operators and conversions).
_NVCC_FLAGS = (
    "-U__CUDA_NO_HALF_OPERATORS__",
    "-U__CUDA_NO_HALF_CONVERSIONS__",
    "-U__CUDA_NO_HALF2_OPERATORS__",
    "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
)

_SETUPTOOLS_BUILD = """
import sys
from setuptools import Distribution
from torch.utils.cpp_extension import BuildExtension, CUDAExtension
root, name, include, nvcc_flags, *sources = sys.argv[1:]
extension = CUDAExtension(name, sources, include_dirs=[include],
                          extra_compile_args={"cxx": ["-O3"], "nvcc": ["-O3", *nvcc_flags.split()]})
dist = Distribution({"name": name, "ext_modules": [extension],
                     "cmdclass": {"build_ext": BuildExtension.with_options(use_ninja=False)}})
command = dist.get_command_obj("build_ext")
command.build_lib = root
command.build_temp = root + "/tmp"
command.ensure_finalized()
command.run()
"""


def _build_without_ninja() -> ModuleType:
    """Build with setuptools (no ninja) into the torch extensions cache, keyed by a digest of the sources."""
    from torch.utils.cpp_extension import get_default_build_root

    base = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root())
    root = base / f"{EXTENSION_NAME}_setuptools_{_source_digest()}"
    built = sorted(root.glob(f"{EXTENSION_NAME}*.so"))
    if not built:
        root.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [sys.executable, "-c", _SETUPTOOLS_BUILD, str(root), EXTENSION_NAME, str(KERNEL_SOURCE.parent)]
            + [" ".join(_NVCC_FLAGS), str(KERNEL_SOURCE), str(BINDING_SOURCE)],
            capture_output=True,
            text=True,
            check=False,
        )
        built = sorted(root.glob(f"{EXTENSION_NAME}*.so"))
        if result.returncode != 0 or not built:
            raise RuntimeError(f"setuptools build of {EXTENSION_NAME} failed:\n{result.stdout}\n{result.stderr}")
    spec = importlib.util.spec_from_file_location(EXTENSION_NAME, built[0])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build() -> ModuleType:
    for source in (KERNEL_SOURCE, BINDING_SOURCE):
        if not source.is_file():
            raise FileNotFoundError(f"{source} is missing (the fused op builds from the repository's plugins/ folder)")
    from torch.utils import cpp_extension

    _log.info("building the fused patch-attention CUDA extension (first use; about a minute)")
    if not cpp_extension.is_ninja_available():
        return _build_without_ninja()
    return cpp_extension.load(
        name=EXTENSION_NAME,
        sources=[str(KERNEL_SOURCE), str(BINDING_SOURCE)],
        extra_cflags=["-O3"],
        extra_cuda_cflags=["-O3", *_NVCC_FLAGS],
        extra_include_paths=[str(KERNEL_SOURCE.parent)],
        verbose=False,
    )


def _short(text: str, lines: int = 12) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    if len(kept) <= lines:
        return "\n".join(kept)
    return "\n".join([kept[0], "...", *kept[-(lines - 1) :]])


def load_extension() -> ModuleType | None:
    """The compiled extension, building it on first call; None (after one warning) if it cannot be built."""
    global _extension, _build_error
    if _extension is not None or _build_error is not None:
        return _extension
    with _lock:
        if _extension is None and _build_error is None:
            try:
                _extension = _build()
            except Exception as exc:  # any build or load failure means "use the reference"
                _build_error = f"{type(exc).__name__}: {exc}"
                warnings.warn(
                    "DSRIR fused patch attention is unavailable, PatchAttention uses the PyTorch reference: "
                    + _short(_build_error),
                    RuntimeWarning,
                    stacklevel=3,
                )
    return _extension


# Annotations stay real types here (no ``from __future__ import annotations``): custom_op reads them.
@torch.library.custom_op("dsrir::patch_attention", mutates_args=(), device_types="cuda")
def patch_attention_op(
    res: Tensor,
    skip: Optional[Tensor],
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
    grid_h: int,
    grid_w: int,
) -> Tensor:
    """Fused ``res * A[cell] (+ skip)`` on CUDA (see the module docstring)."""
    extension = load_extension()
    if extension is None:
        raise RuntimeError(f"the fused patch-attention extension is unavailable: {fused_unavailable_reason()}")
    return extension.forward(res, skip, w1, b1, w2, b2, grid_h, grid_w, None)


@patch_attention_op.register_fake
def _patch_attention_fake(
    res: Tensor,
    skip: Optional[Tensor],
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
    grid_h: int,
    grid_w: int,
) -> Tensor:
    if res.dim() != 4:
        raise ValueError(f"res must be NCHW (4-D), got shape {tuple(res.shape)}")
    if skip is not None and skip.shape != res.shape:
        raise ValueError(f"skip must have the shape of res {tuple(res.shape)}, got {tuple(skip.shape)}")
    return torch.empty_like(res, memory_format=torch.contiguous_format)


def fused_patch_attention(
    x: Tensor,
    w1: Tensor,
    b1: Tensor | None,
    w2: Tensor,
    b2: Tensor | None,
    grid: tuple[int, int],
    skip: Tensor | None = None,
) -> Tensor:
    """Same arguments as :func:`dsrir.ops.patch_attention.patch_attention`, on the fused CUDA op."""
    if b1 is None:
        b1 = torch.zeros(w1.shape[0], device=x.device, dtype=torch.float32)
    if b2 is None:
        b2 = torch.zeros(w2.shape[0], device=x.device, dtype=torch.float32)
    return patch_attention_op(x, skip, w1, b1, w2, b2, int(grid[0]), int(grid[1]))
