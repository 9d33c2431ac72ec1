"""train.compile=auto's measurement (train/speed.py has the rule): the eager step, then, for a run long
enough, the compiled step, timed on a scratch copy of the run's model with a batch of the run's shape.

The copy trains with plain SGD on random images under `torch.random.fork_rng`, so the run's weights,
optimizer state and random streams are exactly what they were: a run decided eager computes what it would
have computed without the probe. Only the wall time of the probe (and of the compile) is spent, and the
compile only once per step and machine: a probe's measurement is kept (train/compile_cache.py) and the next
run of the same step applies its ratio to its own eager step.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import cast

import torch
from torch import nn

from ..models.summary import summarize
from .compile_cache import cache_file, recall, remember, step_key
from .cpu import cpu_peak
from .runtime import Runtime
from .speed import (
    PROBE_STEPS,
    CompileChoice,
    bound_choice,
    cached_choice,
    probed_choice,
    quiet_compiler,
    short_run_choice,
    worth_probing,
)
from .step import training_loss

Step = Callable[[], None]


def _scratch_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, runtime: Runtime) -> Step:
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-6, momentum=0.9)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with runtime.autocast():
            loss = training_loss(model(images), labels)
        loss.backward()
        optimizer.step()

    return step


def _seconds_per_step(step: Step, count: int = PROBE_STEPS) -> float:
    step()  # untimed: oneDNN's primitives, the allocator's first pages, a compiled graph's first call
    started = time.perf_counter()
    for _ in range(count):
        step()
    return (time.perf_counter() - started) / count


def fastest_step_seconds(model: nn.Module, batch_shape: tuple[int, ...], runtime: Runtime) -> float | None:
    """A lower bound of one step's time: its FLOPs at the CPU's peak rate for the run's precision; None when
    the peak or the FLOPs are unknown."""
    peak, _ = cpu_peak().reference(runtime.precision)
    if peak is None or len(batch_shape) != 4:
        return None
    try:
        flops = summarize(model, (batch_shape[1], batch_shape[2], batch_shape[3])).training_flops
    except Exception:  # a model FlopCounterMode cannot run: measure instead
        return None
    return batch_shape[0] * flops / peak if flops > 0 else None


def probe_compile(model: nn.Module, batch_shape: tuple[int, ...], num_classes: int, runtime: Runtime,
                  steps: int) -> CompileChoice:
    """Decide train.compile=auto for a run with `steps` steps (micro-batches) left (see train/speed.py)."""
    fastest = fastest_step_seconds(model, batch_shape, runtime)
    bounded = bound_choice(steps, fastest) if fastest is not None else None
    if bounded is not None:
        return bounded
    with torch.random.fork_rng(devices=[]):
        generator = torch.Generator(device=runtime.device).manual_seed(0)
        images = torch.randn(batch_shape, generator=generator, device=runtime.device)
        if runtime.channels_last and images.dim() == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = torch.randint(0, max(num_classes, 1), batch_shape[:1], generator=generator, device=runtime.device)
        scratch = copy.deepcopy(model).train()
        eager = _seconds_per_step(_scratch_step(scratch, images, labels, runtime))
        if not worth_probing(steps, eager):
            return short_run_choice(steps, eager)
        key, path = step_key(model, batch_shape, runtime.precision, runtime.channels_last), cache_file()
        kept = recall(key, path)
        if kept is not None:
            return cached_choice(steps, eager, kept)
        started = time.perf_counter()
        quiet_compiler()
        compiled_model = cast(nn.Module, torch.compile(scratch))
        compiled_step = _scratch_step(compiled_model, images, labels, runtime)
        compiled_step()  # the compile itself
        compile_seconds = time.perf_counter() - started
        compiled = _seconds_per_step(compiled_step)
        eager = min(eager, _seconds_per_step(_scratch_step(scratch, images, labels, runtime)))  # now warm too
    remember(key, path, eager * 1e3, compiled * 1e3, compile_seconds)
    return probed_choice(steps, eager, compiled, compile_seconds)
