"""Pictures of what a network learned (Krizhevsky et al. 2012, figures 3 and 4).

- filters: first-layer kernels as one image grid, each kernel scaled to [0, 1] on its own so its pattern
  shows whatever its magnitude (AlexNet's 96 11x11x3 kernels as in the paper's figure 3); for deeper
  layers, one row per output filter with its kernels on each input channel, in gray.
- features: the feature maps of one layer for one image, the input first.
- predictions: test images with their five most probable labels as probability bars, the true label
  marked (green bar when the model ranks it in its top five).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import ConfigError, closest
from .save import new_figure, save_figure

if TYPE_CHECKING:  # annotations only: matplotlib is imported at the first picture (save.new_figure)
    from matplotlib.figure import Figure


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    return [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]


def find_layer(model: nn.Module, name: str | None, kinds: tuple[type, ...] = (nn.Conv2d,)) -> tuple[str, nn.Module]:
    """A layer by its full name ('features.conv1'), its last part ('conv1'), or the first convolution."""
    layers = [(n, m) for n, m in model.named_modules() if n and (isinstance(m, kinds) or name is not None)]
    if name is None:
        first = conv_layers(model)
        if not first:
            raise ConfigError("this model has no convolution to show")
        return first[0]
    for full, module in layers:
        if full == name or full.split(".")[-1] == name or full.endswith("." + name):
            return full, module
    names = [n for n, _ in conv_layers(model)]
    guess = closest(name, [n for n, _ in layers] + [n.split(".")[-1] for n, _ in layers])
    hint = f"; did you mean '{guess}'?" if guess else ""
    raise ConfigError(f"no layer '{name}' in this model{hint} Convolutions: {', '.join(names[:20])}")


def unit_scale(tiles: torch.Tensor) -> torch.Tensor:
    """Scale each tile (first dimension) to [0, 1] on its own."""
    flat = tiles.flatten(1)
    shape = (-1, *[1] * (tiles.dim() - 1))
    low, high = flat.min(1).values.view(shape), flat.max(1).values.view(shape)
    return (tiles - low) / (high - low).clamp_min(1e-12)


def plot_filters(weight: torch.Tensor, out: str | Path, title: str = "", max_filters: int = 96,
                 max_inputs: int = 16) -> Figure:
    """weight: [out_channels, in_channels, k, k]."""
    weight = weight.detach().float().cpu()[:max_filters]
    if weight.shape[1] in (1, 3):
        tiles = unit_scale(weight).permute(0, 2, 3, 1)  # [N, k, k, C]
        columns = 12 if len(tiles) > 16 else len(tiles)
        rows = math.ceil(len(tiles) / columns)
        figure = new_figure(figsize=(columns * 0.9, rows * 0.9 + 0.5), layout="constrained")
        axes = figure.subplots(rows, columns, squeeze=False)
        for index, ax in enumerate(axes.flat):
            ax.axis("off")
            if index < len(tiles):
                tile = tiles[index].numpy()
                ax.imshow(tile[..., 0] if tile.shape[-1] == 1 else tile, cmap="gray", interpolation="nearest")
    else:
        weight = weight[:16, :max_inputs]
        tiles = unit_scale(weight)
        rows, columns = weight.shape[0], weight.shape[1]
        figure = new_figure(figsize=(columns * 0.7, rows * 0.7 + 0.5), layout="constrained")
        axes = figure.subplots(rows, columns, squeeze=False)
        for (row, column), ax in zip(((r, c) for r in range(rows) for c in range(columns)), axes.flat):
            ax.axis("off")
            ax.imshow(tiles[row, column].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    figure.suptitle(title)
    return write_figure(figure, out)


def plot_features(image: torch.Tensor, maps: torch.Tensor, out: str | Path, title: str = "",
                  max_maps: int = 63) -> Figure:
    """image: float [C, H, W] in [0, 1]; maps: [channels, h, w] of one layer."""
    maps = unit_scale(maps.detach().float().cpu()[:max_maps])
    count = len(maps) + 1
    columns = min(8, count)
    rows = math.ceil(count / columns)
    figure = new_figure(figsize=(columns * 1.2, rows * 1.25 + 0.5), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index == 0:
            picture = image.permute(1, 2, 0).clamp(0, 1).numpy()
            ax.imshow(picture[..., 0] if picture.shape[-1] == 1 else picture, cmap="gray")
            ax.set_title("input", fontsize=8)
        elif index < count:
            ax.imshow(maps[index - 1].numpy(), cmap="viridis", interpolation="nearest")
            ax.set_title(str(index - 1), fontsize=7)
    figure.suptitle(title)
    return write_figure(figure, out)


def plot_predictions(images: torch.Tensor, probabilities: torch.Tensor, labels: torch.Tensor,
                     classes: Sequence[str], out: str | Path, title: str = "", k: int = 5) -> Figure:
    """images: float [N, C, H, W] in [0, 1]; probabilities: [N, classes]; labels: [N]."""
    count = images.shape[0]
    columns = min(4, count)
    rows = math.ceil(count / columns)
    figure = new_figure(figsize=(columns * 4.2, rows * 1.9 + 0.5), layout="constrained")
    axes = figure.subplots(rows, 2 * columns, squeeze=False, width_ratios=[1, 1.6] * columns)
    top = probabilities.topk(min(k, probabilities.shape[1]), dim=1)
    for index in range(rows * columns):
        row, column = index // columns, 2 * (index % columns)
        image_ax, bar_ax = axes[row, column], axes[row, column + 1]
        image_ax.axis("off")
        if index >= count:
            bar_ax.axis("off")
            continue
        picture = images[index].permute(1, 2, 0).clamp(0, 1).numpy()
        image_ax.imshow(picture[..., 0] if picture.shape[-1] == 1 else picture, cmap="gray")
        truth = int(labels[index])
        right = int(top.indices[index, 0]) == truth
        image_ax.set_title(f"true: {classes[truth]}", fontsize=8, color="green" if right else "red")
        names = [classes[int(i)] for i in top.indices[index]]
        colors = ["tab:green" if int(i) == truth else "tab:gray" for i in top.indices[index]]
        bar_ax.barh(range(len(names))[::-1], top.values[index].numpy(), color=colors)
        bar_ax.set_yticks(range(len(names))[::-1], names, fontsize=7)
        bar_ax.set_xlim(0, 1)
        bar_ax.tick_params(axis="x", labelsize=6)
    figure.suptitle(title)
    return write_figure(figure, out)


def write_figure(figure: Figure, out: str | Path) -> Figure:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_figure(figure, out)
    return figure
