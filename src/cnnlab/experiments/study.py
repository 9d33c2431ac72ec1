"""Studies: one YAML file describes many runs; `cnnlab study run` runs them into one study directory.

    name: eq2425_ablation
    source: EQ2425 Project 3 report # optional: the document it reproduces (`cnnlab study list` shows it)
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RunConfig, parse_overrides, resolve
from ..config.layers import Layer
from ..config.yaml_file import read_yaml
from ..errors import ConfigError, closest
from ..io import check_name
from . import reference as published
from .plan import adopt_added_runs as adopt_added_runs  # the plan.json side of a study, in experiments/plan.py
from .plan import adopt_design as adopt_design
from .plan import names_in as names_in
from .plan import read_plan as read_plan
from .plan import write_plan as write_plan
from .study_values import (
    base_layer,
    dotted_layer,
    grid_points,
    run_name,
    run_seeds,
    study_seeds,
    unique_name,
    variation_layers,
    zip_points,
)

STUDY_KEYS = ("name", "source", "description", "base", "variations", "grid", "zip", "seeds", "repeats", "metric",
              "reference", "mode", "stages", "protocol", "compare_to", "greedy")
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
    base = {**base_layer(data.get("base"), path, where), **parse_overrides(overrides, "study override")}
    base = {**experiment_layer(name, base), **base}
    seeds = study_seeds(data, base, where)
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
    variations = variation_layers(data.get("variations") or {}, where)
    study.implicit_baseline = "baseline" in variations and "baseline" not in (data.get("variations") or {})
    grid, pairs = grid_points(data.get("grid") or {}, where), zip_points(data.get("zip") or {}, where)
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
            alt = unique_name(check_name(str(alt), "alternative name"), layers, f"{where(('stages',))}: stage '{name}'")
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
