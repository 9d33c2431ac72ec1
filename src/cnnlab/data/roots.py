"""Where datasets are looked for. A root the user names (`--data-root` / `data.root`) is the only place
searched: a wrong path is an error naming it, never a silent fall back to another copy. With no root named:
`$CNNLAB_DATA`, then the per-user cache, then the system's copies (e.g. Debian's dataset packages).

A reader gets the ordered list of candidate roots and looks for its own folder names in each; the first
complete copy wins. When none is found the error lists every place it looked and how to get the data.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import DataError


def cnnlab_cache_home() -> Path:
    """cnnlab's folder of the user's cache: $XDG_CACHE_HOME/cnnlab, else ~/.cache/cnnlab."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cnnlab"


def user_cache_dir() -> Path:
    return cnnlab_cache_home() / "data"


class Roots(list):
    """The roots to search, in order; `named`: the user named the one root (nothing else is searched)."""

    def __init__(self, paths: Iterable[Path], named: bool = False) -> None:
        super().__init__(paths)
        self.named = named


def candidate_roots(root: str | None) -> Roots:
    """The roots to search, in order, without duplicates: only `root` when one is named."""
    if root:
        return Roots([Path(root).expanduser()], named=True)
    roots: list[Path] = []
    env = os.environ.get("CNNLAB_DATA")
    if env:
        roots.extend(Path(p).expanduser() for p in env.split(os.pathsep) if p)
    roots.append(user_cache_dir())
    unique: list[Path] = []
    for path in roots:
        if path not in unique:
            unique.append(path)
    return Roots(unique)


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
    named = getattr(roots, "named", False)
    roots = list(roots)
    candidates = [Path(r) / s for r in roots for s in subdirs]
    candidates += roots[:1] if named else [Path(d) for d in extra_dirs]  # a named root may hold the files itself
    for directory in candidates:
        tried.append(str(directory))
        if is_complete(directory) if is_complete else all(find_file(directory, name) for name in required):
            return directory
    looked_for = ", ".join(required) or "the image folders"
    how_to_get += fetch_command(dataset, roots[0] if named and roots else None)
    if named:
        raise DataError(
            f"dataset '{dataset}' is not in the data root you named, {roots[0]}. Looked for {looked_for} in:\n  "
            + "\n  ".join(tried)
            + f"\nHow to get it: {how_to_get}\n"
            "A named root is the only place searched: fix the path, or leave --data-root/data.root unset to "
            "search $CNNLAB_DATA, the cache and the system's copies."
        )
    raise DataError(
        f"dataset '{dataset}' not found. Looked for {looked_for} in:\n  "
        + "\n  ".join(tried)
        + f"\nHow to get it: {how_to_get}\n"
        "Point cnnlab at a copy with --data-root DIR, data.root=DIR or the CNNLAB_DATA variable."
    )


def fetch_command(dataset: str, root: Path | str | None = None) -> str:
    """'; or fetch it: `cnnlab data download cifar10`' for a dataset cnnlab downloads itself (data/download.py),
    into the named root when there is one; nothing for the others."""
    from ..errors import command_line
    from .download import RESOURCES

    if dataset not in RESOURCES:
        return ""
    words = ["data", "download", dataset, *(["--root", str(root)] if root is not None else [])]
    return f"; or fetch it: `{command_line(*words)}`"


def find_file(directory: Path, name: str) -> Path | None:
    """`directory/name`, else `directory/name.gz`, else None."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None
