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

import numpy as np
import torch

from ..config import RunConfig
from ..errors import ConfigError
from . import cpu
from .distributed import world_from_env


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    amp_dtype: torch.dtype | None  # None: full fp32
    channels_last: bool

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
    device = resolve_device(config.device)
    world = world_from_env()
    if device.type == "cuda" and device.index is None and world.active:  # torchrun: one GPU per process
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    threads = os.environ.get("CNNLAB_NUM_THREADS")  # set by `cnnlab study run --jobs N` for its runs
    if threads and threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))
    precision = auto_precision(device) if config.train.precision == "auto" else config.train.precision
    channels_last = config.train.channels_last
    if channels_last is None:  # NHWC: cuDNN's fast kernels; on CPU oneDNN's, measured 1.25-1.6x (convnet, batch 64)
        channels_last = device.type in ("cuda", "cpu")
    if config.train.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes (drop_last): the autotuned kernel is reused
    return Runtime(device, torch.bfloat16 if precision == "bf16" else None, channels_last)


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
