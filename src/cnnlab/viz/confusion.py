"""plots/confusion_<split>.png: the confusion matrix, rows = true class, columns = predicted, with
counts in the cells and per-row normalised colour (so small classes are as readable as large ones)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from matplotlib.figure import Figure

from .save import save_figure


def plot_confusion(confusion: torch.Tensor, classes: Sequence[str], out: str | Path, title: str = "") -> Figure:
    counts = confusion.to(torch.float64)
    rows = counts.sum(dim=1, keepdim=True).clamp_min(1)
    share = (counts / rows).numpy()
    size = max(4.0, 0.45 * len(classes) + 2)
    figure = Figure(figsize=(size + 1, size), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(classes))
    axes.set_xticks(ticks, classes, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(ticks, classes, fontsize=8)
    axes.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix")
    if len(classes) <= 30:
        for i in ticks:
            for j in ticks:
                value = int(confusion[i, j])
                if value:
                    axes.text(j, i, str(value), ha="center", va="center", fontsize=7,
                              color="white" if share[i, j] > 0.5 else "black")
    figure.colorbar(image, ax=axes, label="share of the true class")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_figure(figure, out)
    return figure
