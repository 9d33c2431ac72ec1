"""Training: the Trainer and its callbacks, checkpoints, stopping rules, the runtime, and the factories of
what a run computes with. Run directories and the run lifecycle live one layer up, in `cnnlab.runs`."""

from .build import LoaderSpec, load_splits, make_batches, make_model, split_batches, splits_of
from .callbacks import (
    Checkpointer,
    Console,
    MetricsCSV,
    StepLosses,
    TensorBoard,
    read_metrics,
    read_step_losses,
)
from .hooks import Callback, TrainerView
from .interrupts import STOP, StopRequest
from .result import Divergence, EarlyStopRecord, FitResult, GraphsRecord, TrainState
from .runtime import Runtime, resolve_device, resolve_runtime, seed_everything
from .status import FINISHED, Status
from .trainer import Trainer

__all__ = [
    "FINISHED", "STOP", "Callback", "Checkpointer", "Console", "Divergence", "EarlyStopRecord", "FitResult",
    "GraphsRecord", "LoaderSpec", "MetricsCSV", "Runtime", "Status", "StepLosses", "StopRequest", "TensorBoard",
    "TrainState", "Trainer", "TrainerView", "load_splits", "make_batches", "make_model", "read_metrics",
    "read_step_losses", "resolve_device", "resolve_runtime", "seed_everything", "split_batches", "splits_of",
]
