"""Training-loss curves of several runs on one figure, from their steps.csv and metrics.csv."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..runs.identity import run_metrics, run_step_losses
from .save import save_figure


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (the first points average what exists so far)."""
    if window <= 1 or len(values) == 0:
        return values
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (cumulative[1:] - cumulative[np.maximum(np.arange(1, len(values) + 1) - window, 0)]) / counts


def plot_loss_curves(run_dirs: Sequence[Path], labels: Sequence[str], out: str | Path,
                     title: str = "training loss") -> Figure:
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    per_step, per_epoch = figure.subplots(1, 2)
    for run_dir, label in zip(run_dirs, labels):
        steps = run_step_losses(Path(run_dir))  # both checked against the run's run.json
        if steps:
            losses = np.array([loss for _, _, loss in steps])
            finite = np.isfinite(losses)
            x = np.array([step for _, step, _ in steps])
            line = per_step.plot(x[finite], losses[finite], alpha=0.15, linewidth=0.6)[0]
            window = max(1, len(losses) // 100)
            per_step.plot(x[finite], smooth(losses[finite], window), color=line.get_color(), label=label)
        rows = run_metrics(Path(run_dir))
        if rows:
            per_epoch.plot([r["epoch"] for r in rows], [r["train_loss"] for r in rows], marker="o", label=label)
    per_step.set(xlabel="iteration", ylabel="training loss (cross-entropy)", yscale="log",
                 title="per iteration (faint: raw, solid: moving average)")
    per_epoch.set(xlabel="epoch", ylabel="mean training loss of the epoch", yscale="log", title="per epoch")
    for axes in (per_step, per_epoch):
        axes.grid(alpha=0.3, which="both")
        axes.legend()
    figure.suptitle(title)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_figure(figure, out)
    return figure
