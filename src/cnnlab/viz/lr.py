"""`cnnlab lr-plot`: the learning rate a config's schedule gives at every point of training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..config import RunConfig
from ..optim import SCHEDULES, lr_factor
from .save import save_figure


def schedule_points(config: RunConfig, steps_per_epoch: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """(fractional epochs, learning rates). Per-epoch schedules hold their rate through each epoch."""
    epochs = config.train.epochs
    points = np.arange(epochs * steps_per_epoch + 1) / steps_per_epoch
    schedule = config.schedule
    where = points if schedule.per_iteration else np.floor(points)
    rates = np.array([config.optim.lr * lr_factor(schedule, float(e), epochs) for e in where])
    return points, rates


def plot_schedule(config: RunConfig, out: str | Path) -> Figure:
    points, rates = schedule_points(config)
    schedule = config.schedule
    figure = Figure(figsize=(7, 3.8), layout="constrained")
    axes = figure.subplots()
    axes.plot(points, rates)
    axes.set(xlabel="epoch", ylabel="learning rate", xlim=(0, config.train.epochs))
    axes.grid(alpha=0.3)
    options = ", ".join(f"{k}={v}" for k, v in schedule.options.items())
    warm = f", warm-up {schedule.warmup_epochs:g} epochs" if schedule.warmup_epochs else ""
    note = " (drawn without improvement data)" if SCHEDULES.get(schedule.name).needs_history else ""
    axes.set_title(f"{config.optim.name} lr {config.optim.lr:g}: {schedule.name}({options}){warm}{note}",
                   fontsize=9)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_figure(figure, out)
    return figure
