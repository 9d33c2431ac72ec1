"""Where commands may write (cnnlab.io): output files and folders a command may replace (`check_output_file`,
`check_output_dir`, by their `written_by` marker), and plain names (`check_name`, `is_inside`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import ConfigError
from .files import MAX_NAME, check_writable

# ------------------------------------------------------------------------------------------ outputs
MARKER_KEY = "written_by"  # in the JSON files a command may later replace: {"written_by": "cnnlab bench", ...}


def written_by(path: Path, marker: str) -> bool:
    """Whether `path` is this command's own earlier output, by its marker: a folder holds a file named
    `marker` (export-samples' .cnnlab-samples); a JSON file says "written_by": `marker` at its top level, or
    in each of its rows. Anything else is someone else's, whatever its name."""
    if path.is_dir():
        return (path / marker).is_file()
    try:
        if path.stat().st_size > 16 << 20:  # ours are kilobytes; no need to parse a large stranger
            return False
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    rows = data if isinstance(data, list) else [data]
    return bool(rows) and all(isinstance(row, dict) and row.get(MARKER_KEY) == marker for row in rows)


def check_output_dir(directory: Path, marker: str, option: str) -> Path:
    """An output folder is new, empty, or one this command wrote before (it holds `marker`): cnnlab never
    writes into (or over) a folder of someone else's files."""
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{option} '{directory}' is a file, not a folder; choose another {option}")
    if directory.is_dir() and any(directory.iterdir()) and not written_by(directory, marker):
        raise ConfigError(f"{option} '{directory}' is a folder of other files (no {marker} in it); cnnlab writes "
                          f"only into new folders or its own: choose another {option}")
    check_writable(directory)
    return directory


def check_output_file(path: Path, option: str, suffixes: tuple[str, ...] = (), marker: str | None = None) -> Path:
    """An output file may replace a file, never a folder, and has one of `suffixes` (when given); with a
    `marker`, only a file this command wrote (`written_by`). It is never one of a run directory's own files
    (run.json, config.yaml, metrics, evaluations, checkpoints): a run directory is cnnlab's record of a run,
    and `--out` must not be able to destroy it."""
    if path.is_dir():
        raise ConfigError(f"{option} '{path}' is a folder; give a file name")
    for folder in (path.parent, path.parent.parent):
        if (folder / "run.json").is_file() and not path.resolve().is_relative_to((folder / "plots").resolve()):
            raise ConfigError(f"{option} '{path}' is inside the run directory '{folder}', whose files are the run's "
                              "record; write it elsewhere (e.g. runs/NAME.json) or into its plots/ folder")
    if marker and path.exists() and not written_by(path, marker):
        raise ConfigError(f"{option} '{path}' exists and is not a file {marker} wrote (no \"{MARKER_KEY}\": "
                          f"\"{marker}\" in it); cnnlab replaces only its own files: choose another {option}, "
                          "or move that file away")
    if suffixes and path.suffix.lower() not in suffixes:
        raise ConfigError(f"{option} '{path}' must end in {' or '.join(suffixes)}")
    check_writable(path.parent)
    return path


# -------------------------------------------------------------------------------------------- names
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*")


def check_name(name: str, what: str = "run name") -> str:
    """`name` if it is one plain folder name, else a ConfigError that says why and what is allowed."""
    shown = name if len(name) <= 48 else f"{name[:40]}... ({len(name)} characters)"
    if not name:
        problem = "it is empty"
    elif len(name) > MAX_NAME:
        problem = f"it is {len(name)} characters long (at most {MAX_NAME})"
    elif "/" in name or "\\" in name or "\0" in name:
        problem = "it contains a path separator or NUL, so it is not one folder name"
    elif name.startswith("."):
        problem = "it starts with '.' ('.' and '..' are not names, and hidden folders are not runs)"
    elif name.startswith("-"):
        problem = "it starts with '-', which reads as an option"
    elif not _NAME.fullmatch(name):
        odd = sorted({c for c in name if not re.fullmatch(r"[A-Za-z0-9._+-]", c)})
        problem = f"it contains {', '.join(repr(c) for c in odd[:5])}"
    else:
        return name
    raise ConfigError(f"{what} {shown!r} is not allowed: {problem}. A {what} is one plain folder name of ASCII "
                      f"letters, digits and . _ + - (at most {MAX_NAME}, not starting with '.' or '-'), "
                      "e.g. fmnist_lr0.1")


def is_inside(path: Path, root: Path) -> bool:
    """Whether `path` (links resolved) lies strictly inside `root`."""
    path, root = Path(path).resolve(), Path(root).resolve()
    return path != root and path.is_relative_to(root)
