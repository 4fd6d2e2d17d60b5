"""Which TensorRT is this: find the installed Python bindings and read versions as tuples.

``pip install tensorrt-stubs`` leaves an importable ``tensorrt`` folder with no runtime in it, so an
``import tensorrt`` that succeeds proves nothing: TensorRT counts as installed only when the module has
``Builder``. Every decision elsewhere takes a version tuple, so it can be tested for 8.6, 10.3 and 11.x
on a machine without TensorRT.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType

from dsrir.errors import DSRIRError

Version = tuple[int, ...]

DEFAULT_TARGET = "10.3"  # JetPack 6.1/6.2 (Orin)
OLDEST_SUPPORTED: Version = (8, 5)  # JetPack 5.1; the plugin has an IPluginV2DynamicExt path for 8.5/8.6
LAST_WITH_CALIBRATORS = 10  # TensorRT 11 removed INT8 calibrators (and their cache) with the FP16/INT8 flags
INSTALL_HINT = (
    "TensorRT is not installed: on Jetson it comes with JetPack (sudo apt install nvidia-tensorrt python3-libnvinfer; "
    "a venv needs --system-site-packages); on x86: pip install tensorrt (or tensorrt-cu12 / tensorrt-cu13)"
)


def parse_version(text: str, flag: str = "version") -> Version:
    """``"10.3"`` or ``"10.3.0.30"`` -> ``(10, 3)`` / ``(10, 3, 0, 30)``; at least major.minor."""
    if not re.fullmatch(r"\d+(\.\d+){1,3}", text.strip()):
        raise DSRIRError(f"{flag} {text!r}: expected a TensorRT version such as 10.3 or 8.6.1")
    return tuple(int(part) for part in text.strip().split("."))


def short(version: Version) -> str:
    """``(10, 3, 0, 30)`` -> ``"10.3"``: what people call a TensorRT release."""
    return ".".join(str(part) for part in version[:2])


def full(version: Version) -> str:
    return ".".join(str(part) for part in version)


def check_supported(version: Version) -> None:
    """Versions this builder knows: 8.5 and later (8.x, 10.x, 11.x)."""
    if version[:2] < OLDEST_SUPPORTED:
        raise DSRIRError(
            f"TensorRT {short(version)} is too old: the engine builder and the DSRIR plugin need TensorRT "
            f"{short(OLDEST_SUPPORTED)} or later (JetPack 5.1+)"
        )


def strongly_typed_only(version: Version) -> bool:
    """TensorRT 11 and later: every network is strongly typed; no FP16/INT8 builder flags, no INT8 calibrators (so
    no calibration cache): FP16 and INT8 come from the graph's own types (an FP16 or Q/DQ export)."""
    return version[0] > LAST_WITH_CALIBRATORS


def load_tensorrt() -> ModuleType | None:
    """The real TensorRT module, or None when only stubs (or nothing) are installed."""
    try:
        module = importlib.import_module("tensorrt")
    except ImportError:
        return None
    return module if hasattr(module, "Builder") else None


def require_tensorrt() -> ModuleType:
    module = load_tensorrt()
    if module is None:
        raise DSRIRError(INSTALL_HINT)
    return module


def installed_version() -> Version | None:
    module = load_tensorrt()
    return None if module is None else parse_version(str(module.__version__), "tensorrt.__version__")


def resolve_target(installed: Version | None, target: str | None, dry_run: bool) -> Version:
    """The TensorRT version a plan is made for: the installed one; ``--target-trt`` only plans for another
    machine (``--dry-run``) or fills in when none is installed."""
    wanted = parse_version(target, "--target-trt") if target else None
    if installed is None:
        version = wanted or parse_version(DEFAULT_TARGET)
    elif wanted is not None and wanted[:2] != installed[:2] and not dry_run:
        raise DSRIRError(
            f"--target-trt {target} but TensorRT {short(installed)} is installed: an engine can only be built by "
            f"the installed version (use --dry-run to plan for another one)"
        )
    else:
        version = wanted if (wanted is not None and dry_run) else installed
    check_supported(version)
    return version
