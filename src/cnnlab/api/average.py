"""Checkpoint averaging: a run's kept epochs averaged into a new run (experiments/average.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..experiments.average import average_run, chosen_epochs
from ..runs import Run, RunDir, load_run


def average(run_dir: str | Path, epochs: Sequence[int] | None = None, last: int | None = None,
            name: str | None = None, runs_dir: str | Path | None = None, overwrite: bool = False,
            device: str | None = None) -> Run:
    """Average the weights of `epochs` (or the `last` N epochs) of `run_dir`, kept by train.keep_epochs, into
    a new run `name` (default RUN-avg beside it), batch-norm statistics recomputed over the training data
    (each image weighted alike, as torch.optim.swa_utils.update_bn does per batch), scored on the test set;
    returns the new run. Epochs that were not kept are a ConfigError naming train.keep_epochs."""
    with RunDir(run_dir).require().writing("read its checkpoints"):
        source = load_run(run_dir)
        made = average_run(source, chosen_epochs(source, epochs, last), name, runs_dir, overwrite, device)
    return load_run(made.path)
