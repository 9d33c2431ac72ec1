"""One run on several processes: torch.distributed, launched by torchrun (`torchrun --nproc-per-node N -m
cnnlab train ...`, or `cnnlab train ... --nproc N`, which execs torchrun).

The rules, and why:
- `train.batch_size` is the *global* batch; each of W ranks takes its slice of every global batch of the
  single-process (seed, epoch) order (data/loader.py), so the samples, their augmentation draws and the
  averaged gradient (DistributedDataParallel averages over ranks, each rank's loss a mean over an equal
  slice) are those of one process at the same batch: the weights agree up to float summation order.
- The data position in a checkpoint is global (epoch, global step), so a run resumes on any world size.
- Rank 0 alone writes the run directory; every rank reads the same checkpoint on resume.
- Metrics are all-reduced; decisions that end the loop (a signal, divergence) are agreed by all ranks at
  the same step, so no rank waits forever in a collective another has left.
- NCCL on CUDA (one GPU per rank: cuda:LOCAL_RANK), gloo on the CPU.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import ConfigError
from .interrupts import default_signals


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


SINGLE = World()


def world_from_env() -> World:
    """The world torchrun describes in RANK / WORLD_SIZE / LOCAL_RANK (one process: no variables)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise ConfigError("RANK / WORLD_SIZE / LOCAL_RANK must be integers (torchrun sets them)") from None
    return World(rank, size, local) if size > 1 else SINGLE


def init(world: World, device: torch.device) -> None:
    """Join the process group (once per process). A signal while the ranks meet ends this rank at once
    (nothing is written before they have met): a rank that only recorded it would wait there for the others
    until the timeout, and torchrun's shutdown with it."""
    if world.active and not dist.is_initialized():
        with default_signals():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "NCCL error")  # as gloo and NCCL say it


def lost_peer(exc: BaseException, world: World) -> bool:
    """Whether `exc` is a collective that failed because another rank is gone (killed, out of memory), as
    gloo and NCCL report it, rather than an error of this rank's own."""
    if not world.active:
        return False
    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(mark in text for mark in (*PEER_GONE, "[gloo/"))


def peer_reason(exc: BaseException) -> str:
    """What the backend saw, in a few words: its known phrase, or its message without source paths."""
    text = " ".join(str(exc).split())
    known = next((mark for mark in PEER_GONE if mark in text), None)
    return known or re.sub(r"\[[^\]]*\]\s*", "", text)[:120] or type(exc).__name__


def rank_batch(global_batch: int, world: World) -> int:
    """Each rank's share of the global batch; refused unless it divides evenly."""
    if global_batch % world.size:
        low = global_batch - global_batch % world.size
        raise ConfigError(f"train.batch_size={global_batch} is the global batch and must divide evenly over the "
                          f"{world.size} processes; use {low or world.size} or {low + world.size}")
    return global_batch // world.size


def lr_factor(rule: str, world: World) -> float:
    """optim.lr_scaling: none, linear (Goyal et al. 2017: k workers, k x the rate, for a batch that grew k
    times) or sqrt (Krizhevsky 2014, "one weird trick")."""
    if rule == "linear":
        return float(world.size)
    if rule == "sqrt":
        return math.sqrt(world.size)
    return 1.0


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum over ranks (one collective)."""
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when it is true on one (an interrupt, a diverged loss)."""
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def barrier(world: World) -> None:
    if world.active and dist.is_initialized():
        dist.barrier()


def finish(world: World) -> None:
    if world.active and dist.is_initialized():
        dist.destroy_process_group()
