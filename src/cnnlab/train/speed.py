"""The speed choices of `auto` that depend on the run: threads by batch size, and whether torch.compile
pays for its compile time within the run. Pure decisions of measured numbers; train/runtime.py and the
Trainer apply them, `cnnlab bench` and `cnnlab train` alike, and run.json records them (`speed`).

Compile (train.compile=auto) is decided per run, on the CPU only (no GPU has proven it yet: DESIGN's rule
for GPU paths), in two measured steps:
0. a run whose steps could not last COMPILE_SECONDS even at the CPU's peak FLOP rate (the FLOPs of its
   images, models/summary.py, over train/cpu.py's peak: a lower bound of its time) trains eagerly at once;
1. the eager step is timed on the run's own model, batch and precision (a scratch copy: the run's weights,
   optimizer and random streams are untouched), and the run's eager training time estimated from it;
   a run shorter than COMPILE_SECONDS / (1 - 1 / BEST_SPEEDUP) of eager training cannot pay for a compile
   even at the best speed-up measured, and trains eagerly without compiling anything;
2. a longer run compiles the scratch copy, times the compiled step, and compiles the run's model only when
   the compiled step is faster by MARGIN over the steps left (the compile time is then spent).
Measured on the 2-core AMD EPYC (Zen 4) of docs/explanation/speed.md, torch 2.14, convnet 1x32x32 batch 64:
compiling forward and backward took 17-38 s, and the compiled step ran at 0.5x (fp32) and 0.35x (bf16) of
eager: inductor's fused max-pool-with-indices kernels (20 ms a step) replace oneDNN's (3 ms), and the
convolutions, most of the step, stay oneDNN's calls either way. So on that CPU compile=auto decides
eager for the seed networks, and says why in run.json.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..errors import ConfigError

DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice at start-up (its physical cores)
# batch sizes up to which one thread beats two on a 2-core CPU (synchronising two threads per layer costs
# more than half a small layer's work): measured, docs/explanation/speed.md "Threads"; 0: never
ONE_THREAD_UP_TO = 0
COMPILE_SECONDS = 30.0  # compiling a small CNN's forward and backward on 2 cores: 17-38 s measured
BEST_SPEEDUP = 2.0  # the most a compiled step could gain (generous: the convnet measured at 0.35-0.5x)
MARGIN = 0.05  # a compiled step must be 5% faster than eager, beyond the timing noise, to be used
PROBE_STEPS = 3  # timed steps of each kind (after one untimed warm-up step)


def quiet_compiler() -> None:
    """Silence torch's 'No CUDA runtime is found, using CUDA_HOME=...' warning, which inductor's CPU backend
    prints on its first compile on a machine without CUDA: a CPU compile never needs CUDA."""
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)


def threads_for(batch_size: int, environ: Mapping[str, str]) -> int:
    """torch's intra-op threads for a CPU run: CNNLAB_NUM_THREADS (set by `study run --jobs N` for its
    runs), else OMP_NUM_THREADS when the user set it (0: torch already follows it), else torch's default,
    one thread for batches up to ONE_THREAD_UP_TO."""
    text = environ.get("CNNLAB_NUM_THREADS", "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:  # said, not ignored: a typo would silently run at torch's threads
            raise ConfigError(f"CNNLAB_NUM_THREADS must be a whole number of threads, at least 1 (e.g. "
                              f"CNNLAB_NUM_THREADS=2), not '{text}'; unset it for torch's own choice")
        return int(text)
    if environ.get("OMP_NUM_THREADS"):
        return 0
    if 0 < batch_size <= ONE_THREAD_UP_TO:
        return 1
    return DEFAULT_THREADS


@dataclass(frozen=True)
class CompileChoice:
    """train.compile's decision for one run, as run.json's speed.compile records it."""

    requested: str  # auto | true | false (the config's value)
    used: bool
    why: str
    eager_step_ms: float | None = None
    compiled_step_ms: float | None = None
    compile_seconds: float | None = None
    steps: int | None = None  # optimizer steps the run had left to train when it was decided

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompileChoice:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


def compile_requested(value: bool | str) -> str:
    return value if isinstance(value, str) else ("true" if value else "false")


def fixed_choice(value: bool | str, device: torch.device) -> CompileChoice | None:
    """The decision that needs no measurement, or None when auto must measure."""
    requested = compile_requested(value)
    if value is True:
        return CompileChoice(requested, True, "train.compile=true")
    if value is False:
        return CompileChoice(requested, False, "train.compile=false")
    if device.type != "cpu":
        return CompileChoice(requested, False, f"auto: eager on {device.type} (compile unmeasured on it so far; "
                                               "train.compile=true tries it)")
    return None


def worth_probing(steps: int, eager_step_seconds: float) -> bool:
    """Whether the run is long enough that a compile could pay for itself at the best speed-up measured."""
    return steps * eager_step_seconds * (1 - 1 / BEST_SPEEDUP) > COMPILE_SECONDS


def compile_pays(steps_left: int, eager_step_seconds: float, compiled_step_seconds: float) -> bool:
    """After the probe compiled (its time is spent): compile when the compiled step is faster by MARGIN."""
    return steps_left > 0 and compiled_step_seconds < eager_step_seconds * (1 - MARGIN)


def bound_choice(steps: int, fastest_step_seconds: float) -> CompileChoice | None:
    """Eager without measuring when even a step at the CPU's peak rate leaves the run too short (step 0)."""
    if worth_probing(steps, fastest_step_seconds):
        return None
    least = steps * fastest_step_seconds
    return CompileChoice("auto", False, f"auto: eager; {steps:,} steps take at least {least:,.1f} s at the CPU's "
                                        f"peak, too short to pay for a compile (~{COMPILE_SECONDS:.0f} s)", steps=steps)


def short_run_choice(steps: int, eager_step_seconds: float) -> CompileChoice:
    estimate = steps * eager_step_seconds
    return CompileChoice("auto", False, f"auto: eager; {steps:,} steps of {eager_step_seconds * 1e3:.1f} ms = "
                                        f"{estimate:,.0f} s, too short to pay for a compile (~{COMPILE_SECONDS:.0f} s)"
                                        f" even at {BEST_SPEEDUP:g}x", eager_step_ms=round(eager_step_seconds * 1e3, 3),
                         steps=steps)


def probed_choice(steps: int, eager: float, compiled: float, compile_seconds: float) -> CompileChoice:
    used = compile_pays(steps, eager, compiled)
    saved = steps * (eager - compiled)
    verdict = (f"compiled: {eager / compiled:.2f}x the eager step, saves ~{saved:,.0f} s over {steps:,} steps"
               if used else f"eager: the compiled step ran at {eager / compiled:.2f}x of eager's")
    return CompileChoice("auto", used, f"auto: {verdict} (compiling took {compile_seconds:.0f} s)",
                         eager_step_ms=round(eager * 1e3, 3), compiled_step_ms=round(compiled * 1e3, 3),
                         compile_seconds=round(compile_seconds, 2), steps=steps)


def cached_choice(steps: int, eager: float, kept: Mapping[str, Any]) -> CompileChoice:
    """A probe of the same step kept from an earlier run (train/compile_cache.py): its compiled/eager ratio
    applied to this run's own eager step, without compiling anything to measure it again."""
    ratio = float(kept["compiled_ms"]) / float(kept["eager_ms"])
    compiled = eager * ratio
    used = compile_pays(steps, eager, compiled)
    measured = f"measured on this machine for this network, batch and precision on {kept['measured']}"
    verdict = (f"compiled: {1 / ratio:.2f}x the eager step ({measured}), saves ~{steps * (eager - compiled):,.0f} s "
               f"over {steps:,} steps" if used else f"eager: the compiled step ran at {1 / ratio:.2f}x of eager's "
               f"({measured}; nothing compiled again to measure it)")
    return CompileChoice("auto", used, f"auto: {verdict}", eager_step_ms=round(eager * 1e3, 3),
                         compiled_step_ms=round(compiled * 1e3, 3), steps=steps)


def resumed_choice(recorded: Mapping[str, Any] | None, value: bool | str) -> CompileChoice | None:
    """A resumed run keeps the decision its first session made (bitwise within one setting), when auto."""
    if value != "auto" or not recorded or "used" not in recorded:
        return None
    first = CompileChoice.from_dict(recorded)
    kept = " (decided when the run started, kept on resume)"
    return CompileChoice("auto", first.used, first.why if first.why.endswith(kept) else first.why + kept,
                         first.eager_step_ms, first.compiled_step_ms, first.compile_seconds, first.steps)
