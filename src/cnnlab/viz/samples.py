"""`cnnlab data show`: a grid of sample images with their labels (after augmentation when asked)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from matplotlib.figure import Figure

from .save import save_figure


def plot_samples(images: torch.Tensor, titles: Sequence[str], out: str | Path, title: str = "",
                 columns: int = 8) -> Figure:
    """images: float [N, C, H, W] in [0, 1]."""
    count = images.shape[0]
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(1.6 * columns, 1.8 * rows + 0.4), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= count:
            continue
        image = images[index].clamp(0, 1).permute(1, 2, 0).numpy()
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray" if image.shape[-1] == 1 else None,
                  vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(titles[index], fontsize=8)
    if title:
        figure.suptitle(title)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_figure(figure, out, dpi=100)
    return figure
