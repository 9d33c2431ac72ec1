"""Every picture is written atomically, like every other file: a process killed while drawing leaves the
old picture or none, never a broken PNG that a later command would take as done."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from ..io import atomic_write


def save_figure(figure: Figure, path: str | Path, dpi: int = 110) -> Path:
    path = Path(path)
    suffix = path.suffix.lstrip(".").lower() or "png"
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=dpi, format=suffix))
    return path
