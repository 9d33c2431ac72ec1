"""What the CPU can do: its name, native bf16, and its fp32 and bf16 peaks, read from the machine (never guessed).

Peak fp32 FLOP/s = cores x FMA lanes per cycle x 2 (a fused multiply-add is 2 FLOPs) x clock. The lanes
come from the instruction set /proc/cpuinfo lists, assuming two FMA pipes per core as Intel has had since
Haswell (2013) and AMD since Zen 2: AVX2 + FMA, 2 x 8 fp32 lanes (Zen 1's 128-bit pipes reach half);
AVX-512, 2 x 16 on Intel server cores (Skylake-SP onwards; parts with one 512-bit FMA unit reach half)
and on AMD Zen 5 (its laptop parts have 256-bit pipes), but 2 x 8 on AMD Zen 4 (family 0x19), which runs
a 512-bit FMA as two 256-bit halves (AMD's Zen 4 software optimisation guide, no. 57647). So the peak is
an upper bound. The clock is the maximum lscpu reports (or sysfs cpuinfo_max_freq); a virtual machine
often reports none, and then the peak is unknown: the current 'cpu MHz' of /proc/cpuinfo is shown beside
it, labelled, because boost clocks exceed it, and fractions of peak are taken at that clock.

Peak bf16 = the fp32 peak x bf16_flops_factor. Checked on the 2-core AMD EPYC (Zen 4) VM of the docs with a
C loop of 12 independent 512-bit chains (tools/cpu_peak.c): VFMADD fp32 reached 85 GFLOP/s on one core, 32
FLOPs per cycle at the 2,596 MHz the VM reports (so 16 lanes, and no boost above that clock), VDPBF16PS
159 GFLOP/s, 61 per cycle (2x, less 6%). A large GEMM reached 95 (fp32, MKL) and 205 (bf16, oneDNN) per core
by CPU time: above these, because CPU time under a busy hypervisor undercounts; wall time on an idle
machine is the only clock to trust.

Native bf16: AVX512_BF16 (Intel Cooper Lake, Sapphire Rapids; AMD Zen 4) converts and multiplies bf16
in hardware, AMX_BF16 (Sapphire Rapids) adds tile matrix units; oneDNN uses either for bf16 autocast.
Without them bf16 is emulated and slower than fp32, so precision=auto keeps fp32 there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass

import torch

# bf16 autocast is precision=auto's choice on CPUs with native bf16 because the verdict study
# studies/bf16_cpu.yaml (fp32 vs bf16, convnet, Fashion-MNIST, 3 seeds) found the two `equivalent`: +0.20
# points, paired 95% interval [-0.04, +0.44], inside +-0.5 (Intel Xeon with AMX_BF16), at 1.65x the speed
# (docs/explanation/speed.md). Measured speed alone would not have flipped it; False restores fp32.
BF16_CPU_DEFAULT = True
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpuinfo_text() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as file:
            return file.read()
    return ""


def cpuinfo_field(text: str, key: str) -> str | None:
    """The first value of `key` in /proc/cpuinfo's text ('flags', 'model name', 'cpu family', ...)."""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key:
            return value.strip()
    return None


def cpu_flags(text: str | None = None) -> frozenset[str]:
    return frozenset((cpuinfo_field(cpuinfo_text() if text is None else text, "flags") or "").split())


def has_native_bf16(flags: frozenset[str] | set[str]) -> bool:
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def mkldnn_bf16_supported() -> bool | None:
    """oneDNN's own answer (it reads CPUID), where this torch exposes it; None when it does not."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if check is None or not torch.backends.mkldnn.is_available():
        return None
    try:
        return bool(check())
    except (RuntimeError, AttributeError):
        return None


def cpu_precision(flags: frozenset[str] | set[str], measured_equivalent: bool = BF16_CPU_DEFAULT,
                  onednn_bf16: bool | None = None) -> str:
    """precision=auto on the CPU: 'bf16' only where the CPU has native bf16 (and oneDNN agrees, when it
    was asked) and the verdict study found bf16's results equivalent to fp32's; 'fp32' otherwise."""
    native = has_native_bf16(flags) and onednn_bf16 is not False
    return "bf16" if native and measured_equivalent else "fp32"


def fma_lanes_per_cycle(flags: frozenset[str] | set[str], vendor: str | None, family: str | None) -> int | None:
    """fp32 FMAs one core completes per cycle (see the module's notes); None for an unknown ISA."""
    if "avx512f" in flags:
        if vendor == "AuthenticAMD" and family == "25":  # Zen 4: 512-bit FMAs on 256-bit pipes
            return 16
        return 32
    if "avx2" in flags and "fma" in flags:
        return 16
    return None


def bf16_flops_factor(flags: frozenset[str] | set[str]) -> int:
    """bf16 FLOPs per cycle over fp32's (see the module's notes): AMX_BF16's tiles do 1,024 bf16 FLOPs per cycle
    per core (Intel's figure), 32x the 32 of two 512-bit fp32 FMA pipes; AVX512_BF16's VDPBF16PS does two
    multiply-adds per fp32 lane at the FMA's rate: 2x; without either, bf16 is converted to fp32: 1x."""
    if "amx_bf16" in flags:
        return 32
    return 2 if "avx512_bf16" in flags else 1


@dataclass(frozen=True)
class CpuPeak:
    model: str
    cores: int
    lanes: int | None  # fp32 FMA lanes per core per cycle
    max_mhz: float | None  # lscpu's / sysfs's maximum clock; None when the machine does not report one
    current_mhz: float | None  # /proc/cpuinfo's 'cpu MHz' (the clock now, not the maximum)
    bf16_factor: int = 1  # bf16 FLOPs per fp32 FLOP of peak (bf16_flops_factor)

    def flops(self, mhz: float | None, precision: str = "fp32") -> float | None:
        if self.lanes is None or mhz is None:
            return None
        return self.cores * self.lanes * 2 * mhz * 1e6 * (self.bf16_factor if precision == "bf16" else 1)

    @property
    def peak(self) -> float | None:
        """fp32 FLOP/s at the maximum clock; None (unknown) without one."""
        return self.flops(self.max_mhz)

    def reference(self, precision: str = "fp32") -> tuple[float | None, str]:
        """The peak a fraction is taken of, for `precision`, and which clock it assumes: the maximum clock, or
        else the clock /proc/cpuinfo reports (a virtual machine's; boost clocks above it would lower the
        fraction: on the AMD EPYC VM of docs/explanation/speed.md a dependent-add loop ran at 2.4-2.6 GHz and
        an FMA loop at 32 fp32 FLOPs per cycle of the reported 2,596 MHz, so it is the clock cores run at)."""
        if self.max_mhz is not None:
            return self.flops(self.max_mhz, precision), "max"
        return self.flops(self.current_mhz, precision), "reported"

    def describe(self, precision: str = "fp32") -> str:
        cores = f"{self.cores} core{'s' if self.cores != 1 else ''}"
        lanes = f"{self.lanes} fp32 FMA lanes" if self.lanes else "unknown FMA width"
        times = f" x {self.bf16_factor} (bf16)" if precision == "bf16" and self.bf16_factor != 1 else ""
        peak = self.flops(self.max_mhz, precision)
        if peak is not None:
            return (f"peak {peak / 1e9:,.0f} GFLOP/s {precision} ({cores} x {lanes} x 2{times} x "
                    f"{self.max_mhz:,.0f} MHz max)")
        text = f"peak unknown ({cores} x {lanes}{times}; no maximum clock reported)"
        at_current = self.flops(self.current_mhz, precision)
        if at_current is not None:
            text += (f"; {at_current / 1e9:,.0f} GFLOP/s {precision} at the {self.current_mhz:,.0f} MHz /proc/cpuinfo "
                     "reports (a boost clock above it would lower the fraction)")
        return text


def _lscpu_max_mhz() -> float | None:
    text = ""
    if shutil.which("lscpu"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10,
                                  env={**os.environ, "LC_ALL": "C"}).stdout
    value = cpuinfo_field(text, "CPU max MHz")
    if value:
        with contextlib.suppress(ValueError):
            return float(value)
    with contextlib.suppress(OSError, ValueError):
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as file:
            return int(file.read().strip()) / 1000.0  # kHz
    return None


def cpu_peak(threads: int | None = None) -> CpuPeak:
    """The peak of the cores torch computes on (its thread count, at most the cores this process may use)."""
    text = cpuinfo_text()
    flags = cpu_flags(text)
    cores = min(threads or torch.get_num_threads(), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                else os.cpu_count() or 1)
    current = cpuinfo_field(text, "cpu MHz")
    lanes = fma_lanes_per_cycle(flags, cpuinfo_field(text, "vendor_id"), cpuinfo_field(text, "cpu family"))
    return CpuPeak(model=cpu_model_name(text), cores=cores, lanes=lanes, max_mhz=_lscpu_max_mhz(),
                   current_mhz=float(current) if current else None, bf16_factor=bf16_flops_factor(flags))


def cpu_model_name(text: str | None = None) -> str:
    return cpuinfo_field(cpuinfo_text() if text is None else text, "model name") or "unknown CPU"
