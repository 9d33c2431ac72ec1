"""Training: the Trainer and its callbacks, checkpoints, run directories, and the run orchestration."""

from .callbacks import Callback, Checkpointer, Console, MetricsCSV, StepLosses, read_metrics, read_step_losses
from .run_dir import RunDir, new_run_dir
from .runner import (
    TrainResult,
    load_splits,
    make_batches,
    make_model,
    restores_best,
    resume_run,
    start_run,
)
from .runtime import Runtime, resolve_device, resolve_runtime, seed_everything
from .trainer import (
    COMPLETED,
    DIVERGED,
    INTERRUPTED,
    STOPPED_EARLY,
    Trainer,
    TrainState,
)

__all__ = [
    "COMPLETED", "DIVERGED", "INTERRUPTED", "STOPPED_EARLY", "Callback", "Checkpointer", "Console", "MetricsCSV",
    "RunDir", "Runtime", "StepLosses", "TrainResult", "TrainState", "Trainer", "load_splits", "make_batches",
    "make_model", "new_run_dir", "read_metrics", "read_step_losses", "resolve_device", "resolve_runtime",
    "restores_best", "resume_run", "seed_everything", "start_run",
]
