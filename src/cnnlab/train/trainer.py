"""The Trainer: `fit()` runs epochs of `train_epoch()` and `evaluate()`, each returning a metrics dict.

Speed rules (docs/architecture.md; the data path): no `.item()` and no Python branch on tensor values inside the step.
Loss sums, correct counts and the non-finite flag stay on the device and are read once per epoch, or
every `progress_seconds` for the progress bar, which is also when divergence is noticed mid-epoch.

Stopping: a callback sets `should_stop` (status 'stopped_early'); SIGINT/SIGTERM set the process's stop
request (train/interrupts.py) that the loop reads after the current step, so the step finishes and a
consistent checkpoint can be written (status 'interrupted'); a second signal ends the process at once
(exit 130/143), which corrupts nothing because every file is written atomically. A NaN/Inf training
loss, or a mean training loss above `train.divergence_threshold` x ln(C) (C classes; ln(C) is the loss
of a uniform guess, where training starts), ends the run as 'diverged' without touching the last good
checkpoint.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import RunConfig
from ..data import Batches
from ..evaluate.metrics import evaluate_model
from ..optim import apply_schedule, lr_factor
from . import distributed
from .callbacks import Callback
from .checkpoint import (
    optimizer_from_flat,
    optimizer_to_flat,
    restore_rng,
    rng_tensors,
    split_prefix,
)
from .graphs import GraphStep, graph_support
from .interrupts import STOP
from .runtime import Runtime
from .status import Status


@dataclass
class TrainState:
    """Everything besides weights and optimizer state that a resumed run needs to continue exactly."""

    epoch: int = 0  # completed epochs
    step: int = 0  # optimizer steps taken
    step_in_epoch: int = 0  # steps of the unfinished epoch already taken (after an interrupt)
    train_seconds: float = 0.0  # time inside train_epoch, summed over sessions
    best_epoch: int | None = None
    best_value: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class Accumulator:
    """Running training-loss sum, correct count and non-finite flag, all on the device."""

    def __init__(self, device: torch.device, steps: int) -> None:
        float_type = torch.float32 if device.type == "mps" else torch.float64
        self.loss_sum = torch.zeros((), dtype=float_type, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.nonfinite = torch.zeros((), dtype=torch.bool, device=device)
        self.step_losses = torch.full((max(steps, 1),), float("nan"), dtype=torch.float32, device=device)
        self.count = 0
        self.seconds = 0.0

    def add(self, index: int, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.loss_sum += loss.to(self.loss_sum.dtype) * labels.shape[0]
        self.correct += (logits.argmax(dim=1) == labels).sum()
        self.nonfinite |= ~torch.isfinite(loss)
        self.step_losses[index] = loss  # every step's loss, read once per epoch (the loss-per-iteration plots)
        self.count += int(labels.shape[0])

    def read(self, all_ranks: bool = False) -> tuple[float, float, bool]:
        """(mean loss, accuracy, diverged): one host sync; `all_ranks`: over every rank of a distributed run."""
        if all_ranks:
            self.merge()
        values = torch.stack([self.loss_sum.double(), self.correct.double(), self.nonfinite.double()]).tolist()
        count = max(self.count, 1)
        return values[0] / count, values[1] / count, bool(values[2])

    def merge(self) -> None:
        """Distributed: every rank's sums and counts into every rank's accumulator (step losses become the
        global batches' means: each rank's is its slice's mean, and the slices are equal)."""
        world = torch.distributed.get_world_size()
        flag = self.nonfinite.to(torch.int32)
        for tensor in (self.loss_sum, self.correct, self.step_losses):
            torch.distributed.all_reduce(tensor)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        self.nonfinite.copy_(flag.bool())
        self.step_losses /= world
        self.count = int(distributed.all_sum([float(self.count)], self.correct.device)[0])

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"partial.loss_sum": self.loss_sum, "partial.correct": self.correct,
                "partial.nonfinite": self.nonfinite, "partial.step_losses": self.step_losses}

    def load(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
             world: distributed.World = distributed.SINGLE) -> None:
        """The sums of an interrupted epoch (saved merged over all ranks). Resumed on W ranks, rank 0 holds
        them (its step losses x W, as the merge divides by W) and the others start from zero."""
        self.seconds = float(meta["seconds"])
        if not world.main:
            self.step_losses.zero_()
            return
        self.loss_sum.copy_(tensors["partial.loss_sum"])
        self.correct.copy_(tensors["partial.correct"])
        self.nonfinite.copy_(tensors["partial.nonfinite"])
        self.step_losses.copy_(tensors["partial.step_losses"] * world.size)
        self.count = int(meta["count"])


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        train_batches: Batches,
        val_batches: Batches | None,
        config: RunConfig,
        runtime: Runtime,
        callbacks: Sequence[Callback] = (),
        world: distributed.World = distributed.SINGLE,
    ) -> None:
        self.model = model
        self.world = world
        self.eval_model = torch.compile(model) if config.train.compile else model
        self.forward_model = self.eval_model
        if world.active:  # gradients averaged over the ranks in backward (train/distributed.py)
            ids = [runtime.device.index] if runtime.device.type == "cuda" else None
            wrapped = nn.parallel.DistributedDataParallel(model, device_ids=ids)
            self.forward_model = torch.compile(wrapped) if config.train.compile else wrapped
        self.optimizer = optimizer
        self.train_batches, self.val_batches = train_batches, val_batches
        self.config, self.runtime = config, runtime
        self.callbacks = list(callbacks)
        self.epochs = config.train.epochs
        self.num_classes = int(getattr(model, "num_classes", 0)) or _output_features(model)
        self.state = TrainState()
        self.partial: Accumulator | None = None
        self.should_stop, self.stop_reason = False, ""
        self.status, self.reason = Status.COMPLETED, ""
        self.progress_seconds = 0.5
        self.interrupt_signal: int | None = None
        self.facts: dict[str, Any] = {}  # for run.json: early_stop, divergence, graphs (RunRecord fields)
        self.graph_step: GraphStep | None = None
        if config.train.graphs:
            why = graph_support(runtime.device, train_batches, optimizer, config.train.compile, world.active)
            self.facts["graphs"] = {"used": why is None, "why": why}
            if why is None:
                self.graph_step = GraphStep(model, optimizer, runtime.amp_dtype)

    # ------------------------------------------------------------------------------------------ loop
    def fit(self) -> Status:
        """Train until `epochs`, a stop request, an interrupt or divergence; return the status."""
        with STOP.watching():
            self._call("on_fit_start")
            while self.state.epoch < self.epochs and self.status == Status.COMPLETED:
                if self.should_stop:
                    self.status, self.reason = Status.STOPPED_EARLY, self.stop_reason
                    break
                self._run_epoch(self.state.epoch)
            if self.status == Status.COMPLETED and not self.reason:
                self.reason = f"trained {self.state.epoch} epoch{'' if self.state.epoch == 1 else 's'}"
            self._call("on_fit_end", self.status)
        return self.status

    def _run_epoch(self, epoch: int) -> None:
        self._call("on_epoch_start", epoch)
        train = self.train_epoch(epoch)
        if self.status != Status.COMPLETED:
            return
        started = time.perf_counter()
        val = self.evaluate(self.val_batches) if self.val_batches is not None else {}
        row = {
            "epoch": epoch + 1, "step": self.state.step, "lr": train["lr"],
            "train_loss": train["loss"], "train_acc": train["acc"],
            "val_loss": val.get("loss"), "val_acc": val.get("acc"), "val_top5": val.get("top5"),
            "train_seconds": train["seconds"], "val_seconds": time.perf_counter() - started,
            "images_per_second": train["images_per_second"], "step_losses": train["step_losses"],
        }
        self.state.epoch = epoch + 1
        row["is_best"] = self._update_best(row)
        self.state.history.append({k: v for k, v in row.items() if k not in ("is_best", "step_losses")})
        self._call("on_epoch_end", row)

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One epoch (or the rest of an interrupted one). Returns loss, acc, lr, seconds, img/s."""
        self.model.train()
        steps = len(self.train_batches)
        schedule, history = self.config.schedule, self.state.history
        apply_schedule(self.optimizer, lr_factor(schedule, epoch, self.epochs, history))
        acc = self.partial or Accumulator(self.runtime.device, steps)
        self.partial = None
        started = time.perf_counter()
        next_report = started + self.progress_seconds
        for images, labels in self.train_batches.batches(epoch, self.state.step_in_epoch):
            if schedule.per_iteration:  # a Python float per step: no device sync
                position = epoch + self.state.step_in_epoch / steps
                apply_schedule(self.optimizer, lr_factor(schedule, position, self.epochs, history))
            loss, logits = (self.graph_step or self._step)(images, labels)
            acc.add(self.state.step_in_epoch, loss, logits, labels)
            self.state.step += 1
            self.state.step_in_epoch += 1
            if self._interrupt_agreed():
                return self._interrupted(acc, started)
            if not self.world.active and time.perf_counter() >= next_report:  # ranks would disagree mid-epoch
                if self._report(acc, started, epoch):
                    return {}
                next_report = time.perf_counter() + self.progress_seconds
        loss_mean, accuracy, diverged = acc.read(all_ranks=self.world.active)
        acc.seconds += time.perf_counter() - started
        self.state.train_seconds += time.perf_counter() - started
        if self._check_divergence(epoch, loss_mean, diverged):
            return {}
        self.state.step_in_epoch = 0
        return {"loss": loss_mean, "acc": accuracy, "lr": self.optimizer.param_groups[0]["lr"],
                "seconds": acc.seconds, "images_per_second": acc.count / max(acc.seconds, 1e-9),
                "step_losses": acc.step_losses.tolist()[:steps]}

    def _step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with self.runtime.autocast():
            logits = self.forward_model(images)
            loss = F.cross_entropy(logits.float(), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), logits.detach()

    def _report(self, acc: Accumulator, started: float, epoch: int) -> bool:
        """Progress callbacks; returns True when the run diverged (noticed here, mid-epoch)."""
        loss_mean, accuracy, diverged = acc.read()
        if diverged:  # NaN/Inf at once; the loss threshold waits for the epoch's mean (early spikes pass)
            self.state.train_seconds += time.perf_counter() - started
            self._check_divergence(epoch, loss_mean, diverged)
            return True
        elapsed = acc.seconds + time.perf_counter() - started
        self._call("on_progress", {
            "epoch": epoch, "step_in_epoch": self.state.step_in_epoch, "step": self.state.step,
            "loss": loss_mean, "acc": accuracy, "images_per_second": acc.count / max(elapsed, 1e-9),
        })
        return False

    def _interrupt_agreed(self) -> bool:
        """A signal seen by this process, or (distributed) by any rank: all ranks stop after the same step."""
        if self.interrupt_signal is None:
            self.interrupt_signal = STOP.signal
        if not self.world.active:
            return self.interrupt_signal is not None
        if distributed.any_rank(self.interrupt_signal is not None, self.runtime.device):
            if self.interrupt_signal is None:
                self.interrupt_signal = signal.SIGTERM  # another rank's signal: end as it does
            return True
        return False

    def _interrupted(self, acc: Accumulator, started: float) -> dict[str, Any]:
        if self.world.active:
            acc.merge()  # the checkpoint holds the epoch so far over all ranks: resumable on any world size
        elapsed = time.perf_counter() - started
        acc.seconds += elapsed
        self.state.train_seconds += elapsed
        self.partial = acc
        name = signal.Signals(self.interrupt_signal).name
        self.status = Status.INTERRUPTED
        self.reason = f"{name} during epoch {self.state.epoch + 1} after step {self.state.step}"
        return {}

    @property
    def divergence_limit(self) -> float | None:
        """The mean training loss above which a run has exploded: train.divergence_threshold x ln(C)."""
        factor = self.config.train.divergence_threshold
        if factor is None or self.num_classes < 2:
            return None
        return factor * math.log(self.num_classes)

    def _check_divergence(self, epoch: int, loss_mean: float, nonfinite: bool) -> bool:
        """End the run as diverged when the loss went NaN/Inf or past the limit; True when it did."""
        limit = self.divergence_limit
        if nonfinite or not math.isfinite(loss_mean):
            what, rule = "became NaN/Inf", "nonfinite"
        elif limit is not None and loss_mean > limit:
            what, rule = (f"reached {loss_mean:.4g}, above train.divergence_threshold x ln({self.num_classes}) = "
                          f"{limit:.4g} (a uniform guess scores {math.log(self.num_classes):.4g})"), "threshold"
        else:
            return False
        self.status = Status.DIVERGED
        kept = (f"the checkpoint of epoch {self.state.epoch} is kept" if self.state.epoch
                else "no epoch completed, so no checkpoint was written")
        self.reason = (f"training loss {what} in epoch {epoch + 1} (by step {self.state.step}); "
                       f"lr={self.optimizer.param_groups[0]['lr']:g} is likely too high; {kept}")
        self.facts["divergence"] = {"rule": rule, "epoch": epoch + 1, "step": self.state.step,
                                    "loss": loss_mean if math.isfinite(loss_mean) else str(loss_mean),
                                    "limit": limit}
        return True

    def evaluate(self, batches: Batches, confusion: bool = False, per_image: bool = False) -> dict[str, Any]:
        return evaluate_model(self.eval_model, batches, self.num_classes, self.runtime.autocast, confusion,
                              per_image=per_image)

    @property
    def monitor(self) -> str:
        """What 'best' means: train.monitor, or the early-stopping metric when a criterion is on (so the
        restored best weights are those of the lowest E_va)."""
        stop = self.config.stop
        if stop.criterion == "none":
            return self.config.train.monitor
        return "val_acc" if stop.metric == "val_error" else stop.metric

    def _update_best(self, row: dict[str, Any]) -> bool:
        monitor = self.monitor
        value = row.get(monitor)
        if value is None:  # no validation split: the last epoch is the best we know
            value, monitor = -row["train_loss"], "train_loss"
        elif monitor.endswith("loss"):
            value = -value
        if self.state.best_value is None or value > self.state.best_value:
            self.state.best_value, self.state.best_epoch = value, row["epoch"]
            return True
        return False

    def _call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    # ------------------------------------------------------------------------------------ checkpoints
    def snapshot(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON metadata) of the complete training position, for a resumable checkpoint."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        optim_tensors, optim_meta = optimizer_to_flat(self.optimizer)
        tensors.update(optim_tensors)
        tensors.update(rng_tensors())
        meta: dict[str, Any] = {"state": self.state.to_json(), "optimizer": optim_meta}
        if self.partial is not None:
            tensors.update(self.partial.tensors())
            meta["partial"] = {"count": self.partial.count, "seconds": self.partial.seconds}
        return tensors, meta

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.model.load_state_dict(split_prefix(tensors, "model."))
        self.optimizer.load_state_dict(optimizer_from_flat(tensors, meta["optimizer"]))
        self.state = TrainState(**meta["state"])
        if "partial" in meta:
            self.partial = Accumulator(self.runtime.device, len(self.train_batches))
            self.partial.load(tensors, meta["partial"], self.world)
        restore_rng(tensors)


def _output_features(model: nn.Module) -> int:
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return last[-1].out_features if last else 0
