"""Loading the DSRIR plugin library into TensorRT and proving its creator is there (thin TensorRT layer).

Two ways to load, matching the library's two builds (plugins/README.md):

* ``static`` (default build): ``ctypes.CDLL(path, RTLD_GLOBAL)`` after ``import tensorrt``; the library's
  static registrar puts the creator in the global registry. trtexec: ``--staticPlugins``.
* ``dynamic`` (built with ``-DDSRIR_TRT_STATIC_REGISTRATION=0``): ``IPluginRegistry.load_library``, which
  calls the library's ``getCreators``; needed to serialize the library into a version-compatible engine.
  trtexec: ``--dynamicPlugins``. Loading the default build this way fails ("already registered").

The pure parts (which lookup, which message) are tested without TensorRT; the rest is checked by mypy
against ``tensorrt-stubs``.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsrir.errors import DSRIRError
from dsrir.graph.ops import PLUGIN_NAMESPACE, PLUGIN_OP, PLUGIN_VERSION

if TYPE_CHECKING:  # the functions get TensorRT objects passed in; importing this module needs no TensorRT
    import tensorrt as trt

# Each library once per process, kept referenced for its life: IPluginRegistry::loadLibrary "will fail and return
# nullptr if any of the plugins are already registered" (NvInferRuntimeCommon.h at v10.3.0, line 205), so a second
# load of the same path (building, then opening the engine in one process) must not reach TensorRT again.
_loaded: dict[Path, Any] = {}


def creator_lookup(major: int) -> str:
    """The registry method that finds our creator: IPluginV3 creators need ``get_creator`` (10+)."""
    return "get_creator" if major >= 10 else "get_plugin_creator"


def missing_creator_message(library: Path | None, mode: str) -> str:
    where = f"after loading --plugin-lib {library}" if library else "and no --plugin-lib was given"
    hint = (
        "a library built with -DDSRIR_TRT_STATIC_REGISTRATION=0 needs --plugin-mode dynamic"
        if mode == "static"
        else "was the library built against this TensorRT version?"
    )
    return f'TensorRT has no plugin creator {PLUGIN_OP} version "{PLUGIN_VERSION}" namespace "" {where}: {hint}'


def load_plugin_library(library: Path, mode: str, registry: trt.IPluginRegistry) -> None:
    """Load ``library`` so its creator is registered before the ONNX parser (or the runtime) needs it."""
    if not library.is_file():
        raise DSRIRError(f"--plugin-lib {library}: file not found")
    resolved = library.resolve()
    if resolved in _loaded:
        return
    if mode == "static":
        try:
            _loaded[resolved] = ctypes.CDLL(str(resolved), mode=ctypes.RTLD_GLOBAL)
        except OSError as exc:
            raise DSRIRError(f"--plugin-lib {library}: cannot load it ({exc})") from None
        return
    handle = registry.load_library(str(resolved))
    if handle is None:
        raise DSRIRError(
            f"--plugin-lib {library}: IPluginRegistry.load_library refused it (a default build registers itself "
            f"statically: use --plugin-mode static, or build with -DDSRIR_TRT_STATIC_REGISTRATION=0)"
        )
    _loaded[resolved] = handle


def has_creator(registry: trt.IPluginRegistry, major: int) -> bool:
    if creator_lookup(major) == "get_creator":
        creator = registry.get_creator(PLUGIN_OP, PLUGIN_VERSION, PLUGIN_NAMESPACE)
    else:
        creator = registry.get_plugin_creator(PLUGIN_OP, PLUGIN_VERSION, PLUGIN_NAMESPACE)
    return creator is not None


def require_creator(registry: trt.IPluginRegistry, major: int, library: Path | None, mode: str) -> None:
    if not has_creator(registry, major):
        raise DSRIRError(missing_creator_message(library, mode))
