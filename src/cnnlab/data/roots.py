"""Where datasets are looked for: `--data-root` / `data.root`, then `$CNNLAB_DATA`, then the per-user cache.

A reader gets the ordered list of candidate roots and looks for its own folder names in each; the first
complete copy wins. When none is found the error lists every place it looked and how to get the data.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import DataError


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cnnlab" / "data"


def candidate_roots(root: str | None) -> list[Path]:
    """The roots to search, in order, without duplicates."""
    roots = []
    if root:
        roots.append(Path(root).expanduser())
    env = os.environ.get("CNNLAB_DATA")
    if env:
        roots.extend(Path(p).expanduser() for p in env.split(os.pathsep) if p)
    roots.append(user_cache_dir())
    unique: list[Path] = []
    for path in roots:
        if path not in unique:
            unique.append(path)
    return unique


def find_dir(
    roots: Iterable[Path],
    subdirs: Iterable[str],
    required: Iterable[str],
    dataset: str,
    how_to_get: str,
    extra_dirs: Iterable[Path] = (),
    is_complete: Callable[[Path], bool] | None = None,
) -> Path:
    """The first `root/subdir` (or extra dir) holding every file in `required` (a name or its '.gz'),
    or, for folder datasets, the first for which `is_complete(dir)` holds."""
    required = list(required)
    tried = []
    candidates = [Path(r) / s for r in roots for s in subdirs] + [Path(d) for d in extra_dirs]
    for directory in candidates:
        tried.append(str(directory))
        if is_complete(directory) if is_complete else all(find_file(directory, name) for name in required):
            return directory
    looked_for = ", ".join(required) or "the image folders"
    raise DataError(
        f"dataset '{dataset}' not found. Looked for {looked_for} in:\n  "
        + "\n  ".join(tried)
        + f"\nHow to get it: {how_to_get}\n"
        "Point cnnlab at a copy with --data-root DIR, data.root=DIR or the CNNLAB_DATA variable."
    )


def find_file(directory: Path, name: str) -> Path | None:
    """`directory/name`, else `directory/name.gz`, else None."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None
