"""Studies: one YAML file describes many runs; `cnnlab study run` runs them into one study directory.

    name: eq2425_ablation
    base: {model: convnet, data: {name: cifar10, normalize: centered}, optim: {name: sgd, lr: 0.001}}
    variations:                     # named override sets; a 'baseline' without overrides comes first
                                    # (unless one of them has no overrides: that one is the baseline)
      filters_64_128_256: {model.filters: [64, 128, 256]}
      adam: {optimizer: adam}
    grid: {optim.lr: [0.1, 0.01]}   # optional cartesian product, applied to every variation
    zip: {optim.lr: [0.1, 0.01], schedule.step_size: [20, 30]}   # optional pairs (crossed with the grid)
    seeds: [0, 1, 2]                # or repeats: 3 (seeds 0, 1, 2); or a seed: in the base (or seed=N), one seed
    reference:                      # optional published numbers, printed beside ours by `study table`
      source: the paper's table 3
      top1: {baseline: 33.59, filters_64_128_256: 39.32}
      seconds: {baseline: 5108}     # any table column: top5_error, best_val, best_epoch, ... (reference.py)
    protocol: compare               # or tune: per variation, select the best point on validation and
                                    # retrain it on train + validation (experiments/tune_grid.py)

`mode: greedy` with `stages:` instead of `variations:` is a greedy, cumulative search (experiments/greedy.py).

Every key a run config takes (seed and device too) works in a variation, a grid or zip point and a greedy
alternative. A `seed:` there replaces the study's seeds for those runs: `lucky: {seed: 5}` is one run, with
seed 5, whatever `seeds:` says (more specific wins, as for every other key); a stage's winner carries its seed
into later stages. The study's seeds are given once: a seed in the base (or `seed=N`) together with `seeds:`
or `repeats:` is refused. Nothing is kept silently as the last of two: a key repeated in a YAML mapping, one
key in two spellings (`lr` and `optim.lr`), a key in both grid and zip, two variations, stages or alternatives
of one name, and two runs whose names come out alike are each an error with the file and line.

Every run's config is resolved when the study is planned, so a typo in the tenth variation stops the study
before the first run, with the file and line. Runs are ordinary run directories inside the study
directory; running a study again skips finished runs (completed, stopped early or diverged: a divergence
is a result), resumes interrupted ones, and re-runs failed ones only when asked.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RunConfig, flatten, load_yaml_layer, parse_overrides, resolve
from ..config.layers import Layer, add_key, canonical_key
from ..config.yaml_file import read_yaml
from ..errors import ConfigError, closest
from ..io import atomic_write_json, atomic_write_text, check_name
from ..options import coerce
from . import reference as published
from .plan import read_plan, seal

STUDY_KEYS = ("name", "description", "base", "variations", "grid", "zip", "seeds", "repeats", "metric", "reference",
              "mode", "stages", "protocol", "compare_to", "greedy")
METRICS = ("test_acc", "test_top5", "best_val_acc")  # what a study's table can rank by (experiments/table.py)


@dataclass(frozen=True)
class RunSpec:
    name: str  # the run directory's name inside the study directory
    variation: str
    seed: int
    grid: dict[str, Any]
    config: RunConfig
    added: bool = False  # a seed `--until-decided` added (experiments/decided.py), kept in plan.json

    def with_seed(self, seed: int) -> RunSpec:
        """The same run with another seed, named `<name>__seed<seed>` (an added seed)."""
        suffix = f"__seed{self.seed}"
        stem = self.name[: -len(suffix)] if self.name.endswith(suffix) else self.name
        return RunSpec(f"{stem}__seed{seed}", self.variation, seed, dict(self.grid),
                       dataclasses.replace(self.config, seed=seed), added=True)


@dataclass
class Study:
    name: str
    path: Path | None
    description: str
    runs: list[RunSpec]
    metric: str = "test_acc"
    raw: dict[str, Any] = field(default_factory=dict)
    reference: Any = field(default_factory=dict)  # published numbers, as the file gives them (reference.py)
    compare_to: dict[str, str] = field(default_factory=dict)  # variation -> the row its verdict compares with
    require: str = "best"  # greedy: {require: better}: keep stays unless an alternative is 'better' (greedy.py)
    keep: str = "auto"  # greedy: {keep: retrain|reuse|auto}: keep trained again on each stage's seeds (greedy.py)
    protocol: str = "compare"  # or 'tune'
    mode: str = "one_change"  # or 'greedy' (then `runs` grows stage by stage: experiments/greedy.py)
    base: Layer = field(default_factory=dict)  # base + study overrides, for stages planned later
    seeds: list[int] = field(default_factory=lambda: [0])
    stages: list[Any] = field(default_factory=list)
    where: Any = None  # keys -> 'file:line' of the study file, for messages found after planning
    only: frozenset[str] | None = None  # `--shard`: the runs this process runs (plan.json keeps them all)
    sequential: dict[str, Any] | None = None  # --until-decided: the design fixed before the first look (decided.py)
    implicit_baseline: bool = False  # the 'baseline' row is cnnlab's (the file's variations all change something)

    @property
    def variations(self) -> list[str]:
        return list(dict.fromkeys(spec.variation for spec in self.runs))

    @property
    def selected(self) -> list[RunSpec]:
        """The runs this process runs: all of them, or its shard's."""
        return self.runs if self.only is None else [spec for spec in self.runs if spec.name in self.only]


def load_study(path: str | Path, overrides: Sequence[str] = (), seeds: Sequence[int] | None = None) -> Study:
    """Read and plan a study file; `overrides` (key=value) apply to the base of every run; `seeds` (from
    `study run --seeds`) replace the file's seeds: or repeats:."""
    path = Path(path)
    document = read_yaml(path, "study file")
    data, lines = document.data or {}, document.key_lines()
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a study file is a mapping with base:, variations:, grid:, seeds:")
    if seeds is not None:
        data = {**{k: v for k, v in data.items() if k not in ("seeds", "repeats")}, "seeds": list(seeds)}
    return plan_study(data, path, overrides, lambda keys: f"{path}:{lines.get(keys, '?')}")


def plan_study(data: Mapping[str, Any], path: Path | None = None, overrides: Sequence[str] = (),
               where: Any = lambda keys: "study") -> Study:
    unknown = sorted(set(data) - set(STUDY_KEYS))
    if unknown:
        raise ConfigError(f"{where((unknown[0],))}: unknown study key '{unknown[0]}'; keys: {', '.join(STUDY_KEYS)}")
    name = str(data.get("name") or (path.stem if path else "study"))
    base = {**_base_layer(data.get("base"), path, where), **parse_overrides(overrides, "study override")}
    base = {**experiment_layer(name, base), **base}
    seeds = _seeds(data, base, where)
    study = Study(name, path, str(data.get("description") or ""), [], str(data.get("metric") or "test_acc"),
                  dict(data), base=base, seeds=seeds, mode=str(data.get("mode") or "one_change"),
                  protocol=str(data.get("protocol") or "compare"), where=where)
    if study.metric not in METRICS:
        raise ConfigError(f"{where(('metric',))}: metric must be one of {', '.join(METRICS)}, not '{study.metric}' "
                          "(training curves are in each run's metrics.csv and `cnnlab study plot`)")
    study.require, study.keep = _greedy_options(data.get("greedy"), study.mode, where)
    if study.mode == "greedy":
        _check_greedy_keep(study, where)
        study.stages = plan_stages(data, study, where)
        rows = [name for stage in study.stages for alt in stage.alternatives for name in (alt, f"{stage.name}:{alt}")]
        study.reference = published.check(data.get("reference"), [*rows, "final"], where(("reference",)))
        return study
    if study.mode != "one_change":
        raise ConfigError(f"{where(('mode',))}: mode must be one_change (the default) or greedy, not '{study.mode}'")
    variations = _variations(data.get("variations") or {}, where)
    study.implicit_baseline = "baseline" in variations and "baseline" not in (data.get("variations") or {})
    grid, pairs = _grid(data.get("grid") or {}, where), _zip(data.get("zip") or {}, where)
    both = sorted(set(grid[0]) & set(pairs[0]))
    if both:
        raise ConfigError(f"{where(('zip',))}: '{both[0]}' is in both grid: and zip:; give its values in one of them")
    points = [{**g, **z} for g in grid for z in pairs]
    for (variation, layer), point in itertools.product(variations.items(), points):
        grid_layer = {key: (value, f"{where(('grid',))} grid/zip") for key, value in point.items()}
        own_seeds, seed_origin = run_seeds(seeds, f"{where(('seeds',))} seeds", layer, grid_layer)
        for seed in own_seeds:
            config = resolve(experiment_layer(name, base, layer, grid_layer), base, layer, grid_layer,
                             {"seed": (seed, seed_origin)})
            prefix = "" if len(variations) == 1 and point else variation  # a pure grid: name runs by their point
            name = run_name(prefix, point, seed, len(seeds) > 1 and "seed" not in point)
            study.runs.append(RunSpec(name, variation, seed, dict(point), config))
    _check_unique_names(study.runs, where)
    rows = [*study.variations, *(published.row_label(spec.variation, spec.grid) for spec in study.runs)]
    study.reference = published.check(data.get("reference"), rows, where(("reference",)))
    study.compare_to = _compare_to(data.get("compare_to"), study.variations, where)
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
    planned: list[Stage] = []
    for entry in stages:
        if not isinstance(entry, Mapping) or len(entry) != 1:
            raise ConfigError(f"{where(('stages',))}: each stage is one 'name: {{alternative: overrides}}' mapping")
        (name, alternatives), = entry.items()
        name = check_name(str(name), "stage name")
        if not isinstance(alternatives, Mapping) or len(alternatives) < 2:
            raise ConfigError(f"{where(('stages',))}: stage '{name}' needs at least two alternatives to choose from")
        if name in {stage.name for stage in planned}:
            raise ConfigError(f"{where(('stages',))}: two stages are named '{name}' (their runs would share "
                              "directories); give each stage its own name")
        layers: dict[str, Layer] = {}
        for alt, overrides in alternatives.items():
            alt = _unique(check_name(str(alt), "alternative name"), layers, f"{where(('stages',))}: stage '{name}'")
            layers[alt] = dotted_layer(overrides or {}, f"stage '{name}' {alt}")
        planned.append(Stage(name, layers))
    probes = []
    for stage in planned:
        for alt, layer in stage.alternatives.items():
            seeds, origin = run_seeds(study.seeds, "seeds", layer)
            probes.append(RunSpec(f"{stage.name}__{alt}", f"{stage.name}:{alt}", seeds[0], {},
                                  resolve(study.base, layer, {"seed": (seeds[0], origin)})))
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
    keys = _distinct([canonical_key(str(key), where(("zip",))) for key in pairs], where(("zip",)))
    return [dict(zip(keys, values)) for values in zip(*pairs.values())] or [{}]


def experiment_layer(name: str, *layers: Layer) -> Layer:
    """A study's runs tracked in MLflow (train.mlflow or train.mlflow_uri in these layers) log to one
    experiment named after the study: this layer, placed first, so that a layer naming another wins.
    Nothing for untracked runs, whose configs stay those of the study file."""
    merged = {key: value for layer in layers for key, (value, _) in layer.items()}
    if merged.get("train.mlflow") is True or merged.get("train.mlflow_uri") is not None:
        return {"train.mlflow_experiment": (name, "the study's name (MLflow experiment)")}
    return {}


def _greedy_options(options: Any, mode: str, where: Any) -> tuple[str, str]:
    """`greedy: {require: better|best, keep: auto|retrain|reuse}`: what a stage needs to replace its keep, and
    whether keep is trained again on each stage's own seeds (experiments/greedy.py says why)."""
    if options is None:
        return "best", "auto"
    if mode != "greedy":
        raise ConfigError(f"{where(('greedy',))}: greedy: options apply to mode: greedy only")
    valid = isinstance(options, Mapping) and not set(options) - {"require", "keep"}
    if not valid or options.get("require", "best") not in ("best", "better") or \
            options.get("keep", "auto") not in ("auto", "retrain", "reuse"):
        raise ConfigError(f"{where(('greedy',))}: greedy takes require: better (keep stays unless an alternative is "
                          "better on validation) or best (the highest validation accuracy, the default), and keep: "
                          "retrain (keep trained again on each stage's own seeds), reuse (the winner's runs carried "
                          "forward) or auto (retrain with two or more seeds, the default)")
    return str(options.get("require", "best")), str(options.get("keep", "auto"))


def _check_greedy_keep(study: Study, where: Any) -> None:
    """`require: better` decides on verdicts, which need seeds on both sides and a keep not chosen on them."""
    if study.require != "better":
        return
    if len(study.seeds) < 2:
        raise ConfigError(f"{where(('greedy',))}: greedy: {{require: better}} replaces keep on a verdict, and one "
                          "seed gives none ('1 seed'): give the study seeds: [0, 1, 2]")
    if study.keep == "reuse":
        raise ConfigError(f"{where(('greedy',))}: greedy: {{require: better}} with keep: reuse would judge each stage "
                          "against runs chosen for being the best on the same seeds (a biased reference): use keep: "
                          "retrain (or auto)")


def _compare_to(compare_to: Any, variations: list[str], where: Any) -> dict[str, str]:
    """`compare_to: {row: other_row}`: the row's Δ and verdict are against `other_row`, not the baseline."""
    if compare_to is None:
        return {}
    if not isinstance(compare_to, Mapping):
        raise ConfigError(f"{where(('compare_to',))}: compare_to maps a variation to the variation it is compared "
                          "with, e.g. {{4.A.2_fc128: 4.A.1_filters}}")
    for row, other in compare_to.items():
        for name in (str(row), str(other)):
            if name not in variations:
                hint = closest(name, variations)
                guess = f" (did you mean '{hint}'?)" if hint else ""
                raise ConfigError(f"{where(('compare_to',))}: compare_to names '{name}', which is not a variation"
                                  f"{guess}; variations: {', '.join(variations)}")
        if str(row) == str(other):
            raise ConfigError(f"{where(('compare_to',))}: compare_to compares '{row}' with itself")
    return {str(row): str(other) for row, other in compare_to.items()}


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
        _unique(name, layers, where(("variations", name)))
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
            add_key(layer, canonical_key(str(key), origin), value, origin)
    return layer


def _unique(name: str, taken: Mapping[str, Any], where: str) -> str:
    """`name`, unless taken: `1:` and `'1':` are two YAML keys but one name (one run directory)."""
    if name in taken:
        raise ConfigError(f"{where}: the name '{name}' is given twice (as a number and as text?); "
                          "give each its own name")
    return name


def run_seeds(seeds: list[int], origin: str, *layers: Layer) -> tuple[list[int], str]:
    """The seeds of the runs made from these layers (variation, grid/zip point; or the winners so far and a
    greedy alternative), and where they came from. A `seed:` in one of them (the last one that has it)
    replaces the study's seeds: one run, with that seed. Otherwise one run per seed of the study."""
    for layer in reversed(layers):
        if "seed" in layer:
            value, where = layer["seed"]
            return [coerce(value, int, "seed", where)], where
    return seeds, origin


def _check_unique_names(runs: list[RunSpec], where: Any) -> None:
    """Two runs of one name would share one directory: the second would find the first's result."""
    first: dict[str, RunSpec] = {}
    for spec in runs:
        other = first.setdefault(spec.name, spec)
        if other is not spec:
            raise ConfigError(f"{where(('variations',))}: runs {other.variation} {other.grid or ''} and "
                              f"{spec.variation} {spec.grid or ''} would both be named '{spec.name}' (a run's name "
                              "keeps only letters, digits and _.+- of its grid values); make the values or "
                              "variation names differ in those characters")


def _grid(grid: Any, where: Any) -> list[dict[str, Any]]:
    if not isinstance(grid, Mapping):
        raise ConfigError(f"{where(('grid',))}: grid must map keys to lists of values")
    keys = list(grid)
    for key in keys:
        if not isinstance(grid[key], list) or not grid[key]:
            raise ConfigError(f"{where(('grid',))}: grid '{key}' must be a non-empty list of values")
    canonical = _distinct([canonical_key(str(key), where(("grid",))) for key in keys], where(("grid",)))
    return [dict(zip(canonical, values)) for values in itertools.product(*(grid[k] for k in keys))] or [{}]


def _distinct(keys: list[str], where: str) -> list[str]:
    """Keys of a grid or zip, each once: `lr:` and `optim.lr:` are one key in two spellings."""
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise ConfigError(f"{where}: '{twice[0]}' is given twice (a short and a dotted name?); keep one")
    return keys


def _seeds(data: Mapping[str, Any], base: Layer, where: Any) -> list[int]:
    """The study's seeds: seeds: [...], repeats: N (seeds 0..N-1), or the base's (or an override's) seed."""
    if "seeds" in data and "repeats" in data:
        raise ConfigError(f"{where(('seeds',))}: give seeds: [...] or repeats: N, not both")
    if "seed" in base:
        value, origin = base["seed"]
        given = next((key for key in ("seeds", "repeats") if key in data), None)
        if given is not None:
            raise ConfigError(f"seed is set for the whole study twice: at {origin} and by {given}: "
                              f"({where((given,))}); give the study's seeds once, as seeds: [...] (a variation's "
                              "own seed: replaces them for that variation)")
        return [coerce(value, int, "seed", origin)]
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
    plan = [{"name": s.name, "variation": s.variation, "seed": s.seed, "grid": s.grid, **({"added": True} if s.added
             else {})} for s in study.runs]
    meta = {"name": study.name, "description": study.description, "metric": study.metric, "mode": study.mode,
            "protocol": study.protocol, "reference": study.reference, "compare_to": study.compare_to,
            "greedy": {"require": study.require, "keep": study.keep, "seeds": len(study.seeds)}, "runs": plan,
            **({"sequential": study.sequential} if study.sequential else {}),
            **({"implicit_baseline": True} if study.implicit_baseline else {})}
    atomic_write_json(directory / "plan.json", seal(meta))  # read back by experiments/plan.py, which checks it


def adopt_added_runs(study: Study, directory: Path) -> None:
    """Keep in `study.runs` the seeds an earlier `--until-decided` added (plan.json marks them), for the rows the
    study still has, so running or tabulating the study again neither forgets nor repeats them."""
    path = Path(directory) / "plan.json"
    if not path.is_file():
        return
    known = {spec.name for spec in study.runs}
    firsts = {(spec.variation, json.dumps(spec.grid, sort_keys=True)): spec for spec in reversed(study.runs)}
    for meta in read_plan(directory).get("runs", []):
        first = firsts.get((meta.get("variation"), json.dumps(meta.get("grid", {}), sort_keys=True)))
        if meta.get("added") and first is not None and meta["name"] not in known:
            spec = first.with_seed(int(meta["seed"]))
            if spec.name == meta["name"]:
                study.runs.append(spec)
                known.add(spec.name)


def adopt_design(study: Study, directory: Path) -> None:
    """Keep the sequential design an earlier `--until-decided` fixed (its verdicts keep alpha only under the design
    chosen before its first look): a plain run of the study keeps it, another --max-seeds is refused. A design
    chosen for a study that already has a plan is marked: its first seeds may have been tabulated at the full alpha."""
    if not (Path(directory) / "plan.json").is_file():
        return
    earlier = read_plan(directory).get("sequential")
    if study.sequential is None:
        study.sequential = earlier
    elif earlier is None:
        study.sequential = {**study.sequential, "chosen_after_a_plain_run": True}
    elif (earlier.get("max_seeds"), earlier.get("boundary")) != (study.sequential["max_seeds"],
                                                                 study.sequential["boundary"]):
        raise ConfigError(
            f"'{directory}' added seeds until decided with --max-seeds {earlier.get('max_seeds')} and the "
            f"{earlier.get('boundary')} boundary; its verdicts keep their alpha only under the design chosen before "
            f"the first look: run it with --max-seeds {earlier.get('max_seeds')} --boundary "
            f"{earlier.get('boundary')}, or into a new --dir")
    else:
        study.sequential = earlier


def names_in(specs: Iterable[RunSpec]) -> list[str]:
    return [s.name for s in specs]
