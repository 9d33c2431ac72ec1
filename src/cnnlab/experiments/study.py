"""Studies: one YAML file describes many runs; `cnnlab study run` runs them into one study directory.

    name: eq2425_ablation
    base: {model: convnet, data: {name: cifar10, normalize: centered}, optim: {name: sgd, lr: 0.001}}
    variations:                     # named override sets; a 'baseline' without overrides comes first
                                    # (unless one of them has no overrides: that one is the baseline)
      filters_64_128_256: {model.filters: [64, 128, 256]}
      adam: {optimizer: adam}
    grid: {optim.lr: [0.1, 0.01]}   # optional cartesian product, applied to every variation
    zip: {optim.lr: [0.1, 0.01], schedule.step_size: [20, 30]}   # optional pairs (crossed with the grid)
    seeds: [0, 1, 2]                # or repeats: 3
    reference:                      # optional published numbers, printed beside ours by `study table`
      source: the paper's table 3
      top1: {baseline: 33.59, filters_64_128_256: 39.32}
      seconds: {baseline: 5108}
    protocol: compare               # or tune: per variation, select the best point on validation and
                                    # retrain it on train + validation (experiments/tune_grid.py)

`mode: greedy` with `stages:` instead of `variations:` is a greedy, cumulative search (experiments/greedy.py).

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

STUDY_KEYS = ("name", "description", "base", "variations", "grid", "zip", "seeds", "repeats", "metric", "reference",
              "mode", "stages", "protocol")
METRICS = ("test_acc", "test_top5", "best_val_acc")  # what a study's table can rank by (experiments/table.py)
REFERENCE_COLUMNS = {"top1": "report top-1", "seconds": "report s"}


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
    reference: dict[str, Any] = field(default_factory=dict)  # source, top1 {variation: %}, seconds {...}
    protocol: str = "compare"  # or 'tune'
    mode: str = "one_change"  # or 'greedy' (then `runs` grows stage by stage: experiments/greedy.py)
    base: Layer = field(default_factory=dict)  # base + study overrides, for stages planned later
    seeds: list[int] = field(default_factory=lambda: [0])
    stages: list[Any] = field(default_factory=list)
    where: Any = None  # keys -> 'file:line' of the study file, for messages found after planning
    only: frozenset[str] | None = None  # `--shard`: the runs this process runs (plan.json keeps them all)

    @property
    def variations(self) -> list[str]:
        return list(dict.fromkeys(spec.variation for spec in self.runs))

    @property
    def selected(self) -> list[RunSpec]:
        """The runs this process runs: all of them, or its shard's."""
        return self.runs if self.only is None else [spec for spec in self.runs if spec.name in self.only]


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
    base = {**_base_layer(data.get("base"), path, where), **parse_overrides(overrides, "study override")}
    seeds = _seeds(data, where)
    name = str(data.get("name") or (path.stem if path else "study"))
    study = Study(name, path, str(data.get("description") or ""), [], str(data.get("metric") or "test_acc"),
                  dict(data), base=base, seeds=seeds, mode=str(data.get("mode") or "one_change"),
                  protocol=str(data.get("protocol") or "compare"), where=where)
    if study.metric not in METRICS:
        raise ConfigError(f"{where(('metric',))}: metric must be one of {', '.join(METRICS)}, not '{study.metric}' "
                          "(training curves are in each run's metrics.csv and `cnnlab study plot`)")
    if study.mode == "greedy":
        study.stages = plan_stages(data, study, where)
        return study
    if study.mode != "one_change":
        raise ConfigError(f"{where(('mode',))}: mode must be one_change (the default) or greedy, not '{study.mode}'")
    variations = _variations(data.get("variations") or {}, where)
    points = [{**g, **z} for g in _grid(data.get("grid") or {}, where) for z in _zip(data.get("zip") or {}, where)]
    for (variation, layer), point, seed in itertools.product(variations.items(), points, seeds):
        grid_layer = {key: (value, f"{where(('grid',))} grid/zip") for key, value in point.items()}
        seed_layer = {"seed": (seed, f"{where(('seeds',))} seeds")}
        config = resolve(base, layer, grid_layer, seed_layer)
        prefix = "" if len(variations) == 1 and point else variation  # a pure grid: name runs by their point
        study.runs.append(RunSpec(run_name(prefix, point, seed, len(seeds) > 1), variation, seed, dict(point), config))
    study.reference = _reference(data.get("reference"), study.variations, where)
    _check_protocol(study, where)
    check_models(study.runs)
    return study


@dataclass(frozen=True)
class Stage:
    name: str
    alternatives: dict[str, Layer]


def plan_stages(data: Mapping[str, Any], study: Study, where: Any) -> list[Stage]:
    """The stages of a greedy study file; every alternative is resolved on the base now (a typo stops the
    study before its first run), its combination with earlier winners when the stage comes."""
    for key in ("variations", "grid", "zip", "protocol"):
        if key in data:
            raise ConfigError(f"{where((key,))}: a greedy study has stages:, not {key}:")
    stages = data.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ConfigError(f"{where(('stages',))}: mode greedy needs stages: a list of "
                          "'- stage_name: {alternative: {key: value}, ...}'")
    planned = []
    for entry in stages:
        if not isinstance(entry, Mapping) or len(entry) != 1:
            raise ConfigError(f"{where(('stages',))}: each stage is one 'name: {{alternative: overrides}}' mapping")
        (name, alternatives), = entry.items()
        name = check_name(str(name), "stage name")
        if not isinstance(alternatives, Mapping) or len(alternatives) < 2:
            raise ConfigError(f"{where(('stages',))}: stage '{name}' needs at least two alternatives to choose from")
        layers = {check_name(str(alt), "alternative name"): dotted_layer(overrides or {}, f"stage '{name}' {alt}")
                  for alt, overrides in alternatives.items()}
        planned.append(Stage(name, layers))
    probes = [RunSpec(f"{stage.name}__{alt}", f"{stage.name}:{alt}", study.seeds[0], {},
                      resolve(study.base, layer, {"seed": (study.seeds[0], "seeds")}))
              for stage in planned for alt, layer in stage.alternatives.items()]
    check_models(probes)
    return planned


def _zip(pairs: Any, where: Any) -> list[dict[str, Any]]:
    """`zip: {optim.lr: [0.1, 0.01], schedule.step_size: [20, 30]}` -> the points (0.1, 20), (0.01, 30)."""
    if not isinstance(pairs, Mapping):
        raise ConfigError(f"{where(('zip',))}: zip must map keys to lists of equal length")
    lengths = {len(v) if isinstance(v, list) else -1 for v in pairs.values()}
    if pairs and (len(lengths) != 1 or min(lengths) < 1):
        sizes = sorted(len(v) if isinstance(v, list) else 0 for v in pairs.values())
        raise ConfigError(f"{where(('zip',))}: zip needs non-empty lists of one length (the i-th values go "
                          f"together), got lengths {sizes}")
    keys = [canonical_key(str(key), where(("zip",))) for key in pairs]
    return [dict(zip(keys, values)) for values in zip(*pairs.values())] or [{}]


def _reference(reference: Any, variations: list[str], where: Any) -> dict[str, Any]:
    if reference is None:
        return {}
    if not isinstance(reference, Mapping) or not set(reference) <= {"source", *REFERENCE_COLUMNS}:
        raise ConfigError(f"{where(('reference',))}: reference is a mapping of source: TEXT and "
                          f"{' / '.join(REFERENCE_COLUMNS)}: {{variation: number}}")
    for column in REFERENCE_COLUMNS:
        values = reference.get(column) or {}
        unknown = sorted(set(values) - set(variations))
        if unknown:
            raise ConfigError(f"{where(('reference',))}: reference {column} names '{unknown[0]}', which is not a "
                              f"variation; variations: {', '.join(variations)}")
        if not all(isinstance(v, (int, float)) for v in values.values()):
            raise ConfigError(f"{where(('reference',))}: reference {column} values must be numbers")
    return dict(reference)


def _check_protocol(study: Study, where: Any) -> None:
    if study.protocol not in ("compare", "tune"):
        raise ConfigError(f"{where(('protocol',))}: protocol must be compare or tune, not '{study.protocol}'")
    if study.protocol == "tune":
        if not any(spec.grid for spec in study.runs):
            raise ConfigError(f"{where(('protocol',))}: protocol tune selects among grid or zip points; give one")
        for spec in study.runs:
            if spec.config.data.val_fraction == 0 and not spec.config.data.val_per_class:
                raise ConfigError(f"{where(('protocol',))}: run '{spec.name}': tuning selects on validation "
                                  "accuracy, so data.val_fraction must be > 0 (or data.val_per_class set)")


def check_models(runs: list[RunSpec]) -> None:
    """Every run's model built on the meta device, and its starting weights present, before the first run."""
    from ..models import check_options
    from ..models.pretrained import check_source

    checked = set()
    for spec in runs:
        weights = spec.config.model.weights
        try:
            if weights:  # a file that exists, or a name of published weights the model has (no download here)
                check_source(spec.config.model.name, weights)
        except ConfigError as exc:
            raise ConfigError(f"run '{spec.name}': {exc}") from None
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
    if "baseline" not in variations and all(variations.values()):  # an empty variation is the baseline itself
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
        layers[name] = dotted_layer(overrides, origin)
    return layers


def dotted_layer(values: Mapping[str, Any], origin: str) -> Layer:
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
    meta = {"name": study.name, "description": study.description, "metric": study.metric, "mode": study.mode,
            "protocol": study.protocol, "reference": study.reference, "runs": plan}
    atomic_write_json(directory / "plan.json", meta)


def read_plan(directory: Path) -> dict[str, Any]:
    path = Path(directory) / "plan.json"
    if not path.is_file():
        raise ConfigError(f"'{directory}' is not a study directory (no plan.json); run `cnnlab study run FILE` first")
    return json.loads(path.read_text())


def names_in(specs: Iterable[RunSpec]) -> list[str]:
    return [s.name for s in specs]
