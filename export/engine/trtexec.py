"""The trtexec command that builds the same engine as a plan, spelled for the plan's TensorRT version.

People debug engines with trtexec, and NVIDIA's forums ask for the trtexec line; printing it makes every
build reproducible without this toolkit. Spellings, checked against trtexec's option parser
(samples/common/sampleOptions.cpp at NVIDIA/TensorRT tags v8.6.1, v10.3.0, v11.1):

* 8.x: ``--fp16 --int8 --calib=``; ``--memPoolSize=workspace:N`` in MiB (``--workspace`` is deprecated);
  ``--staticPlugins`` (8.6; 8.5 only has ``--plugins``); no ``--stronglyTyped``.
* 10.x: adds ``--stronglyTyped``; ``--memPoolSize=workspace:NM`` takes a unit suffix.
* 11.x: ``--fp16/--int8/--best/--calib`` are gone and strong typing is always on (``--stronglyTyped`` is a
  deprecated no-op, so it is left out).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from dsrir.trt.version import Version, strongly_typed_only
from export.engine.plan import EnginePlan

HARDWARE_SPELLING = {"ampere+": "ampere+", "same-compute-capability": "sameComputeCapability"}


def plugin_args(version: Version, library: Path, mode: str, version_compatible: bool) -> list[str]:
    if mode == "dynamic":
        serialize = [f"--setPluginsToSerialize={library}"] if version_compatible else []
        return [f"--dynamicPlugins={library}", *serialize]
    return [f"--plugins={library}"] if version[:2] < (8, 6) else [f"--staticPlugins={library}"]


def trtexec_args(plan: EnginePlan) -> list[str]:
    major, options, precision = plan.version[0], plan.options, plan.precision
    args = ["trtexec", f"--onnx={plan.graph.path}", f"--saveEngine={plan.output}", "--skipInference"]
    args += [f"--{which}Shapes={plan.profile.spec(which)}" for which in ("min", "opt", "max")]
    if major == 10 and precision.strongly_typed:
        args.append("--stronglyTyped")
    if not strongly_typed_only(plan.version):
        args += ["--fp16"] * ("FP16" in precision.builder_flags) + ["--int8"] * ("INT8" in precision.builder_flags)
        if precision.calibration_cache:
            args.append(f"--calib={precision.calibration_cache}")
    if options.plugin_lib is not None:
        args += plugin_args(plan.version, options.plugin_lib, options.plugin_mode, options.version_compatible)
    if options.workspace_mib is not None:
        unit = "M" if major >= 10 else ""
        args.append(f"--memPoolSize=workspace:{options.workspace_mib}{unit}")
    if plan.timing_cache is not None:
        args.append(f"--timingCacheFile={plan.timing_cache}")
    if options.optimization_level is not None:
        args.append(f"--builderOptimizationLevel={options.optimization_level}")
    if options.dla_core is not None:
        args += [f"--useDLACore={options.dla_core}", "--allowGPUFallback"]
    if options.version_compatible:
        args.append("--versionCompatible")
    if options.hardware_compatibility != "none":
        args.append(f"--hardwareCompatibilityLevel={HARDWARE_SPELLING[options.hardware_compatibility]}")
    return args


def trtexec_command(plan: EnginePlan) -> str:
    """One shell line (arguments quoted where needed)."""
    return shlex.join(trtexec_args(plan))
