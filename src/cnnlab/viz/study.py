"""`cnnlab study plot`: the curves of every variation on one figure, a bar chart of the final metric with error
bars (std over seeds), and a forest plot of the verdicts (each row's Δ against its reference with its interval,
the ±min-effect band shaded, coloured by verdict), read from the study's run directories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..experiments.study import read_plan
from ..experiments.table import aggregate, build_table, label, study_rows
from ..experiments.verdicts import VerdictOptions
from ..train import read_metrics
from .save import save_figure


def _mean_curves(directory: Path, rows: list[dict[str, Any]], key: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    curves: dict[str, list[list[float]]] = {}
    for row in rows:
        path = directory / row["run"] / "metrics.csv"
        if path.is_file() and row["status"] != "unreadable":  # its files failed their checks (experiments/table.py)
            values = [r.get(key) for r in read_metrics(path)]
            curves.setdefault(label(row), []).append([np.nan if v is None else v for v in values])
    out = {}
    for name, series in curves.items():
        length = max(map(len, series))
        padded = np.array([s + [np.nan] * (length - len(s)) for s in series], dtype=float)
        if np.isnan(padded).all():  # e.g. val_acc of runs without a validation split
            continue
        out[name] = (np.arange(1, length + 1), np.nanmean(padded, axis=0))
    return out


def plot_study(directory: str | Path, options: VerdictOptions = VerdictOptions()) -> tuple[Path, Path, Path]:
    """curves.png, bars.png and forest.png of a study directory (the forest's verdicts at `options`)."""
    directory = Path(directory)
    plan = read_plan(directory)
    rows = study_rows(directory)
    curves = Figure(figsize=(12, 4.5), layout="constrained")
    loss_axes, acc_axes = curves.subplots(1, 2)
    panels = ((loss_axes, "train_loss", "training loss"), (acc_axes, "val_acc", "validation top-1 (%)"))
    names = list(dict.fromkeys(label(row) for row in rows))
    palette = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    colors = {name: palette(i % palette.N) for i, name in enumerate(names)}  # one colour per variation
    for axes, key, ylabel in panels:
        for name, (x, y) in _mean_curves(directory, rows, key).items():
            scale = 100 if key.endswith("acc") else 1
            axes.plot(x, y * scale, marker=".", label=name, color=colors[name],
                      linewidth=2.2 if name.startswith("baseline") else 1.2)
        axes.set(xlabel="epoch", ylabel=ylabel)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
    loss_axes.set_yscale("log")
    for axes in (loss_axes, acc_axes):
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7, ncol=2)
    curves.suptitle(f"{plan['name']}: mean over seeds")
    curves_path = directory / "curves.png"
    save_figure(curves, curves_path)

    metric = plan.get("metric", "test_acc")
    table = aggregate(rows, metric)
    bars = Figure(figsize=(max(6, 0.65 * len(table) + 2), 4.5), layout="constrained")
    axes = bars.subplots()
    means = [100 * (e[metric] or 0) for e in table]
    errors = [100 * (e.get(f"{metric}_std") or 0) for e in table]
    bar_colors = ["tab:orange" if e["variation"].startswith("baseline") else
              "tab:gray" if e[metric] is None else "tab:blue" for e in table]
    axes.bar(range(len(table)), means, yerr=errors, capsize=3, color=bar_colors)
    for index, entry in enumerate(table):
        text = "diverged" if "diverged" in entry["status"] and entry[metric] is None else f"{means[index]:.1f}"
        axes.text(index, means[index] + 0.5, text, ha="center", va="bottom", fontsize=7)
    axes.set_xticks(range(len(table)), [e["variation"] for e in table], rotation=45, ha="right", fontsize=8)
    axes.set(ylabel=f"{metric} (%)", title=f"{plan['name']}: {metric}, mean ± std over seeds")
    axes.grid(alpha=0.3, axis="y")
    bars_path = directory / "bars.png"
    save_figure(bars, bars_path)
    table, _ = build_table(directory, options)
    forest_path = plot_forest(table, directory / "forest.png", metric, options.min_effect, plan["name"])
    return curves_path, bars_path, forest_path


# the verdict words' colours: a claim in a strong colour, no claim in grey, one seed in a pale one
WORD_COLORS = {"better": "tab:green", "worse": "tab:red", "equivalent": "tab:blue", "within noise": "tab:gray",
               "1 seed": "tab:olive", "identical": "tab:cyan"}


def plot_forest(table: list[dict[str, Any]], path: Path, metric: str = "test_acc", min_effect: float = 0.005,
                title: str = "") -> Path:
    """A forest plot of a table's verdicts: one line per compared row (Δ in points with its interval, marked by
    its word's colour), the ±min-effect band shaded (inside it, an interval reads 'equivalent'), zero as a line.
    A row without an interval (one seed without per-image results, no spread) is its Δ alone; a reference row,
    or one without a comparison, is listed without a mark."""
    scale = 100 if metric.endswith("acc") or "top" in metric else 1
    compared = [e for e in table if e.get("reference")]
    figure = Figure(figsize=(7.5, 0.45 * max(len(compared), 1) + 1.6), layout="constrained")
    axes = figure.subplots()
    axes.axvspan(-scale * min_effect, scale * min_effect, color="tab:blue", alpha=0.12, linewidth=0,
                 label=f"±{scale * min_effect:g} (equivalent inside)")
    axes.axvline(0, color="black", linewidth=0.8)
    for row, entry in enumerate(reversed(compared)):
        delta, word = entry.get(f"delta_{metric}"), entry.get("verdict") or "-"
        color = WORD_COLORS.get(word, "black")
        if delta is None:
            axes.text(0, row, f"  {word}", va="center", fontsize=8, color="dimgray")
            continue
        low, high = entry.get("delta_low"), entry.get("delta_high")
        if low is not None and high is not None:
            axes.plot([scale * low, scale * high], [row, row], color=color, linewidth=2.2, solid_capstyle="butt")
        axes.plot([scale * delta], [row], "o", color=color, markersize=6)
        axes.annotate(word, (scale * delta, row), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7,
                      color=color)
    axes.set_yticks(range(len(compared)), [f"{e['variation']} vs {e['reference']}" for e in reversed(compared)],
                    fontsize=8)
    axes.set_ylim(-0.7, max(len(compared), 1) - 0.3)
    confidence = next((e["confidence"] for e in table if e.get("confidence") is not None), 0.95)
    unit = "points" if scale == 100 else metric
    axes.set(xlabel=f"Δ {metric} ({unit}), {100 * confidence:g}% interval",
             title=f"{title}: each row against its reference" if title else "each row against its reference")
    axes.grid(alpha=0.3, axis="x")
    axes.legend(fontsize=7, loc="lower right")
    return save_figure(figure, path)


def plot_crossing(directory: str | Path, level: float, key: str = "train_acc") -> Path:
    """AlexNet's figure 1: every variation's training error (1 - `key`, mean over seeds) per epoch, the
    `level` line, and where each curve first reaches it. Written to STUDY_DIR/error_crossing.png."""
    from ..experiments.table import crossings

    directory = Path(directory)
    rows = study_rows(directory)
    reached = crossings(directory, level, key)
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.subplots()
    for index, (name, (x, y)) in enumerate(_mean_curves(directory, rows, key).items()):
        color = matplotlib.colormaps["tab10"](index % 10)
        axes.plot(x, 1 - y, marker=".", color=color, label=name, linestyle="-" if index == 0 else "--")
        epoch = reached.get(name.split(" ")[0])
        if epoch:  # None: never; 0: within the first epoch, not placeable
            axes.axvline(epoch, color=color, alpha=0.4, linewidth=1)
            axes.annotate(f"{epoch:.1f}", (epoch, level), textcoords="offset points", xytext=(3, 6 + 11 * index),
                          fontsize=8, color=color)
    axes.axhline(level, color="black", linewidth=0.8, linestyle=":", label=f"{level:.0%} training error")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set(xlabel="epoch", ylabel="training error rate", ylim=(0, None),
             title=f"{read_plan(directory)['name']}: epochs to {level:.0%} training error")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    path = directory / "error_crossing.png"
    save_figure(figure, path)
    return path
