"""The pictures of an Optuna search (`cnnlab tune search`): every trial's best validation accuracy with the
running best, and the parameters' importance (Optuna's default evaluator), from the search's summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from .save import save_figure


def plot_search(summary: dict[str, Any], directory: Path) -> list[Path]:
    """search_history.png (and param_importance.png when there are importances); returns the paths."""
    if not summary["complete"]:
        return []
    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.subplots()
    numbers = [number for number, _ in summary["complete"]]
    values = [100 * value for _, value in summary["complete"]]
    running = [max(values[: i + 1]) for i in range(len(values))]
    axes.scatter(numbers, values, label="trial", color="tab:blue")
    axes.step(numbers, running, where="post", color="tab:orange", label="best so far")
    if summary["pruned"]:
        axes.scatter(summary["pruned"], [min(values)] * len(summary["pruned"]), marker="x", color="tab:gray",
                     label="pruned (at the floor)")
    axes.set(xlabel="trial", ylabel="best validation top-1 (%)", title=f"search history: {summary['name']}")
    axes.legend()
    axes.grid(alpha=0.3)
    paths = [save_figure(figure, directory / "search_history.png")]
    importances = summary.get("importance") or {}
    if importances:
        figure = Figure(figsize=(7, 0.5 * len(importances) + 1.5), layout="constrained")
        axes = figure.subplots()
        names = list(importances)[::-1]
        axes.barh(names, [importances[n] for n in names], color="tab:green")
        axes.set(xlabel="importance (Optuna's default evaluator)", title="parameter importance")
        paths.append(save_figure(figure, directory / "param_importance.png"))
    return paths
