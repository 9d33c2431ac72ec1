"""The Trainer: `fit()` runs epochs of `train_epoch()` and `evaluate()` and returns one `FitResult`.

Speed rules (docs/architecture.md, 'The training step'): no `.item()` and no Python branch on tensor values
inside the step. Loss sums, correct counts and the non-finite flag stay on the device and are read once per
epoch, or every `progress_seconds` for the progress bar, which is also when divergence is noticed mid-epoch.

How a run ends, one way each, all through `_end` (the first ending wins and is final):
- 'completed': every epoch trained.
- 'stopped_early': a callback called `request_stop(reason)` (early stopping, a pruner); the run ends
  before the next epoch (after the last one, it has completed anyway).
- 'interrupted': SIGINT/SIGTERM set the process's stop request (train/interrupts.py), which the loop reads
  after the current step, so the step finishes and a consistent checkpoint can be written; a second signal
  ends the process at once (exit 130/143), which corrupts nothing because every file is written atomically.
- 'diverged': a NaN/Inf training loss, or a mean training loss above `train.divergence_threshold` x ln(C)
  (C classes; ln(C) is the loss of a uniform guess, where training starts); the last good checkpoint is
  left untouched.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from ..config import RunConfig
from ..data import Batches
from ..data.mixing import Mixer, MixPlan
from ..evaluate.metrics import evaluate_model
from ..optim import apply_schedule, lr_factor
from . import distributed
from .accumulator import Accumulator
from .compile_probe import probe_compile
from .ema import WeightAverage
from .graphs import GraphStep, graph_support
from .hooks import Callback
from .interrupts import STOP
from .result import EMA_KEYS, FINAL_KEYS, Divergence, EarlyStopRecord, FitResult, GraphsRecord, TrainState
from .runtime import Runtime
from .snapshot import Snapshots
from .speed import CompileChoice, fixed_choice, quiet_compiler, resumed_choice
from .status import Status
from .step import EagerStep, groups, steps_per_epoch

LOG = logging.getLogger(__name__)


class Trainer(Snapshots):
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
        self.wrapped: nn.Module = model
        if world.active:  # gradients averaged over the ranks in backward (train/distributed.py)
            ids = [runtime.device.index] if runtime.device.type == "cuda" else None
            self.wrapped = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        # train.compile: decided now unless auto must measure (then in fit(), train/speed.py)
        self.compile_choice = fixed_choice(config.train.compile, runtime.device) or (
            CompileChoice("auto", False, "auto: eager in a distributed run (every rank must decide alike)")
            if world.active else None)
        self.optimizer = optimizer
        self.train_batches, self.val_batches = train_batches, val_batches
        self.config, self.runtime = config, runtime
        self.callbacks = list(callbacks)
        self.epochs = config.train.epochs
        self.num_classes = int(getattr(model, "num_classes", 0)) or _output_features(model)
        self.input_shape: tuple[int, ...] | None = None  # one image's (C, H, W): what compile=auto measures with
        self.resumed_compile: dict[str, Any] | None = None  # the first session's compile decision, on resume
        self.state = TrainState()
        self.partial: Accumulator | None = None
        self.progress_seconds = 0.5
        self.interrupt_signal: int | None = None
        self.ending: tuple[Status, str] | None = None  # (status, reason) once the run has ended
        self.stop_request: tuple[str, EarlyStopRecord | None] | None = None
        self.divergence: Divergence | None = None
        self.graphs: GraphsRecord | None = None
        self.graph_step: GraphStep | None = None
        smoothing = config.train.label_smoothing
        if config.train.graphs:
            why = graph_support(runtime.device, train_batches, optimizer, self.compiled, world.active)
            self.graphs = GraphsRecord(used=why is None, why=why)
            if why is None:
                self.graph_step = GraphStep(model, optimizer, runtime.amp_dtype, smoothing)
        self.accumulation = config.train.grad_accum_steps
        self.steps_per_epoch = steps_per_epoch(len(train_batches), self.accumulation)
        self._use_compile(self.compiled)
        self.mixer = Mixer(MixPlan.from_config(config.augment), len(train_batches), config.seed)
        self.ema = WeightAverage(model, config.train.ema_decay) if config.train.ema_decay > 0 else None

    # ------------------------------------------------------------------------------------------ loop
    def fit(self) -> FitResult:
        """Train until `epochs`, a stop request, an interrupt or divergence, and return how it ended.
        Every callback is closed either way: on_fit_end with the result, or on_exception before an error
        goes on."""
        with STOP.watching():
            try:
                if self.compile_choice is None:
                    self.compile_choice = self._probe_compile()
                    self._use_compile(self.compile_choice.used)
                self._call("on_fit_start")
                while self.ending is None and self.state.epoch < self.epochs:
                    if self.stop_request is not None:
                        self._end(Status.STOPPED_EARLY, self.stop_request[0])
                        break
                    self._run_epoch(self.state.epoch)
                result = self._result()
                self._call("on_fit_end", result)
            except BaseException as error:
                self._call_each("on_exception", error)
                raise
        return result

    @property
    def compiled(self) -> bool:
        return self.compile_choice is not None and self.compile_choice.used

    def _use_compile(self, compiled: bool) -> None:
        """The models the steps and evaluation call: compiled (torch.compile's OptimizedModule, a Module whose
        annotation says only Callable) or the model itself."""
        if compiled:
            quiet_compiler()
        self.eval_model = cast(nn.Module, torch.compile(self.model)) if compiled else self.model
        self.forward_model = self.wrapped if self.wrapped is not self.model else self.eval_model
        if compiled and self.wrapped is not self.model:
            self.forward_model = cast(nn.Module, torch.compile(self.wrapped))
        self.eager_step = EagerStep(self.forward_model, self.optimizer, self.runtime.autocast,
                                    self.config.train.label_smoothing)

    def _probe_compile(self) -> CompileChoice:
        """train.compile=auto on the CPU: kept from the first session on resume, else measured."""
        kept = resumed_choice(self.resumed_compile, "auto")
        if kept is not None:
            return kept
        steps = (self.epochs - self.state.epoch) * self.steps_per_epoch - self.state.step_in_epoch
        if self.input_shape is None:
            return CompileChoice("auto", False, "auto: eager (no input shape given to measure the step with)")
        shape = (self.train_batches.batch_size, *self.input_shape)
        return probe_compile(self.model, shape, self.num_classes, self.runtime, steps * self.accumulation)

    def request_stop(self, reason: str, early_stop: EarlyStopRecord | None = None) -> None:
        """A callback's request to end the run as 'stopped_early' with `reason` before the next epoch (after
        the last epoch the run has completed anyway); `early_stop`: the criterion's decision, for run.json.
        The first request counts."""
        if self.stop_request is None:
            self.stop_request = (reason, early_stop)

    @property
    def should_stop(self) -> bool:
        return self.stop_request is not None

    @should_stop.setter
    def should_stop(self, value: bool) -> None:
        """The callback API before FitResult: setting it now says what to call instead (it would be ignored)."""
        raise AttributeError("trainer.should_stop is gone: a callback ends the run with "
                             "trainer.request_stop(reason) (docs/reference/api.md)")

    def _end(self, status: Status, reason: str) -> None:
        if self.ending is None:
            self.ending = (status, reason)

    def _result(self) -> FitResult:
        """The one place a FitResult is made: from the ending, the state and the trainer's records."""
        state = self.state
        status, reason = self.ending or (Status.COMPLETED,
                                         f"trained {state.epoch} epoch{'' if state.epoch == 1 else 's'}")
        images = state.step * self.train_batches.batch_size * self.accumulation
        last = state.history[-1] if state.history else {}
        keys = FINAL_KEYS + (EMA_KEYS if self.ema is not None else ())
        return FitResult(
            status=status, reason=reason, epochs=state.epoch, steps=state.step, best_epoch=state.best_epoch,
            monitor=self.monitor, final={key: last.get(key) for key in keys},
            train_seconds=state.train_seconds,
            images_per_second=images / state.train_seconds if state.train_seconds > 0 else 0.0,
            history=tuple(dict(row) for row in state.history), interrupt_signal=self.interrupt_signal,
            divergence=self.divergence, early_stop=self._early_stop_record(), graphs=self.graphs,
            compiled=self.compiled, compile=self.compile_choice.to_dict() if self.compile_choice else None)

    def _early_stop_record(self) -> EarlyStopRecord | None:
        """The criterion's decision when it ended the run; armed (not fired) when one was configured."""
        if self.stop_request is not None and self.stop_request[1] is not None:
            return self.stop_request[1]
        stop = self.config.stop
        return EarlyStopRecord(stop.criterion, stop.metric) if stop.criterion != "none" else None

    def _run_epoch(self, epoch: int) -> None:
        self._call("on_epoch_start", epoch)
        train = self.train_epoch(epoch)
        if train is None:  # the run ended inside the epoch
            return
        started = time.perf_counter()
        val = self.evaluate(self.val_batches) if self.val_batches is not None else {}
        averaged = self.evaluate(self.val_batches, ema=True) if self.ema and self.val_batches is not None else {}
        row = {
            "epoch": epoch + 1, "step": self.state.step, "lr": train["lr"],
            "train_loss": train["loss"], "train_acc": train["acc"],
            "val_loss": val.get("loss"), "val_acc": val.get("acc"), "val_top5": val.get("top5"),
            "train_seconds": train["seconds"], "val_seconds": time.perf_counter() - started,
            "images_per_second": train["images_per_second"], "step_losses": train["step_losses"],
            **{f"ema_val_{key}": averaged[key] for key in ("loss", "acc", "top5") if key in averaged},
        }
        self.state.epoch = epoch + 1
        row["is_best"] = self._update_best(row)
        self.state.history.append({k: v for k, v in row.items() if k not in ("is_best", "step_losses")})
        self._call("on_epoch_end", row)

    def train_epoch(self, epoch: int) -> dict[str, Any] | None:
        """One epoch (or the rest of an interrupted one): loss, acc, lr, seconds, img/s and every step's
        loss; None when the run ended in it instead (interrupted or diverged: `ending` says which)."""
        steps = self.steps_per_epoch
        acc = self.partial or Accumulator(self.runtime.device, steps)
        self.partial = None
        started = time.perf_counter()
        try:
            self._train_steps(epoch, acc, started)
            if self.ending is None:
                loss_mean, accuracy, diverged = acc.read(all_ranks=self.world.active)
        finally:  # the one place training time is counted, however the epoch ends
            elapsed = time.perf_counter() - started
            acc.seconds += elapsed
            self.state.train_seconds += elapsed
        if self.ending is not None:
            return None
        self._check_divergence(epoch, loss_mean, diverged)
        if self.ending is not None:
            return None
        self.state.step_in_epoch = 0
        return {"loss": loss_mean, "acc": accuracy, "lr": self.optimizer.param_groups[0]["lr"],
                "seconds": acc.seconds, "images_per_second": acc.count / max(acc.seconds, 1e-9),
                "step_losses": acc.step_losses.tolist()[:steps]}

    def _train_steps(self, epoch: int, acc: Accumulator, started: float) -> None:
        """The epoch's remaining steps, until its end or the end of the run (an interrupt, or NaN/Inf seen
        at a progress report)."""
        self.model.train()
        steps, accumulation = self.steps_per_epoch, self.accumulation
        schedule, history = self.config.schedule, self.state.history
        apply_schedule(self.optimizer, lr_factor(schedule, epoch, self.epochs, history))
        next_report = started + self.progress_seconds
        micro = self.train_batches.batches(epoch, self.state.step_in_epoch * accumulation)
        for group in groups(micro, accumulation, steps - self.state.step_in_epoch):
            if schedule.per_iteration:  # a Python float per step: no device sync
                position = epoch + self.state.step_in_epoch / steps
                apply_schedule(self.optimizer, lr_factor(schedule, position, self.epochs, history))
            loss, logits, labels = self._step(group, epoch)
            acc.add(self.state.step_in_epoch, loss, logits, labels)  # accuracy: the hard labels, mixed or not
            self.state.step += 1
            self.state.step_in_epoch += 1
            if self._interrupt_agreed():
                self._interrupted(acc)
                return
            if not self.world.active and time.perf_counter() >= next_report:  # ranks would disagree mid-epoch
                self._report(acc, started, epoch)
                if self.ending is not None:
                    return
                next_report = time.perf_counter() + self.progress_seconds

    def _step(self, group: list[tuple[torch.Tensor, torch.Tensor]],
              epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimizer step over a group of micro-batches, each mixed (mixup/CutMix) by its index in the
        epoch: (mean loss, logits, hard labels)."""
        first = self.state.step_in_epoch * self.accumulation
        inputs = [self.mixer(images, labels, self.num_classes, epoch, first + index)
                  for index, (images, labels) in enumerate(group)]
        loss, logits = self.graph_step(*inputs[0]) if self.graph_step else self.eager_step(inputs)
        if self.ema is not None:
            self.ema.update(self.model)
        labels = group[0][1] if len(group) == 1 else torch.cat([labels for _, labels in group])
        return loss, logits, labels

    def _report(self, acc: Accumulator, started: float, epoch: int) -> None:
        """on_progress from one read of the device sums. A NaN/Inf loss seen here ends the run at once; the
        threshold rule waits for the epoch's mean, so early spikes pass."""
        loss_mean, accuracy, nonfinite = acc.read()
        if nonfinite:
            self._check_divergence(epoch, loss_mean, nonfinite)
            return
        elapsed = acc.seconds + time.perf_counter() - started
        self._call("on_progress", {
            "epoch": epoch, "step_in_epoch": self.state.step_in_epoch, "step": self.state.step,
            "loss": loss_mean, "acc": accuracy, "images_per_second": acc.count / max(elapsed, 1e-9),
        })

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

    def _interrupted(self, acc: Accumulator) -> None:
        """Keep the epoch so far (`partial`, written into the checkpoint by on_fit_end) and end the run."""
        if self.world.active:
            acc.merge()  # the checkpoint holds the epoch so far over all ranks: resumable on any world size
        self.partial = acc
        name = signal.Signals(self.interrupt_signal).name if self.interrupt_signal is not None else "a stop request"
        self._end(Status.INTERRUPTED, f"{name} during epoch {self.state.epoch + 1} after step {self.state.step}")

    @property
    def divergence_limit(self) -> float | None:
        """The mean training loss above which a run has exploded: train.divergence_threshold x ln(C)."""
        factor = self.config.train.divergence_threshold
        if factor is None or self.num_classes < 2:
            return None
        return factor * math.log(self.num_classes)

    def _check_divergence(self, epoch: int, loss_mean: float, nonfinite: bool) -> None:
        """End the run as diverged when the loss went NaN/Inf or past the limit."""
        limit = self.divergence_limit
        if nonfinite or not math.isfinite(loss_mean):
            what, rule = "became NaN/Inf", "nonfinite"
        elif limit is not None and loss_mean > limit:
            what, rule = (f"reached {loss_mean:.4g}, above train.divergence_threshold x ln({self.num_classes}) = "
                          f"{limit:.4g} (a uniform guess scores {math.log(self.num_classes):.4g})"), "threshold"
        else:
            return
        kept = (f"the checkpoint of epoch {self.state.epoch} is kept" if self.state.epoch
                else "no epoch completed, so no checkpoint was written")
        self._end(Status.DIVERGED, f"training loss {what} in epoch {epoch + 1} (by step {self.state.step}); "
                                   f"lr={self.optimizer.param_groups[0]['lr']:g} is likely too high; {kept}")
        self.divergence = Divergence(rule, epoch + 1, self.state.step,
                                     loss_mean if math.isfinite(loss_mean) else str(loss_mean), limit)

    def evaluate(self, batches: Batches, confusion: bool = False, per_image: bool = False,
                 ema: bool = False) -> dict[str, Any]:
        """Metrics of the model on `batches`; `ema`: of the averaged weights (train.ema_decay)."""
        model = self.ema.module if ema and self.ema is not None else self.eval_model
        return evaluate_model(model, batches, self.num_classes, self.runtime.scoring, confusion,
                              per_image=per_image)

    @property
    def scores_ema(self) -> bool:
        """Whether 'best' and the test score use the EMA weights (train.ema_eval with train.ema_decay)."""
        return self.ema is not None and self.config.train.ema_eval

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
        value = row.get(f"ema_{monitor}" if self.scores_ema else monitor)
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

    def _call_each(self, hook: str, *args: Any) -> None:
        """`hook` on every callback even when one raises (an error is being handled already: it is the one
        that goes on; a callback's own failure here is logged)."""
        for callback in self.callbacks:
            try:
                getattr(callback, hook)(self, *args)
            except Exception:
                LOG.warning("%s.%s failed", type(callback).__name__, hook, exc_info=True)


def _output_features(model: nn.Module) -> int:
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return last[-1].out_features if last else 0
