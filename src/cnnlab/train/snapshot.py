"""The Trainer's checkpoint side: the complete training position as (tensors, JSON metadata) and back.

A mixin of `Trainer` (train/trainer.py), apart so each file stays a size a reader takes in at once; the
attributes it reads are the Trainer's, declared here for the type checker."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import distributed
from .accumulator import Accumulator
from .checkpoint import optimizer_from_flat, optimizer_to_flat, restore_rng, rng_tensors, split_prefix
from .ema import PREFIX as EMA_PREFIX
from .ema import WeightAverage
from .result import TrainState
from .runtime import Runtime
from .speed import CompileChoice


class Snapshots:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    ema: WeightAverage | None
    state: TrainState
    partial: Accumulator | None
    runtime: Runtime
    steps_per_epoch: int
    world: distributed.World
    compile_choice: CompileChoice | None
    resumed_compile: dict[str, Any] | None  # the first session's train.compile decision (auto keeps it)

    def snapshot(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON metadata) of the complete training position, for a resumable checkpoint."""
        tensors = self.weight_tensors()
        optim_tensors, optim_meta = optimizer_to_flat(self.optimizer)
        tensors.update(optim_tensors)
        tensors.update(rng_tensors())
        meta: dict[str, Any] = {"state": self.state.to_json(), "optimizer": optim_meta}
        if self.compile_choice is not None:
            meta["compile"] = self.compile_choice.to_dict()
        if self.partial is not None:
            tensors.update(self.partial.tensors())
            meta["partial"] = {"count": self.partial.count, "seconds": self.partial.seconds}
        return tensors, meta

    def weight_tensors(self) -> dict[str, torch.Tensor]:
        """The weights under `model.`, and the EMA's under `ema.` when one is kept."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        return {**tensors, **(self.ema.tensors() if self.ema is not None else {})}

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.model.load_state_dict(split_prefix(tensors, "model."))
        if self.ema is not None and any(name.startswith(EMA_PREFIX) for name in tensors):
            self.ema.load(tensors)  # else (EMA turned on at a resume) it starts from the weights at the next step
        # the base rates of this session's config, not the checkpoint's: a resume that changed optim.lr
        # (--allow-config-change) trains at the new rate from here on, through the schedule rebuilt from it
        base_rates = [group.get("initial_lr") for group in self.optimizer.param_groups]
        self.optimizer.load_state_dict(optimizer_from_flat(tensors, meta["optimizer"]))
        for group, rate in zip(self.optimizer.param_groups, base_rates):
            if rate is not None:
                group["initial_lr"] = rate
        self.state = TrainState(**meta["state"])
        self.resumed_compile = meta.get("compile")
        if "partial" in meta:
            self.partial = Accumulator(self.runtime.device, self.steps_per_epoch)
            self.partial.load(tensors, meta["partial"], self.world)
        restore_rng(tensors)
