"""The TensorRT calls that turn a checked ``EnginePlan`` into serialized engine bytes (thin layer).

Every decision was made by ``export.engine.plan``; this module only translates it into builder calls,
by enum *name*, so one code path serves 8.x, 10.x and 11.x. mypy checks it against ``tensorrt-stubs``
(10.13 API); names missing from older or newer releases are only reached for the versions that have them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dsrir.atomic import atomic_path
from dsrir.errors import DSRIRError
from dsrir.trt.plugin import load_plugin_library, require_creator
from dsrir.trt.version import require_tensorrt
from export.engine.plan import EnginePlan

if TYPE_CHECKING:
    import tensorrt as trt

HARDWARE_LEVEL_NAMES = {"ampere+": "AMPERE_PLUS", "same-compute-capability": "SAME_COMPUTE_CAPABILITY"}


def preview_features(version: tuple[int, ...]) -> tuple[str, ...]:
    """Preview features to enable for ``version``. 8.6: PROFILE_SHARING_0806, so the runtime's two execution
    contexts can share the one optimisation profile (NvInfer.h at v8.6.1: "defaults to false and will become the
    default behavior in TensorRT 9.0"); 8.5 has no such feature, 10.x shares always (the enum is deprecated) and
    11.x removed it."""
    return ("PROFILE_SHARING_0806",) if tuple(version[:2]) == (8, 6) else ()


def network_flag_bits(names: tuple[str, ...]) -> int:
    import tensorrt as trt

    bits = 0
    for name in names:
        bits |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, name))
    return bits


def _parse(plan: EnginePlan, network: trt.INetworkDefinition, logger: trt.ILogger) -> None:
    import tensorrt as trt

    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(plan.graph.path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        first = errors[0].splitlines()[0] if errors else "no detail"
        raise DSRIRError(f"{plan.graph.path}: TensorRT's ONNX parser failed ({len(errors)} error(s)): {first}")


def _profile(plan: EnginePlan, builder: trt.Builder) -> trt.IOptimizationProfile:
    import tensorrt as trt

    profile = builder.create_optimization_profile()
    shapes = plan.profile
    profile.set_shape(
        shapes.input_name, trt.Dims(list(shapes.min)), trt.Dims(list(shapes.opt)), trt.Dims(list(shapes.max))
    )
    return profile


def _configure(plan: EnginePlan, builder: trt.Builder, config: trt.IBuilderConfig) -> None:
    import tensorrt as trt

    options = plan.options
    for feature in preview_features(plan.version):
        config.set_preview_feature(getattr(trt.PreviewFeature, feature), True)
    for name in plan.precision.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    if plan.precision.calibration_cache:
        from export.engine.calibrator import CacheCalibrator

        config.int8_calibrator = CacheCalibrator(Path(plan.precision.calibration_cache))
    if options.workspace_mib is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    if options.optimization_level is not None:
        config.builder_optimization_level = options.optimization_level
    if options.dla_core is not None:
        cores = builder.num_DLA_cores
        if cores == 0:
            raise DSRIRError(f"--dla-core {options.dla_core}: this platform has no DLA (Orin and Xavier have 2)")
        if options.dla_core >= cores:
            raise DSRIRError(f"--dla-core {options.dla_core}: this platform has {cores} DLA core(s)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = options.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    if options.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
        if options.plugin_lib is not None and options.plugin_mode == "dynamic":
            config.plugins_to_serialize = [str(options.plugin_lib.resolve())]
    if options.hardware_compatibility != "none":
        level = HARDWARE_LEVEL_NAMES[options.hardware_compatibility]
        config.hardware_compatibility_level = getattr(trt.HardwareCompatibilityLevel, level)


def _attach_timing_cache(config: trt.IBuilderConfig, path: Path | None) -> trt.ITimingCache | None:
    if path is None:
        return None
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        raise DSRIRError(f"--timing-cache {path}: TensorRT rejected it (another GPU or TensorRT version?); delete it")
    return cache


def _save_timing_cache(cache: trt.ITimingCache, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(bytes(cache.serialize()))


def build_serialized_engine(plan: EnginePlan) -> bytes:
    """Load the plugin, parse, configure, build; returns the engine bytes and updates the timing cache."""
    require_tensorrt()
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    registry: trt.IPluginRegistry = trt.get_plugin_registry()
    options, major = plan.options, plan.version[0]
    if options.plugin_lib is not None:
        load_plugin_library(options.plugin_lib, options.plugin_mode, registry)
    if plan.needs_plugin:
        require_creator(registry, major, options.plugin_lib, options.plugin_mode)

    network = builder.create_network(network_flag_bits(plan.precision.network_flags))
    _parse(plan, network, logger)
    config = builder.create_builder_config()
    profile = _profile(plan, builder)
    if config.add_optimization_profile(profile) < 0:
        raise DSRIRError(f"TensorRT rejected the profile {plan.profile.as_dict()} for input {plan.profile.input_name}")
    _configure(plan, builder, config)
    if plan.precision.calibration_cache:
        config.set_calibration_profile(profile)
    cache = _attach_timing_cache(config, plan.timing_cache)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise DSRIRError("TensorRT could not build the engine: the reason is in its log above")
    if cache is not None and plan.timing_cache is not None:
        _save_timing_cache(cache, plan.timing_cache)
    return bytes(serialized)
