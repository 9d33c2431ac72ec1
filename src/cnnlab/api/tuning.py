"""Tuning: the grid protocol of the Caltech-101 study and an Optuna search, and `tune`, which takes either."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..experiments.tune_grid import GridResult
from ..train import STOP
from .studies import STUDY_LOG
from .training import draw_curves


def tune_grid(config: str | None, overrides: Sequence[str], grid: Sequence[str], directory: str | Path,
              jobs: int = 1, log: Callable[[str], None] = STUDY_LOG.info, pairs: Sequence[str] = ()) -> GridResult:
    """The grid protocol: train every point with validation, discard the diverged, retrain the best on
    train+val for its best epoch count, score the test set (experiments/tune_grid.py)."""
    from ..experiments.tune_grid import parse_grid_options, parse_pairs, plan_grid, run_grid

    study = plan_grid(config, overrides, parse_grid_options(grid), "tune_grid", parse_pairs(pairs))
    log(f"tune grid: {len(study.runs)} points into {directory}")
    with STOP.watching():  # as run_study: the curves drawn whole even when a signal lands while they are
        result = run_grid(study, directory, jobs=jobs, log=log)
        for meta in study.runs:
            draw_curves(Path(directory) / meta.name)
    return result


def tune_search(path: str | Path, overrides: Sequence[str] = (), directory: str | Path | None = None,
                trials: int | None = None, storage: str | None = None) -> dict[str, Any]:
    """An Optuna search (TPE + pruning) over a YAML search space; its summary and the plots' paths."""
    from ..experiments.packaged import study_file
    from ..experiments.tune_search import load_search, run_search, shown_storage, summarize
    from ..viz.search import plot_search

    spec = load_search(study_file(path, "search file"), list(overrides))
    if trials:
        spec = dataclasses.replace(spec, trials=trials)
    if storage:
        spec = dataclasses.replace(spec, storage=storage)
    directory = Path(directory or f"runs/{spec.name}")
    # one stop request over the trials, the summary and the plots: a signal after the last trial lets the
    # plots be drawn whole (a signal during a trial stops the search after that trial, see run_search)
    with STOP.watching():
        study, stopped_by = run_search(spec, directory, log=STUDY_LOG.info)
        summary = summarize(study)
        # the signal's own exit code for the CLI, as `cnnlab train` gives it: 130 SIGINT, 143 SIGTERM
        summary["interrupted"], summary["signal"] = stopped_by is not None, stopped_by
        summary["plots"] = [str(p) for p in plot_search(summary, directory)]
    summary["storage"] = shown_storage(spec)
    return summary


def tune(search: str | Path | None = None, overrides: Sequence[str] = (), *,
         grid: Mapping[str, Sequence[Any]] | None = None, pairs: Mapping[str, Sequence[Any]] | None = None,
         config: str | None = None, directory: str | Path | None = None, trials: int | None = None,
         storage: str | None = None, jobs: int = 1) -> GridResult | dict[str, Any]:
    """Tune hyper-parameters, as `cnnlab tune search` or `cnnlab tune grid`:
    - `search`, a search-space file or the name of one that comes with cnnlab ('search_digits'): an Optuna
      search (TPE + pruning); returns its summary (best trial, states, plots).
    - `grid` ({'optim.lr': [0.1, 0.01]}) and/or `pairs` (values that go together): the grid protocol of the
      Caltech-101 study on `config` + `overrides`; returns the GridResult (rows, best, final run).
    """
    if (search is None) == (grid is None and pairs is None):
        raise ConfigError("cnnlab.tune takes a search-space file (search=...) or a grid (grid={'optim.lr': [0.1, "
                          "0.01]}, pairs=...), one of the two")
    if search is not None:
        return tune_search(search, overrides, directory, trials, storage)
    axes = [f"{key}={','.join(str(v) for v in values)}" for key, values in (grid or {}).items()]
    together = [f"{','.join(pairs)}={','.join(':'.join(str(v) for v in point) for point in zip(*pairs.values()))}"] \
        if pairs else []
    return tune_grid(config, overrides, axes, directory or "runs/tune_grid", jobs, pairs=together)
