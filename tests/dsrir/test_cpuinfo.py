"""The CPU name every benchmark records: cloud machines' model names alone do not tell two CPUs apart."""

from __future__ import annotations

import platform
from pathlib import Path

from dsrir.cpuinfo import cpu_flags, cpu_name

ZEN3 = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\n"
ZEN3 += "flags\t\t: fpu sse2 avx avx2 fma\n\n"
ZEN5 = "processor\t: 0\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\n"
ZEN5 += "flags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16\n\n"
JETSON = "processor\t: 0\nmodel name\t: ARMv8 Processor rev 1 (v8l)\nFeatures\t: fp asimd asimddp\n\n"


def test_two_cpus_with_one_model_name_get_two_names(tmp_path: Path) -> None:
    zen3, zen5 = tmp_path / "zen3", tmp_path / "zen5"
    zen3.write_text(ZEN3 + ZEN3.replace("processor\t: 0", "processor\t: 1"))
    zen5.write_text(ZEN5)
    assert cpu_name(zen3) == "AMD EPYC (family 25 model 1; AVX2)"
    assert cpu_name(zen5) == "AMD EPYC (family 26 model 2; AVX2, AVX-512, AVX512-VNNI)"


def test_arm_names_its_dot_product_and_a_missing_file_falls_back_to_the_platform(tmp_path: Path) -> None:
    jetson = tmp_path / "jetson"
    jetson.write_text(JETSON)
    assert cpu_name(jetson) == "ARMv8 Processor rev 1 (v8l) (ARM dot product)"
    assert cpu_flags(jetson) == {"fp", "asimd", "asimddp"}
    missing = tmp_path / "missing"
    assert cpu_name(missing) == (platform.processor() or platform.machine() or "unknown CPU")
    assert cpu_flags(missing) == frozenset()
