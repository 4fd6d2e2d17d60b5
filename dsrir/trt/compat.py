"""Can this engine run here? The sidecar against the running TensorRT version and GPU, without TensorRT.

TensorRT's own answer to a mismatch is a deserialisation failure deep in a log; users' top complaint is
engines that are "not portable". The rules TensorRT documents:

* a plain engine needs the exact TensorRT version it was built with and a GPU of the same compute
  capability (a different model with the same capability works, possibly slower);
* a version-compatible engine (8.6+) runs on the same or any later TensorRT (8.6 -> 10, 10 -> 11 included),
  never an older one;
* a hardware-compatible engine (``ampere+``) runs on any Ampere or newer GPU (sm_80+);
  ``same-compute-capability`` on any GPU of the capability it was built for.
"""

from __future__ import annotations

from dsrir.trt.gpu import AMPERE, GpuInfo, parse_capability, sm_name
from dsrir.trt.sidecar import EngineSidecar
from dsrir.trt.version import Version, full, parse_version, short


def _same_release(built: Version, running: Version) -> bool:
    """Equal on every component both spell out (``10.3`` matches ``10.3.0.30``)."""
    length = min(len(built), len(running))
    return built[:length] == running[:length]


def version_ok(sidecar: EngineSidecar, running: Version) -> bool:
    built = parse_version(sidecar.tensorrt_version, "sidecar tensorrt_version")
    if sidecar.version_compatible:
        return running >= built
    return _same_release(built, running)


def gpu_ok(sidecar: EngineSidecar, gpu: GpuInfo) -> bool:
    built = parse_capability(sidecar.compute_capability)
    if sidecar.hardware_compatibility == "ampere+":
        return gpu.compute_capability >= AMPERE
    return gpu.compute_capability == built


def _versions(built: Version, running: Version) -> tuple[str, str]:
    """``10.3`` vs ``8.6``; the full numbers only when the releases differ in patch or build alone."""
    if short(built) != short(running) or _same_release(built, running):
        return short(built), short(running)
    return full(built), full(running)


def incompatibility(sidecar: EngineSidecar, running: Version, gpu: GpuInfo | None) -> str | None:
    """None when the engine can run here; else the one-line reason, with the command that rebuilds it."""
    v_ok = version_ok(sidecar, running)
    g_ok = gpu is None or gpu_ok(sidecar, gpu)
    if v_ok and g_ok:
        return None
    built = parse_version(sidecar.tensorrt_version, "sidecar tensorrt_version")
    built_text, running_text = _versions(built, running)
    built_sm = sm_name(parse_capability(sidecar.compute_capability))
    here_sm = gpu.sm if gpu is not None else "an unknown GPU"
    rebuild = sidecar.rebuild_command or (
        f"python -m export.build_engine --onnx {sidecar.onnx}" if sidecar.onnx else "python -m export.build_engine"
    )
    why = ""
    if not v_ok and sidecar.version_compatible:
        why = " (a version-compatible engine runs on its own or a later TensorRT only)"
    elif not g_ok and sidecar.hardware_compatibility == "ampere+":
        why = " (an ampere+ engine needs sm_80 or newer)"
    return (
        f"engine built with TensorRT {built_text} for {built_sm}; this is {running_text} on {here_sm}{why}: "
        f"rebuild with {rebuild}"
    )


def warnings_for(sidecar: EngineSidecar, running: Version, gpu: GpuInfo | None) -> list[str]:
    """Things that do not stop the engine but are worth a line."""
    notes: list[str] = []
    if gpu is None:
        notes.append("no CUDA GPU found to check the engine against")
    elif sidecar.hardware_compatibility == "none" and gpu.name != sidecar.gpu_name:
        notes.append(
            f"engine built on {sidecar.gpu_name}, running on {gpu.name} (same {gpu.sm}): it works, but a rebuild "
            f"here may be faster"
        )
    built = parse_version(sidecar.tensorrt_version, "sidecar tensorrt_version")
    if sidecar.version_compatible and running[:2] != built[:2]:
        notes.append(
            f"version-compatible engine from TensorRT {short(built)} on {short(running)}: runs via its lean runtime"
        )
    return notes
