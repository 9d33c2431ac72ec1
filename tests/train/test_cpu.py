"""train/cpu.py: native bf16 read from /proc/cpuinfo's flags, precision=auto's choice on the CPU (fp32 until
the verdict study's evidence flips BF16_CPU_DEFAULT), and the fp32 peak from cores x FMA lanes x clock."""

from __future__ import annotations

import pytest
import torch

from cnnlab.config import load_config
from cnnlab.train import cpu, resolve_runtime
from cnnlab.train.runtime import auto_precision

BASE = "fpu vme de pse tsc msr pae sse sse2 ssse3 sse4_1 sse4_2 popcnt aes xsave avx"
ZEN4 = f"{BASE} fma avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512_vnni"
SKYLAKE_SP = f"{BASE} fma avx2 avx512f avx512dq avx512cd avx512bw avx512vl"
SAPPHIRE_RAPIDS = f"{SKYLAKE_SP} avx512_bf16 amx_bf16 amx_tile amx_int8"
HASWELL = f"{BASE} fma avx2"
OLD = BASE


def cpuinfo(flags: str, vendor: str = "GenuineIntel", family: str = "6", model: str = "Some CPU") -> str:
    """Two processors of /proc/cpuinfo, as Linux writes it (tab before the colon)."""
    one = (f"processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel name\t: {model}\n"
           f"cpu MHz\t\t: 2596.138\nflags\t\t: {flags}\n\n")
    return one + one.replace("processor\t: 0", "processor\t: 1")


@pytest.mark.parametrize("flags,native", [(ZEN4, True), (SAPPHIRE_RAPIDS, True), (SKYLAKE_SP, False),
                                          (HASWELL, False), (OLD, False), ("", False)])
def test_native_bf16_is_read_from_the_flags(flags: str, native: bool) -> None:
    assert cpu.has_native_bf16(cpu.cpu_flags(cpuinfo(flags))) is native


def test_avx512_alone_is_not_bf16_and_a_flag_must_match_whole() -> None:
    assert not cpu.has_native_bf16(cpu.cpu_flags(cpuinfo(f"{SKYLAKE_SP} avx512_bf16x")))
    assert cpu.cpu_flags("") == frozenset()


def test_precision_auto_on_the_cpu_needs_native_bf16_and_the_verdict() -> None:
    zen4, haswell = cpu.cpu_flags(cpuinfo(ZEN4)), cpu.cpu_flags(cpuinfo(HASWELL))
    # on since studies/bf16_cpu.yaml found bf16 `equivalent` to fp32 (+0.20 points, [-0.04, +0.44], 3 seeds)
    assert cpu.BF16_CPU_DEFAULT is True
    assert cpu.cpu_precision(zen4) == "bf16"
    assert cpu.cpu_precision(zen4, measured_equivalent=False) == "fp32"  # without the evidence: fp32
    assert cpu.cpu_precision(zen4, measured_equivalent=True) == "bf16"
    assert cpu.cpu_precision(zen4, measured_equivalent=True, onednn_bf16=True) == "bf16"
    assert cpu.cpu_precision(zen4, measured_equivalent=True, onednn_bf16=False) == "fp32"  # oneDNN says no
    assert cpu.cpu_precision(haswell, measured_equivalent=True) == "fp32"  # emulated bf16 is slower
    assert cpu.cpu_precision(haswell, measured_equivalent=True, onednn_bf16=True) == "fp32"


def test_resolve_runtime_follows_the_switch(monkeypatch) -> None:
    config = load_config(None, ["device=cpu"])
    assert config.train.precision == "auto"
    read = cpu.cpu_flags
    monkeypatch.setattr(cpu, "cpu_flags", lambda text=None: read(cpuinfo(ZEN4)))
    monkeypatch.setattr(cpu, "mkldnn_bf16_supported", lambda: True)
    monkeypatch.setattr(cpu, "BF16_CPU_DEFAULT", False)
    assert resolve_runtime(config).amp_dtype is None  # native, but without the evidence
    monkeypatch.setattr(cpu, "BF16_CPU_DEFAULT", True)
    assert resolve_runtime(config).amp_dtype == torch.bfloat16
    assert resolve_runtime(load_config(None, ["device=cpu", "train.precision=fp32"])).amp_dtype is None
    monkeypatch.setattr(cpu, "cpu_flags", lambda text=None: read(cpuinfo(HASWELL)))
    assert auto_precision(torch.device("cpu")) == "fp32"


@pytest.mark.parametrize("flags,vendor,family,lanes", [
    (ZEN4, "AuthenticAMD", "25", 16),  # Zen 4: 512-bit FMAs on two 256-bit pipes
    (f"{ZEN4} avx512_vp2intersect", "AuthenticAMD", "26", 32),  # Zen 5
    (SKYLAKE_SP, "GenuineIntel", "6", 32), (HASWELL, "GenuineIntel", "6", 16), (OLD, "GenuineIntel", "6", None),
])
def test_fma_lanes_by_instruction_set(flags: str, vendor: str, family: str, lanes: int | None) -> None:
    assert cpu.fma_lanes_per_cycle(cpu.cpu_flags(cpuinfo(flags)), vendor, family) == lanes


def test_peak_is_cores_x_lanes_x_two_x_max_clock_and_unknown_without_a_clock() -> None:
    known = cpu.CpuPeak("Xeon", cores=2, lanes=32, max_mhz=3000.0, current_mhz=2000.0)
    assert known.peak == 2 * 32 * 2 * 3000e6 == 384e9
    assert "peak 384 GFLOP/s fp32 (2 cores x 32 fp32 FMA lanes x 2 x 3,000 MHz max)" in known.describe()
    vm = cpu.CpuPeak("AMD EPYC", cores=1, lanes=16, max_mhz=None, current_mhz=2596.0)
    assert vm.peak is None and vm.describe().startswith("peak unknown (1 core x 16 fp32 FMA lanes")
    assert "83 GFLOP/s fp32 at the 2,596 MHz /proc/cpuinfo reports" in vm.describe()  # 1 x 16 x 2 x 2.596 GHz
    assert vm.reference("fp32") == (1 * 16 * 2 * 2596e6, "reported")
    zen4 = cpu.CpuPeak("AMD EPYC", cores=2, lanes=16, max_mhz=None, current_mhz=2596.0, bf16_factor=2)
    assert zen4.reference("bf16")[0] == 2 * 16 * 2 * 2 * 2596e6  # AVX512_BF16: two multiply-adds per fp32 lane
    assert "332 GFLOP/s bf16 at the 2,596 MHz" in zen4.describe("bf16")
    assert cpu.CpuPeak("?", 4, None, 3000.0, None).peak is None  # an unknown ISA: no peak either
    assert known.reference("fp32") == (384e9, "max")


@pytest.mark.parametrize("flags,factor", [(ZEN4, 2), (SAPPHIRE_RAPIDS, 32), (SKYLAKE_SP, 1), (HASWELL, 1)])
def test_bf16_peak_factor_by_instruction_set(flags: str, factor: int) -> None:
    assert cpu.bf16_flops_factor(cpu.cpu_flags(cpuinfo(flags))) == factor
    assert cpu.cpu_model_name(cpuinfo(ZEN4, model="AMD EPYC 9R14")) == "AMD EPYC 9R14"
    assert cpu.cpu_model_name("") == "unknown CPU"
