"""Pictures of the deconvnet (Zeiler & Fergus 2014): figure 2's projections beside their image patches, and
figure 4's view of training, here the first layer's kernels epoch by epoch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .filters import unit_scale, write_figure
from .save import new_figure

if TYPE_CHECKING:  # annotations only: matplotlib is imported at the first picture (save.new_figure)
    from matplotlib.figure import Figure


def _centred(tile: torch.Tensor) -> torch.Tensor:
    """A projection shown as Z&F show theirs: zero is mid-gray, the largest magnitude black or white."""
    return 0.5 + 0.5 * tile / tile.abs().max().clamp_min(1e-12)


def _show(ax, tile: torch.Tensor) -> None:
    picture = tile.permute(1, 2, 0).clamp(0, 1).numpy()
    ax.imshow(picture[..., 0] if picture.shape[-1] == 1 else picture, cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")


def plot_deconv(projections: torch.Tensor, patches: torch.Tensor, boxes: Sequence[Sequence[tuple[int, int, int, int]]],
                channels: Sequence[int], out: str | Path, title: str = "") -> Figure:
    """projections, patches: [C, k, channels, H, W]; each shown cropped to its receptive field box. One row
    per channel: its k projections, then its k patches."""
    rows, top = projections.shape[:2]
    figure = new_figure(figsize=(2 * top * 0.62 + 0.6, rows * 0.66 + 0.6), layout="constrained")
    axes = figure.subplots(rows, 2 * top, squeeze=False)
    for row in range(rows):
        for column in range(top):
            t, left, b, right = boxes[row][column]
            crop = (slice(None), slice(t, b + 1), slice(left, right + 1))
            _show(axes[row, column], _centred(projections[row, column][crop]))
            _show(axes[row, top + column], patches[row, column][crop])
        axes[row, 0].set_ylabel(f"ch {channels[row]}", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle(title, fontsize=9)
    return write_figure(figure, out)


def plot_evolution(weights: Sequence[torch.Tensor], epochs: Sequence[int], out: str | Path, title: str = "") -> Figure:
    """weights: per epoch [filters, in_channels, k, k]; one row per epoch. RGB kernels in colour, others as
    their first input channel in gray, each scaled to [0, 1] on its own."""
    count = weights[0].shape[0]
    figure = new_figure(figsize=(count * 0.55 + 0.8, len(epochs) * 0.6 + 0.6), layout="constrained")
    axes = figure.subplots(len(epochs), count, squeeze=False)
    for row, (epoch, weight) in enumerate(zip(epochs, weights)):
        tiles = unit_scale(weight.float().cpu() if weight.shape[1] == 3 else weight.float().cpu()[:, :1])
        for column, ax in enumerate(axes[row]):
            _show(ax, tiles[column])
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(f"epoch {epoch}", fontsize=7)
    figure.suptitle(title, fontsize=9)
    return write_figure(figure, out)
