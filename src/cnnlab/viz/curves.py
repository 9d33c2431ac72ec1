"""plots/curves.png: training and validation loss and accuracy per epoch, from metrics.csv."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..runs.identity import run_metrics
from .save import save_figure


def plot_curves(run_dir: str | Path, out: str | Path | None = None) -> Figure:
    run_dir = Path(run_dir)
    rows = run_metrics(run_dir)  # checked against run.json: never another run's curves under this name
    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_axes, acc_axes = figure.subplots(1, 2)
    epochs = [row["epoch"] for row in rows]
    for split, style in (("train", "-"), ("val", "--")):
        losses = [row[f"{split}_loss"] for row in rows]
        accs = [row[f"{split}_acc"] for row in rows]
        if any(v is not None for v in losses):
            loss_axes.plot(epochs, losses, style, marker="o", markersize=3, label=split)
            acc_axes.plot(epochs, [None if a is None else 100 * a for a in accs], style, marker="o",
                          markersize=3, label=split)
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    acc_axes.set(xlabel="epoch", ylabel="top-1 accuracy (%)", title="accuracy")
    for axes in (loss_axes, acc_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no tick at 2.5
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(run_dir.name)
    target = Path(out) if out else run_dir / "plots" / "curves.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    save_figure(figure, target)
    return figure
