"""What training produces, typed: the resumable position (`TrainState`) and the one result of
`Trainer.fit()` (`FitResult`), which runs/lifecycle.py writes into run.json.

A `FitResult` is built in one place (`Trainer.result`) after the loop has ended, and frozen: callbacks and
the run record read it; nothing adds a key to it on the side. Its parts that run.json stores as objects
(`Divergence`, `EarlyStopRecord`, `GraphsRecord`) say how with `to_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True)
class Divergence:
    """Why a run ended as diverged: the rule (nonfinite | threshold), where, the loss and the limit."""

    rule: str
    epoch: int
    step: int
    loss: float | str  # 'nan' / 'inf' as text: JSON has no NaN
    limit: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "epoch": self.epoch, "step": self.step, "loss": self.loss, "limit": self.limit}


@dataclass(frozen=True)
class EarlyStopRecord:
    """An early-stopping criterion's part in a run: armed (fired False), or the decision that ended it."""

    criterion: str
    metric: str
    fired: bool = False
    epoch: int | None = None
    why: str = ""
    values: dict[str, float] | None = None
    best_epoch: int | None = None
    restored_best: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"criterion": self.criterion, "fired": self.fired, "metric": self.metric,
                                "counted": "epochs"}
        if self.fired:
            data.update(epoch=self.epoch, why=self.why, values=self.values, best_epoch=self.best_epoch,
                        restored_best=self.restored_best)
        return data


@dataclass(frozen=True)
class GraphsRecord:
    """train.graphs: whether the CUDA-graph step was used, or why the run trained eagerly."""

    used: bool
    why: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"used": self.used, "why": self.why}


FINAL_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "val_top5")
EMA_KEYS = ("ema_val_loss", "ema_val_acc", "ema_val_top5")  # train.ema_decay: the averaged weights' validation


@dataclass(frozen=True)
class FitResult:
    """How `Trainer.fit()` ended, and the numbers run.json keeps of it (all sessions of the run together)."""

    status: Status  # completed, stopped_early, diverged or interrupted
    reason: str
    epochs: int  # completed epochs
    steps: int
    best_epoch: int | None
    monitor: str  # what 'best' meant
    final: dict[str, Any]  # the last epoch's train/val loss and accuracy (FINAL_KEYS; None before one)
    train_seconds: float  # inside training epochs
    images_per_second: float  # training images per second of train_seconds
    history: tuple[dict[str, Any], ...] = ()  # one row per epoch, as in metrics.csv
    interrupt_signal: int | None = None  # the signal that interrupted it
    divergence: Divergence | None = None
    early_stop: EarlyStopRecord | None = None
    graphs: GraphsRecord | None = None
    compiled: bool = False  # the model ran through torch.compile
    compile: dict[str, Any] | None = None  # train.compile's decision: used, why, the measured steps (speed.py)
