"""The hooks a callback may implement, and what a callback sees of the trainer (`TrainerView`).

Kept apart from trainer.py so that callbacks (callbacks.py, early_stop.py, a user's) depend on this small
surface and not on the Trainer class: the trainer imports its callbacks' base, never the reverse.

Order: on_fit_start; per epoch on_epoch_start, on_progress (every `progress_seconds`), on_epoch_end; then
on_fit_end with the `FitResult`. When anything raises instead (a callback, a full disk, Ctrl-C twice),
every callback gets on_exception and the error goes on; as in Lightning, so a progress display or a
TensorBoard writer is closed either way. on_exception may come after on_fit_end (on_fit_end of a later
callback raised): make it safe to call then. Last, in a run (runs/lifecycle.py, not `Trainer.fit`),
on_run_end once the test set is scored and run.json written: what trackers log last (test metrics, the
status, TensorBoard's hparams).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # annotations only
    import torch
    from torch import nn

    from ..data import Batches

from .result import EarlyStopRecord, FitResult, TrainState
from .status import Status


class TrainerView(Protocol):
    """The trainer as callbacks use it."""

    model: nn.Module
    state: TrainState
    epochs: int
    train_batches: Batches
    val_batches: Batches | None
    progress_seconds: float  # how often on_progress is called (and the loss is read mid-epoch)
    steps_per_epoch: int  # optimizer steps per epoch (train.grad_accum_steps batches each)

    @property
    def monitor(self) -> str: ...

    def snapshot(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]: ...

    def weight_tensors(self) -> dict[str, torch.Tensor]: ...

    def request_stop(self, reason: str, early_stop: EarlyStopRecord | None = None) -> None: ...


class Callback:
    def on_fit_start(self, trainer: TrainerView) -> None: ...

    def on_epoch_start(self, trainer: TrainerView, epoch: int) -> None: ...

    def on_progress(self, trainer: TrainerView, progress: dict[str, Any]) -> None:
        """Every `trainer.progress_seconds` during an epoch (the only in-epoch host sync)."""

    def on_epoch_end(self, trainer: TrainerView, row: dict[str, Any]) -> None:
        """After each complete epoch; a callback ends the run with `trainer.request_stop(reason)`."""

    def on_fit_end(self, trainer: TrainerView, result: FitResult) -> None: ...

    def on_exception(self, trainer: TrainerView, error: BaseException) -> None:
        """Training raised `error` (re-raised after every callback's on_exception)."""

    def on_run_end(self, status: Status, reason: str, test: Mapping[str, Any] | None) -> None:
        """The run ended with `status` (and `reason`); `test`: its test metrics (loss, acc, top5, count), None
        when the test set was not scored. Also after a failure, when the run is recorded as failed."""
