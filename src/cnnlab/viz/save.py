"""Every picture is written atomically, like every other file: a process killed while drawing leaves the
old picture or none, never a broken PNG that a later command would take as done."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..io import atomic_write

if TYPE_CHECKING:  # annotations only: see new_figure
    from matplotlib.figure import Figure


def new_figure(**options: Any) -> Figure:
    """A matplotlib Figure (no pyplot: no global state, no GUI backend). matplotlib is imported here, at
    the first picture: importing it costs ~1 s of CPU, which every `cnnlab` command that draws nothing
    (--version, config, summary, table) paid at start-up through the modules that import this one."""
    from matplotlib.figure import Figure

    return Figure(**options)


def save_figure(figure: Figure, path: str | Path, dpi: int = 110) -> Path:
    path = Path(path)
    suffix = path.suffix.lstrip(".").lower() or "png"
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=dpi, format=suffix))
    return path
