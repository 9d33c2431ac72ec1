"""The study files that come with cnnlab: the repository's studies/ folder, installed with the package as
`cnnlab.studies` (setup.py maps the folder and takes every file in it, so a study added there ships with the
next wheel). From any folder, by name: `cnnlab study list`, `cnnlab study run eq2425_report`, `cnnlab study
show eq2425_report > mine.yaml` to copy and edit; a path (`studies/eq2425_report.yaml`, `mine.yaml`) still
works, and a file that exists wins over a packaged name.

The list reads each file as it is, without planning it (a study whose weights file is not here yet still
lists): its seed document (`source:`), what it asks (`description:`), its runs (variations x grid x zip x
seeds; a greedy search at most one run per alternative; a search its trials) and their epochs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..config.yaml_file import read_yaml
from ..errors import ConfigError, closest, command_line

PACKAGE = "cnnlab.studies"
SUFFIXES = (".yaml", ".yml")


def folder() -> Path:
    """The installed studies folder (the clone's studies/ in an editable install)."""
    try:
        root = resources.files(PACKAGE)
    except ModuleNotFoundError:
        raise ConfigError("the studies that come with cnnlab are not in this installation (it was installed before "
                          "they were package data): install it again (`pip install -e .` in the clone, or `make "
                          "demo`)") from None
    return Path(str(root))


def names() -> list[str]:
    """Every packaged study's name (its file's name without .yaml), sorted."""
    return sorted(path.stem for path in folder().iterdir() if path.suffix in SUFFIXES and path.is_file())


def packaged(name: str) -> Path | None:
    """The packaged file of `name` ('eq2425_report' or 'eq2425_report.yaml'), or None."""
    if "/" in name or "\\" in name:
        return None
    stem = name[: -len(Path(name).suffix)] if Path(name).suffix in SUFFIXES else name
    return next((path for path in (folder() / f"{stem}{suffix}" for suffix in SUFFIXES) if path.is_file()), None)


def study_file(text: str | Path, what: str = "study file") -> Path:
    """The file `text` names: an existing path as given, else a packaged study of that name; neither is an
    error that names the packaged studies (and the closest), and how to list them."""
    path = Path(text)
    if path.exists():
        return path
    found = packaged(str(text))
    if found is not None:
        return found
    known = names()
    near = packaged(path.name)  # `studies/eq2425_report.yaml` typed outside the clone
    guess = path.stem if near is not None else closest(path.stem, known)
    hint = f"; it comes with cnnlab: `{command_line('study', 'run', guess)}`." if near is not None else \
        (f"; did you mean the packaged study '{guess}'?" if guess else ".")
    raise ConfigError(f"{what} '{text}' does not exist (in {Path.cwd()}){hint} The studies that come with cnnlab "
                      f"run by name from any folder: {', '.join(known)} (`cnnlab study list` says what each asks)")


@dataclass(frozen=True)
class StudyEntry:
    """One line of `cnnlab study list`."""

    name: str
    source: str  # the seed document it reproduces (`source:`), '-' when the file names none
    asks: str  # its description
    runs: str  # '10', 'up to 18' (greedy), '12 trials' (a search space)
    budget: str  # '10 x 300 epochs, cifar10'
    command: str  # 'study run' or 'tune search'
    path: Path


def entries() -> list[StudyEntry]:
    return [describe(folder() / f"{name}.yaml" if (folder() / f"{name}.yaml").is_file() else folder() / f"{name}.yml")
            for name in names()]


def describe(path: Path) -> StudyEntry:
    data = read_yaml(path, "study file").data or {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a study file is a mapping with base:, variations:, grid:, seeds:")
    base = _mapping(data.get("base"))
    epochs, dataset = _epochs(base), _dataset(base)
    if "space" in data:  # a search space (`cnnlab tune search`)
        trials = int(data.get("trials") or 0)
        return StudyEntry(path.stem, _text(data.get("source")), _text(data.get("description")), f"{trials} trials",
                          f"up to {trials} x {epochs} epochs, {dataset}", "tune search", path)
    count, bound = _runs(data)
    runs = f"up to {count}" if bound else str(count)
    return StudyEntry(path.stem, _text(data.get("source")), _text(data.get("description")), runs,
                      f"{runs} x {epochs} epochs, {dataset}", "study run", path)


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value else "-"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _runs(data: Mapping[str, Any]) -> tuple[int, bool]:
    """The study's run count as experiments/study.py plans it, and whether it is an upper bound (greedy)."""
    seeds = data.get("seeds")
    count = len(seeds) if isinstance(seeds, list) and seeds else int(data.get("repeats") or 1)
    if data.get("mode") == "greedy":
        stages = data.get("stages")
        alternatives = sum(len(_mapping(alts)) for stage in (stages if isinstance(stages, list) else [])
                           for alts in _mapping(stage).values())
        return alternatives * count, True
    variations = _mapping(data.get("variations"))
    rows = len(variations) + (1 if "baseline" not in variations and all(variations.values()) else 0)
    lengths = [len(values) for values in _mapping(data.get("grid")).values() if isinstance(values, list)]
    points = math.prod(lengths)
    pairs = [len(values) for values in _mapping(data.get("zip")).values() if isinstance(values, list)]
    points *= max(pairs, default=1)
    runs = rows * points * count
    if data.get("protocol") == "tune":  # each variation's best point retrained on train + validation
        runs += rows
    return runs, False


def _epochs(base: Mapping[str, Any]) -> int:
    train = _mapping(base.get("train"))
    value = train.get("epochs", base.get("epochs", base.get("train.epochs")))
    return int(value) if isinstance(value, int) else RunConfig().train.epochs


def _dataset(base: Mapping[str, Any]) -> str:
    data = base.get("data", base.get("data.name"))
    if isinstance(data, Mapping):
        data = data.get("name")
    return str(data) if data else RunConfig().data.name
