"""The learning-rate range test's picture: loss against lr on a log axis, raw and smoothed, with the
suggestion and the alternative marked (train/lr_find.py computes them)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .save import save_figure


def plot_range_test(rates: Sequence[float] | np.ndarray, losses: Sequence[float] | np.ndarray,
                    smoothed: Sequence[float] | np.ndarray, marks: dict[str, float], suggested: str, out: str | Path,
                    title: str = "") -> Path:
    """`marks`: label -> lr (the suggestion among them, drawn solid; the others dashed)."""
    rates, losses, smoothed = np.asarray(rates), np.asarray(losses), np.asarray(smoothed)
    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.subplots()
    axes.plot(rates, losses, color="0.75", linewidth=0.8, label="loss per batch")
    axes.plot(rates, smoothed, color="C0", label="smoothed (EMA 0.98, bias-corrected)")
    finite = smoothed[np.isfinite(smoothed)]
    if finite.size:  # the diverging tail would squash the interesting part: clip the view at 2 x the start
        top = max(float(finite[0]) * 2, float(finite.min()) * 1.5)
        shown = losses[np.isfinite(losses) & (losses <= top)]
        low = float(min(finite.min(), shown.min() if shown.size else finite.min()))
        axes.set_ylim(max(0.0, low - 0.05 * (top - low)), top)
    others = iter(("C2", "C1", "C4", "C5"))
    for label, lr in marks.items():
        solid = label == suggested
        axes.axvline(lr, color="C3" if solid else next(others), linestyle="-" if solid else "--",
                     label=f"{label}: {lr:.3g}" + (" (suggested)" if solid else ""))
    axes.set(xscale="log", xlabel="learning rate", ylabel="training loss")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=8)
    axes.set_title(title or "learning-rate range test (Smith 2017)", fontsize=9)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return save_figure(figure, out)
