"""Studies: one YAML file describes many runs; `cnnlab study run` runs them into one study directory.

    name: eq2425_ablation
    base: {model: convnet, data: {name: cifar10, normalize: centered}, optim: {name: sgd, lr: 0.001}}
    variations:                     # named override sets; a 'baseline' without overrides comes first
      filters_64_128_256: {model.filters: [64, 128, 256]}
      adam: {optimizer: adam}
    grid: {optim.lr: [0.1, 0.01]}   # optional cartesian product, applied to every variation
    seeds: [0, 1, 2]                # or repeats: 3

Every run's config is resolved when the study is planned, so a typo in the tenth variation stops the study
before the first run, with the file and line. Runs are ordinary run directories inside the study
directory; running a study again skips finished runs (completed, stopped early or diverged: a divergence
is a result), resumes interrupted ones, and re-runs failed ones only when asked.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import RunConfig, flatten, load_yaml_layer, parse_overrides, resolve
from ..config.layers import Layer, _key_lines, canonical_key
from ..errors import ConfigError
from ..io import atomic_write_json, atomic_write_text, check_name

STUDY_KEYS = ("name", "description", "base", "variations", "grid", "seeds", "repeats", "metric")


@dataclass(frozen=True)
class RunSpec:
    name: str  # the run directory's name inside the study directory
    variation: str
    seed: int
    grid: dict[str, Any]
    config: RunConfig


@dataclass
class Study:
    name: str
    path: Path | None
    description: str
    runs: list[RunSpec]
    metric: str = "test_acc"
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def variations(self) -> list[str]:
        return list(dict.fromkeys(spec.variation for spec in self.runs))


def load_study(path: str | Path, overrides: Sequence[str] = ()) -> Study:
    """Read and plan a study file; `overrides` (key=value) apply to the base of every run."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"study file '{path}' does not exist") from None
    try:
        data = yaml.safe_load(text) or {}
        lines = _key_lines(yaml.compose(text)) if data else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else "?"
        raise ConfigError(f"{path}:{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a study file is a mapping with base:, variations:, grid:, seeds:")
    return plan_study(data, path, overrides, lambda keys: f"{path}:{lines.get(keys, '?')}")


def plan_study(data: Mapping[str, Any], path: Path | None = None, overrides: Sequence[str] = (),
               where: Any = lambda keys: "study") -> Study:
    unknown = sorted(set(data) - set(STUDY_KEYS))
    if unknown:
        raise ConfigError(f"{where((unknown[0],))}: unknown study key '{unknown[0]}'; keys: {', '.join(STUDY_KEYS)}")
    base = _base_layer(data.get("base"), path, where)
    variations = _variations(data.get("variations") or {}, where)
    grid = _grid(data.get("grid") or {}, where)
    seeds = _seeds(data, where)
    runs = []
    for (variation, layer), point, seed in itertools.product(variations.items(), grid, seeds):
        grid_layer = {key: (value, f"{where(('grid',))} grid") for key, value in point.items()}
        seed_layer = {"seed": (seed, f"{where(('seeds',))} seeds")}
        config = resolve(base, parse_overrides(overrides, "study override"), layer, grid_layer, seed_layer)
        prefix = "" if len(variations) == 1 and point else variation  # a pure grid: name runs by their point
        runs.append(RunSpec(run_name(prefix, point, seed, len(seeds) > 1), variation, seed, dict(point), config))
    _check_models(runs)
    name = str(data.get("name") or (path.stem if path else "study"))
    return Study(name, path, str(data.get("description") or ""), runs, str(data.get("metric") or "test_acc"),
                 dict(data))


def _check_models(runs: list[RunSpec]) -> None:
    from ..models import check_options

    checked = set()
    for spec in runs:
        key = (spec.config.model.name, repr(sorted(spec.config.model.options.items())))
        if key not in checked:
            checked.add(key)
            try:
                check_options(spec.config.model.name, spec.config.model.options)
            except ConfigError as exc:
                raise ConfigError(f"run '{spec.name}': {exc}") from None


def _base_layer(base: Any, path: Path | None, where: Any) -> Layer:
    if base is None:
        return {}
    if isinstance(base, str):  # a config file, relative to the study file
        base_path = Path(base) if path is None or Path(base).is_absolute() else path.parent / base
        return load_yaml_layer(base_path)
    if not isinstance(base, Mapping):
        raise ConfigError(f"{where(('base',))}: base must be a config mapping or the path of a config file")
    return flatten(base, lambda keys: f"{where(('base',))} base")


def _variations(variations: Any, where: Any) -> dict[str, Layer]:
    if not isinstance(variations, Mapping):
        raise ConfigError(f"{where(('variations',))}: variations must map names to override mappings")
    layers: dict[str, Layer] = {}
    if "baseline" not in variations:
        layers["baseline"] = {}
    for name, overrides in variations.items():
        name = str(name)
        try:
            check_name(name, "variation name")
        except ConfigError as exc:
            raise ConfigError(f"{where(('variations', name))}: {exc}") from None
        if overrides is None:
            overrides = {}
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"{where(('variations',))}: variation '{name}' must be a mapping of key: value")
        origin = f"{where(('variations', name))} variation '{name}'"
        layers[name] = _dotted_layer(overrides, origin)
    return layers


def _dotted_layer(values: Mapping[str, Any], origin: str) -> Layer:
    """{'model.filters': [..], 'optimizer': 'adam', 'data': {'shuffle': False}} -> a config layer."""
    nested = {str(k): v for k, v in values.items() if isinstance(v, Mapping)}
    layer = flatten(nested, lambda keys: origin)
    for key, value in values.items():
        if not isinstance(value, Mapping):
            layer[canonical_key(str(key), origin)] = (value, origin)
    return layer


def _grid(grid: Any, where: Any) -> list[dict[str, Any]]:
    if not isinstance(grid, Mapping):
        raise ConfigError(f"{where(('grid',))}: grid must map keys to lists of values")
    keys = list(grid)
    for key in keys:
        if not isinstance(grid[key], list) or not grid[key]:
            raise ConfigError(f"{where(('grid',))}: grid '{key}' must be a non-empty list of values")
    canonical = [canonical_key(str(key), where(("grid",))) for key in keys]
    return [dict(zip(canonical, values)) for values in itertools.product(*(grid[k] for k in keys))] or [{}]


def _seeds(data: Mapping[str, Any], where: Any) -> list[int]:
    if "seeds" in data and "repeats" in data:
        raise ConfigError(f"{where(('seeds',))}: give seeds: [...] or repeats: N, not both")
    if "seeds" in data:
        seeds = data["seeds"]
        if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds) or not seeds:
            raise ConfigError(f"{where(('seeds',))}: seeds must be a list of integers")
        return seeds
    repeats = data.get("repeats", 1)
    if not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(f"{where(('repeats',))}: repeats must be a positive integer")
    return list(range(repeats))


def run_name(variation: str, point: Mapping[str, Any], seed: int, with_seed: bool) -> str:
    parts = [variation] if variation else []
    for key, value in point.items():
        section, _, field_name = key.rpartition(".")
        short = section if field_name == "name" else field_name  # schedule.name=step -> schedulestep
        parts.append(re.sub(r"[^A-Za-z0-9_.+-]", "", f"{short}{value}".replace(" ", "")))
    if with_seed:
        parts.append(f"seed{seed}")
    return check_name("__".join(parts) or "run", "run name")


def write_plan(study: Study, directory: Path) -> None:
    if study.path is not None:
        atomic_write_text(directory / "study.yaml", study.path.read_text())
    plan = [{"name": s.name, "variation": s.variation, "seed": s.seed, "grid": s.grid} for s in study.runs]
    meta = {"name": study.name, "description": study.description, "metric": study.metric, "runs": plan}
    atomic_write_json(directory / "plan.json", meta)


def read_plan(directory: Path) -> dict[str, Any]:
    path = Path(directory) / "plan.json"
    if not path.is_file():
        raise ConfigError(f"'{directory}' is not a study directory (no plan.json); run `cnnlab study run FILE` first")
    return json.loads(path.read_text())


def names_in(specs: Iterable[RunSpec]) -> list[str]:
    return [s.name for s in specs]
