"""Optimizer trajectories over the contour plot of a 2-D surface: a PNG and an animated GIF."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from ..experiments.trajectories import Surface
from .save import save_figure


def _axes(surface: Surface, figure: Figure):
    axes = figure.subplots()
    xs = np.linspace(*surface.xlim, 300)
    ys = np.linspace(*surface.ylim, 300)
    grid_x, grid_y = np.meshgrid(xs, ys)
    values = surface.function(torch.from_numpy(grid_x), torch.from_numpy(grid_y)).numpy()
    if surface.log_levels:
        low = max(values.min(), 1e-3)
        levels = np.logspace(np.log10(low), np.log10(values.max()), 25)
        axes.contour(grid_x, grid_y, values - values.min() + low, levels=levels, norm=LogNorm(), cmap="Greys",
                     linewidths=0.6)
    else:
        axes.contour(grid_x, grid_y, values, levels=25, cmap="Greys", linewidths=0.6)
    if surface.minimum is not None:
        axes.plot(*surface.minimum, "k*", markersize=12, label="minimum")
    axes.plot(*surface.start, "ko", markersize=5)
    axes.set(xlim=surface.xlim, ylim=surface.ylim, xlabel="x", ylabel="y")
    return axes


def plot_paths(surface: Surface, paths: Mapping[str, np.ndarray], rates: Mapping[str, float],
               out: str | Path) -> Figure:
    figure = Figure(figsize=(7, 6), layout="constrained")
    axes = _axes(surface, figure)
    for name, path in paths.items():
        axes.plot(path[:, 0], path[:, 1], "-", linewidth=1.5, label=f"{name} (lr {rates[name]:g})")
        axes.plot(path[-1, 0], path[-1, 1], "o", markersize=4, color=axes.lines[-1].get_color())
    axes.legend(fontsize=8, loc="best")
    axes.set_title(f"{surface.name}: {len(next(iter(paths.values()))) - 1} steps from {surface.start}")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_figure(figure, out)
    return figure


def animate_paths(surface: Surface, paths: Mapping[str, np.ndarray], rates: Mapping[str, float], out: str | Path,
                  frames: int = 60) -> Path:
    figure = Figure(figsize=(6, 5.2), layout="constrained")
    axes = _axes(surface, figure)
    lines = {name: axes.plot([], [], "-", linewidth=1.5, label=f"{name} (lr {rates[name]:g})")[0] for name in paths}
    axes.legend(fontsize=7, loc="best")
    length = len(next(iter(paths.values())))
    marks = np.unique(np.linspace(1, length, frames).astype(int))

    def draw(index: int):
        for name, line in lines.items():
            line.set_data(paths[name][:index, 0], paths[name][:index, 1])
        axes.set_title(f"{surface.name}: step {index - 1}")
        return list(lines.values())

    FuncAnimation(figure, draw, frames=marks, blit=False).save(str(out), writer=PillowWriter(fps=12))
    return Path(out)
