"""``--frontend torch-tensorrt``: the same engine built from a checkpoint through Torch-TensorRT, no ONNX.

For users who already have torch-tensorrt (NVIDIA's Jetson PyTorch containers ship it): ``torch.export``
with dynamic H/W (multiples of the model's size multiple), then
``torch_tensorrt.dynamo.convert_exported_program_to_serialized_trt_engine``, whose bytes are a plain
TensorRT engine (trtexec and ``dsrir.trt.engine`` load it). FP32/FP16 only, from the model's own types;
INT8, DLA and the fused plugin belong to the ONNX path.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import torch

from dsrir.errors import DSRIRError
from dsrir.model.restore_only import RestoreOnly
from dsrir.trt.gpu import GpuInfo
from dsrir.trt.sidecar import EngineSidecar
from export.engine.plan import BuildOptions, engine_sidecar
from export.engine.shapes import Profile, format_shape, make_profile

INSTALL_HINT = "torch-tensorrt is not installed: pip install torch-tensorrt (the release matching your torch)"
INPUT_NAME = "input"


def check_options(options: BuildOptions, checkpoint: Path | None) -> None:
    """What this frontend cannot do, each as one line naming the flag."""
    if checkpoint is None:
        raise DSRIRError("--frontend torch-tensorrt builds from --checkpoint PATH (a .pth or .safetensors file)")
    if options.onnx is not None:
        raise DSRIRError("--onnx with --frontend torch-tensorrt: this frontend builds from --checkpoint; drop one")
    if options.precision not in ("fp32", "fp16"):
        raise DSRIRError(
            f"--precision {options.precision} with --frontend torch-tensorrt: only fp32 and fp16; INT8 goes through "
            f"the ONNX path (the calibration stage's Q/DQ graph)"
        )
    for given, flag in (
        (options.calib, "--calib"),
        (options.plugin_lib, "--plugin-lib"),
        (options.dla_core, "--dla-core"),
    ):
        if given is not None:
            raise DSRIRError(f"{flag} with --frontend torch-tensorrt: use the ONNX path (--frontend onnx)")
    if options.hardware_compatibility == "same-compute-capability":
        raise DSRIRError("--hardware-compatibility same-compute-capability: torch-tensorrt offers ampere+ only")


def torch_profile(options: BuildOptions, size_multiple: int) -> Profile:
    """NCHW float profile; the batch is fixed (min = opt = max)."""
    profile = make_profile(
        INPUT_NAME,
        "NCHW",
        ("batch", 3, "height", "width"),
        size_multiple,
        options.min_shape,
        options.opt_shape,
        options.max_shape,
    )
    if len({profile.min[0], profile.opt[0], profile.max[0]}) != 1:
        raise DSRIRError("--frontend torch-tensorrt: the batch size must be the same in --min/--opt/--max-shape")
    return profile


def require_torch_tensorrt() -> Any:
    try:
        import torch_tensorrt
    except ImportError:
        raise DSRIRError(INSTALL_HINT) from None
    return torch_tensorrt


def build_with_torch_tensorrt(
    checkpoint: Path, options: BuildOptions, timing_cache: Path | None
) -> tuple[bytes, Profile, Any]:
    """Engine bytes, the profile used and the checkpoint's LoadedWeights."""
    torch_tensorrt = require_torch_tensorrt()
    from dsrir.checkpoint import load_model

    if not torch.cuda.is_available():
        raise DSRIRError("--frontend torch-tensorrt needs a CUDA GPU")
    model, weights = load_model(checkpoint, "cuda")
    multiple = model.config.size_multiple
    profile = torch_profile(options, multiple)
    dtype = torch.float16 if options.precision == "fp16" else torch.float32
    restore = RestoreOnly(model).to(dtype)
    example = torch.rand(profile.opt, device="cuda", dtype=dtype)
    dims = {}
    for axis, name in ((2, "height"), (3, "width")):
        low, high = profile.min[axis] // multiple, profile.max[axis] // multiple
        if low != high:
            dims[axis] = multiple * torch.export.Dim(f"{name}_blocks", min=low, max=high)
    exported = torch.export.export(restore, (example,), dynamic_shapes=(dims or None,), strict=False)
    settings: dict[str, Any] = {
        "enabled_precisions": {dtype},
        "version_compatible": options.version_compatible,
        "hardware_compatible": options.hardware_compatibility == "ampere+",
    }
    if options.workspace_mib is not None:
        settings["workspace_size"] = options.workspace_mib << 20
    if options.optimization_level is not None:
        settings["optimization_level"] = options.optimization_level
    if timing_cache is not None:
        settings["timing_cache_path"] = str(timing_cache)
    spec = torch_tensorrt.Input(min_shape=profile.min, opt_shape=profile.opt, max_shape=profile.max, dtype=dtype)
    engine = torch_tensorrt.dynamo.convert_exported_program_to_serialized_trt_engine(
        exported, arg_inputs=[spec], **settings
    )
    return bytes(engine), profile, weights


def torch_command(checkpoint: Path, options: BuildOptions, profile: Profile, output: Path) -> str:
    """The command that rebuilds a torch-tensorrt engine (stored in its sidecar)."""
    args = ["python", "-m", "export.build_engine", "--frontend", "torch-tensorrt", "--checkpoint", str(checkpoint)]
    args += ["--precision", options.precision]
    for which in ("min", "opt", "max"):
        args += [f"--{which}-shape", format_shape(getattr(profile, which))]
    if options.version_compatible:
        args.append("--version-compatible")
    if options.hardware_compatibility != "none":
        args += ["--hardware-compatibility", options.hardware_compatibility]
    return shlex.join([*args, "--output", str(output)])


def engine_io_names(engine: bytes) -> dict[str, str]:
    """I/O tensor names of serialized engine bytes: torch-tensorrt names them itself."""
    import tensorrt as trt

    from dsrir.trt.engine import io_tensors

    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    deserialized = runtime.deserialize_cuda_engine(engine)
    return io_tensors(deserialized) if deserialized is not None else {}


def torch_sidecar(
    engine: bytes,
    weights: Any,
    checkpoint: Path,
    options: BuildOptions,
    profile: Profile,
    output: Path,
    seconds: float,
    tensorrt_version: str,
    gpu: GpuInfo,
) -> EngineSidecar:
    """The same sidecar as the ONNX path, with the checkpoint in place of the ONNX file."""
    names = engine_io_names(engine)
    dtype = "float16" if options.precision == "fp16" else "float32"
    return engine_sidecar(
        engine,
        seconds,
        tensorrt_version,
        gpu,
        options,
        profile,
        precision_summary="torch-tensorrt, from the model's types",
        strongly_typed=False,
        flags=[],
        inputs=[{"name": n, "dtype": dtype, "layout": "NCHW"} for n, mode in names.items() if mode == "input"],
        outputs=[{"name": n, "dtype": dtype} for n, mode in names.items() if mode == "output"],
        io="float",
        size_multiple=weights.config.size_multiple,
        preset=weights.preset or "custom",
        frontend="torch-tensorrt",
        checkpoint=str(checkpoint),
        rebuild_command=torch_command(checkpoint, options, profile, output),
    )
