"""Where and how a run computes: device, autocast dtype, memory format, seeding.

Library code never calls `.cuda()`; it asks this module. On CUDA the trainer uses bf16 autocast (the
H100's tensor cores; no loss scaling needed, unlike fp16). channels_last (NHWC) is what cuDNN's fast
convolution kernels want, and on the CPU oneDNN's too (convnet training at batch 64 on 2 cores: 3,500
img/s NHWC against 2,200 NCHW); MPS stays NCHW.
"""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..config import RunConfig
from ..errors import ConfigError
from . import cpu
from .allocator import keep_freed_memory
from .distributed import world_from_env
from .speed import compile_requested, threads_for


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    amp_dtype: torch.dtype | None  # None: full fp32
    channels_last: bool
    threads: int = 0  # torch's intra-op threads chosen for the run (0: left as torch had them)
    allocator: str = ""  # what the C allocator is (train/allocator.py); "" when not chosen here

    def autocast(self) -> contextlib.AbstractContextManager:
        """The training step's precision (bf16 autocast, or fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def scoring(self) -> contextlib.AbstractContextManager:
        """The precision of every number a run reports (validation, its test score, `cnnlab eval`, `predict`,
        ensembles, features): fp32, whatever the training step's autocast. An exported file runs in fp32 too,
        so a run, its predictions and its export agree to ~1e-6 in probability (bf16 logits differ by up to
        ~1e-2: the same run scored 58.99% in bf16 and 59.34% in fp32). Costs little: evaluation is a forward
        pass over the held-out images, a small part of an epoch."""
        return contextlib.nullcontext()

    @property
    def precision(self) -> str:
        return "bf16" if self.amp_dtype == torch.bfloat16 else "fp32"

    def speed(self, compile_value: bool | str) -> dict[str, Any]:
        """run.json's and bench's `speed`: how it computes with auto resolved; compile holds the request until
        the run (or bench) decides it."""
        return {"precision": self.precision, "channels_last": self.channels_last,
                "threads": self.threads or torch.get_num_threads(), "allocator": self.allocator or "left as it is",
                "compile": {"requested": compile_requested(compile_value)}}

    def describe(self) -> str:
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return self.device.type


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device '{name}' is not a device name; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but torch sees no CUDA device; use device=cpu or device=auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device={name} but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={name} but MPS is not available; use device=cpu or device=auto")
    return device


def resolve_runtime(config: RunConfig) -> Runtime:
    """How a run computes. `cnnlab bench` resolves its case through `choose_runtime` too: one meaning of auto."""
    device = resolve_device(config.device)
    world = world_from_env()
    if device.type == "cuda" and device.index is None and world.active:  # torchrun: one GPU per process
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    batch = config.train.batch_size if isinstance(config.train.batch_size, int) else 0
    runtime = choose_runtime(device, config.train.precision, config.train.channels_last, batch)
    if config.train.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes (drop_last): the autotuned kernel is reused
    return runtime


def choose_runtime(device: torch.device, precision: str, channels_last: bool | None, batch_size: int) -> Runtime:
    """precision, memory format, threads and allocator for `device` (auto resolved here and nowhere else):
    bf16 where auto_precision says, NHWC on CUDA and CPU (cuDNN's and oneDNN's fast kernels; measured
    1.25-1.6x on the CPU, convnet at batch 64), the threads of speed.threads_for, and on the CPU the
    allocator that keeps a step's freed memory (train/allocator.py)."""
    chosen = auto_precision(device) if precision == "auto" else precision
    if chosen not in ("fp32", "bf16"):
        raise ConfigError(f"precision must be fp32, bf16 or auto, not '{precision}'")
    layout = device.type in ("cuda", "cpu") if channels_last is None else channels_last
    threads, allocator = 0, ""
    if device.type == "cpu":
        threads = threads_for(batch_size, os.environ)
        if threads:
            torch.set_num_threads(threads)
        threads = torch.get_num_threads()
        allocator = keep_freed_memory()
    return Runtime(device, torch.bfloat16 if chosen == "bf16" else None, layout, threads, allocator)


def auto_precision(device: torch.device) -> str:
    """precision=auto: bf16 on CUDA devices that support it; on the CPU, bf16 only with native bf16 and the
    verdict study's evidence (train/cpu.py, BF16_CPU_DEFAULT); fp32 elsewhere (MPS)."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return cpu.cpu_precision(cpu.cpu_flags(), cpu.BF16_CPU_DEFAULT, cpu.mkldnn_bf16_supported())
    return "fp32"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
