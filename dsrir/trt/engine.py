"""Loading an engine for the runtime: plugin first, sidecar checked against this TensorRT and GPU, then
deserialise.

TensorRT's answer to an engine from another version or GPU is a null engine and a log line; this says
which versions and GPUs differ and the command that rebuilds the engine, before TensorRT is asked.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dsrir.errors import DSRIRError
from dsrir.trt.compat import incompatibility, warnings_for
from dsrir.trt.gpu import GpuInfo, query_gpu
from dsrir.trt.plugin import load_plugin_library
from dsrir.trt.sidecar import EngineSidecar, read_sidecar, sidecar_path
from dsrir.trt.version import Version, parse_version, require_tensorrt

if TYPE_CHECKING:
    import tensorrt as trt


def plugin_to_load(explicit: Path | None, sidecar: EngineSidecar | None) -> tuple[Path | None, str]:
    """The plugin library and loading mode: the caller's, else the one the engine was built with (none for a
    version-compatible engine built with ``--plugin-mode dynamic``: the library is serialized inside it)."""
    mode = (sidecar.plugin_mode if sidecar else None) or "static"
    if explicit is not None:
        return explicit, mode
    if sidecar is not None and sidecar.plugin_library:
        if sidecar.version_compatible and mode == "dynamic":
            return None, mode
        return Path(sidecar.plugin_library), mode
    return None, mode


def check_sidecar(
    engine: Path,
    sidecar: EngineSidecar | None,
    running: Version,
    gpu: GpuInfo | None,
    engine_bytes: bytes | None = None,
) -> list[str]:
    """Pure: raise DSRIRError when the engine cannot run here; return warnings otherwise."""
    if sidecar is None:
        return [f"{engine}: no sidecar ({sidecar_path(engine).name}): TensorRT version and GPU cannot be checked first"]
    if engine_bytes is not None and not sidecar.describes(engine_bytes):
        raise DSRIRError(f"{sidecar_path(engine)} describes another engine (sha256 differs): rebuild, or delete it")
    reason = incompatibility(sidecar, running, gpu)
    if reason:
        raise DSRIRError(reason)
    return warnings_for(sidecar, running, gpu)


def io_tensors(engine: trt.ICudaEngine) -> dict[str, str]:
    """Tensor name -> ``input``/``output``, from the engine itself (TensorRT 8.5+ name-based API)."""
    import tensorrt as trt

    names: dict[str, str] = {}
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        names[name] = "input" if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else "output"
    return names


def load_engine(
    path: str | Path, plugin_lib: str | Path | None = None, warn: bool = True
) -> tuple[trt.ICudaEngine, EngineSidecar | None]:
    """Deserialise ``path`` with its plugin; DSRIRError (one line) when it cannot run on this TensorRT/GPU."""
    path = Path(path)
    if not path.is_file():
        raise DSRIRError(f"{path}: engine file not found")
    sidecar = read_sidecar(sidecar_path(path))
    require_tensorrt()
    import tensorrt as trt

    running = parse_version(trt.__version__, "tensorrt.__version__")
    data = path.read_bytes()
    for line in check_sidecar(path, sidecar, running, query_gpu(), data):
        if warn:
            print(f"warning: {line}", file=sys.stderr)

    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    library, mode = plugin_to_load(Path(plugin_lib) if plugin_lib else None, sidecar)
    if library is not None:
        if not library.is_file():
            raise DSRIRError(f"{path} needs the plugin library {library}, which is missing: pass --plugin-lib PATH")
        registry: trt.IPluginRegistry = trt.get_plugin_registry()
        load_plugin_library(library, mode, registry)
    if sidecar is not None and sidecar.version_compatible:
        runtime.engine_host_code_allowed = True  # a version-compatible plan carries its lean runtime
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        built = f"TensorRT {sidecar.tensorrt_version} on {sidecar.gpu_name}" if sidecar else "an unknown TensorRT/GPU"
        raise DSRIRError(
            f"{path}: TensorRT {trt.__version__} could not deserialise it (built with {built}); rebuild it"
        )
    if sidecar is not None and sidecar.inputs:
        expected = {entry["name"] for entry in sidecar.inputs}
        found = {name for name, mode in io_tensors(engine).items() if mode == "input"}
        if expected != found:
            raise DSRIRError(f"{sidecar_path(path)}: inputs {sorted(expected)} but the engine has {sorted(found)}")
    return engine, sidecar
