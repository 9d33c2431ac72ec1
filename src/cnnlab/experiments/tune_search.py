"""`cnnlab tune search`: Bayesian hyperparameter search with Optuna (optional extra `cnnlab[tune]`).

    name: lr_search
    base: {model: convnet, data: fashion-mnist, epochs: 5}   # or the path of a config file
    trials: 20
    space:
      optim.name: {categorical: [momentum, adam]}
      optim.lr: auto                       # log-uniform around the sampled optimizer's default lr
      optim.weight_decay: {log: [1.0e-6, 1.0e-3]}
      model.dropout: {uniform: [0.0, 0.5]}
      train.batch_size: {categorical: [32, 64, 128]}
    pruner: median                         # median (default), hyperband or none
    storage: null                          # default sqlite:///STUDY_DIR/optuna.db; any database URL works

TPE (Bergstra et al. 2011) proposes each trial; the pruner stops trials whose validation accuracy after an
epoch is below the median of earlier trials at that epoch (Optuna's MedianPruner). A trial that diverges
is recorded as failed, not a crash. Every trial is an ordinary run directory `trial_NNNN`; one that a signal
or a kill interrupted is run again by the next session, continuing that run (tune_trials.py). Several
machines can work on one search by giving them the same `storage` URL (PostgreSQL, MySQL): Optuna
hands out trials; `trials` is the total across all of them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import flatten, load_yaml_layer, parse_overrides, resolve
from ..config.layers import canonical_key
from ..config.yaml_file import read_yaml
from ..errors import ConfigError, RunBusy
from ..train import STOP, Callback
from . import tune_trials as search_trials

SEARCH_KEYS = ("name", "source", "description", "base", "trials", "space", "pruner", "storage", "seed", "metric")
LR_AUTO_RANGE = (1 / 30, 10.0)  # `optim.lr: auto` = [default / 30, default * 10], log-uniform
PRUNED = "pruned by Optuna"  # how a pruned trial's run.json gives its reason


@dataclass(frozen=True)
class Dimension:
    key: str
    kind: str  # log, uniform, int, categorical, auto_lr
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()


@dataclass
class SearchSpec:
    name: str
    base: dict[str, tuple[Any, str]]
    dimensions: list[Dimension]
    trials: int = 20
    pruner: str = "median"
    storage: str | None = None
    seed: int = 0
    overrides: list[str] = field(default_factory=list)
    source: str = "search space"  # where the space came from, for error messages


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("tune search needs Optuna: pip install 'cnnlab[tune]'") from None
    return optuna


def load_search(path: str | Path, overrides: list[str] | None = None) -> SearchSpec:
    path = Path(path)
    data = read_yaml(path, "search file").data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a search file is a mapping with base:, space:, trials:")
    unknown = sorted(set(data) - set(SEARCH_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key '{unknown[0]}'; keys: {', '.join(SEARCH_KEYS)}")
    base = data.get("base") or {}
    if isinstance(base, str):
        layer = load_yaml_layer(path.parent / base)
    elif isinstance(base, Mapping):
        layer = flatten(base, lambda keys: f"{path} base")
    else:
        raise ConfigError(f"{path}: base must be a config mapping or a config file path")
    space = data.get("space")
    if not isinstance(space, Mapping) or not space:
        raise ConfigError(f"{path}: space must map config keys to ranges, e.g. optim.lr: {{log: [1e-4, 1e-1]}}")
    dimensions = [parse_dimension(str(k), v, f"{path} space") for k, v in space.items()]
    trials = data.get("trials", 20)
    if not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"{path}: trials must be a positive integer")
    pruner = str(data.get("pruner", "median"))
    if pruner not in ("median", "hyperband", "none"):
        raise ConfigError(f"{path}: pruner must be median, hyperband or none, not '{pruner}'")
    spec = SearchSpec(str(data.get("name") or path.stem), layer, dimensions, trials, pruner, data.get("storage"),
                      int(data.get("seed", 0)), list(overrides or []), f"{path} space")
    sample_config(spec, _Midpoint())  # every key and value checked before the first trial...
    for dim in spec.dimensions:  # ...and every categorical choice
        for choice in dim.choices:
            sample_config(spec, _Midpoint({dim.key: choice}))
    return spec


def parse_dimension(key: str, value: Any, origin: str) -> Dimension:
    key = canonical_key(key, origin)
    if value == "auto":
        if key != "optim.lr":
            raise ConfigError(f"{origin}: 'auto' is only defined for optim.lr (from the optimizer's default lr)")
        return Dimension(key, "auto_lr")
    if not isinstance(value, Mapping) or len(value) != 1:
        raise ConfigError(f"{origin}: '{key}' needs one of {{log: [low, high]}}, {{uniform: [low, high]}}, "
                          "{int: [low, high]}, {categorical: [a, b, ...]} or auto (optim.lr)")
    (kind, bounds), = value.items()
    if kind == "categorical":
        if not isinstance(bounds, list) or not bounds:
            raise ConfigError(f"{origin}: '{key}' categorical needs a non-empty list")
        return Dimension(key, kind, choices=tuple(bounds))
    if kind not in ("log", "uniform", "int") or not isinstance(bounds, list) or len(bounds) != 2:
        raise ConfigError(f"{origin}: '{key}' {kind}: expected log, uniform or int with [low, high]")
    low, high = (float(b) for b in bounds)
    if not low < high or (kind == "log" and low <= 0):
        raise ConfigError(f"{origin}: '{key}' needs low < high{' and low > 0 for log' if kind == 'log' else ''}")
    return Dimension(key, kind, low, high)


class _Midpoint:
    """A stand-in trial that picks the middle of each range (or a fixed value), to validate a space
    without running Optuna."""

    def __init__(self, fixed: dict[str, Any] | None = None) -> None:
        self.fixed = fixed or {}

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> float:
        return math.sqrt(low * high) if log else (low + high) / 2

    def suggest_int(self, name: str, low: int, high: int, log: bool = False) -> int:
        return (low + high) // 2

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self.fixed.get(name, choices[0])


def sample_config(spec: SearchSpec, trial: Any) -> Any:
    """A trial's config: the base with each dimension sampled (optim.name before an `auto` lr)."""
    from ..optim import OPTIMIZERS

    values: dict[str, Any] = {}
    for dim in sorted(spec.dimensions, key=lambda d: d.kind == "auto_lr"):
        if dim.kind == "categorical":
            values[dim.key] = trial.suggest_categorical(dim.key, list(dim.choices))
        elif dim.kind == "int":
            values[dim.key] = trial.suggest_int(dim.key, int(dim.low), int(dim.high))
        elif dim.kind == "auto_lr":
            name = values.get("optim.name") or spec.base.get("optim.name", ("momentum", ""))[0]
            default = OPTIMIZERS.get(name).default_lr
            # one parameter per optimizer: their learning rates live on different scales
            values[dim.key] = trial.suggest_float(f"optim.lr[{name}]", default * LR_AUTO_RANGE[0],
                                                  default * LR_AUTO_RANGE[1], log=True)
        else:
            values[dim.key] = trial.suggest_float(dim.key, dim.low, dim.high, log=dim.kind == "log")
    layer = {k: (v, spec.source) for k, v in values.items()}
    seed = {"seed": (spec.seed, "search seed")}  # the runs' seed unless the base, an override or the space sets one
    config = resolve(seed, spec.base, parse_overrides(spec.overrides, "tune override"), layer)
    if isinstance(trial, _Midpoint):
        from ..models import check_options

        check_options(config.model.name, config.model.options)
    return config


class PruneOnValidation(Callback):
    """Reports the validation accuracy after every epoch to Optuna; stops the run when the pruner says so."""

    def __init__(self, trial: Any) -> None:
        self.trial, self.pruned, self.started = trial, False, False

    def on_fit_start(self, trainer: Any) -> None:
        self.started = True
        self.report(trainer.state.history)  # a resumed run's epochs before its checkpoint (earlier trial's)

    def report(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            if row.get("val_acc") is not None:
                self.trial.report(row["val_acc"], row["epoch"])

    def on_epoch_end(self, trainer: Any, row: dict[str, Any]) -> None:
        if row.get("val_acc") is None:
            return
        self.trial.report(row["val_acc"], row["epoch"])
        if self.trial.should_prune():
            self.pruned = True
            trainer.request_stop(f"{PRUNED} after epoch {row['epoch']}")


def storage_url(spec: SearchSpec, directory: Path) -> str:
    """The study's database. A plain postgresql:// URL is read with psycopg 3 (the `tune` extra installs it;
    SQLAlchemy's default PostgreSQL driver is the older psycopg2)."""
    if not spec.storage:
        return f"sqlite:///{(directory / 'optuna.db').resolve()}"
    scheme, _, rest = spec.storage.partition("://")
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return spec.storage


def run_search(spec: SearchSpec, directory: str | Path, quiet: bool = True,
               log: Callable[[str], None] = print) -> tuple[Any, int | None]:
    """Run trials until the study holds `spec.trials` finished ones (resumes a stored study, and first the
    points of trials a signal or a kill interrupted: tune_trials.py). Returns the Optuna study and the signal
    that stopped the search, or None (the trial in progress checkpointed, or finished if it was past its last
    epoch; no further trial started)."""
    optuna = _optuna()

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # no pruning before a third of the epochs: first-epoch accuracy mostly ranks learning rates, not outcomes
    warmup = max(1, sample_config(spec, _Midpoint()).train.epochs // 3)
    pruner = {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup),
              "hyperband": lambda: optuna.pruners.HyperbandPruner(), "none": lambda: optuna.pruners.NopPruner()}
    study = _open_study(optuna, spec, storage_url(spec, directory), pruner[spec.pruner]())
    # a trial counts when it completed or was pruned; a failed one (a crash, or an interrupted trial, whose
    # point is run again first) does not, so running the search again makes up for it
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = sum(t.state in finished for t in study.trials)
    remaining = max(spec.trials - done, 0)
    search_trials.recover_trials(optuna, study, directory, log, limit=remaining)
    # TPE's first trials are random draws from its seeded generator: seeded alike in every session, a search
    # run again drew the first session's points again (and two workers on one database drew the same ones)
    study.sampler = optuna.samplers.TPESampler(
        seed=session_seed(spec.seed, len(study.trials), os.getpid() if spec.storage else 0))
    held: list[Any] = []  # the run of the trial in progress, its lock kept until Optuna has stored the trial's end
    objective = _objective(optuna, spec, directory, quiet, log, held)

    def after_trial(study: Any, trial: Any) -> None:
        _release(held)
        if STOP.signal is not None:  # asked after a trial's last epoch: keep its result, start no other
            study.stop()

    stopped_by = None
    if remaining:
        log(f"search {spec.name}: {done} trials finished, running up to {remaining} more ({shown_storage(spec)})")
        # workers sharing one database stop when the study, not each worker, holds `trials` finished trials
        # (each checks after its own trial, so N workers may overshoot by at most N - 1)
        enough = optuna.study.MaxTrialsCallback(spec.trials, states=finished)
        with STOP.watching(), _untold_interrupts():
            try:
                study.optimize(objective, n_trials=remaining, catch=(RuntimeError,), callbacks=[enough, after_trial])
            except KeyboardInterrupt:  # an interrupted trial (stored FAIL, marked interrupted)
                stopped_by = STOP.signal or signal.SIGINT
            finally:
                _release(held)
            stopped_by = stopped_by or STOP.signal
        if stopped_by:
            log("search interrupted; run the same command again to continue it")
    return study, stopped_by


def _objective(optuna: Any, spec: SearchSpec, directory: Path, quiet: bool, log: Callable[[str], None],
               held: list[Any]) -> Callable[[Any], float]:
    from ..runs import RunDir, Status, start_run

    def objective(trial: Any) -> float:
        name = search_trials.run_name(trial)
        run = RunDir(directory / name)
        # the run's lock before the trial names its run: a trial whose run is unlocked is a dead one
        if not run.claim(search_trials.CLAIM_SECONDS):
            raise RunBusy(f"trial {trial.number}: its run '{run.path}' is in use by another process")
        held.append(run)
        trial.set_user_attr(search_trials.RUN, name)
        trial.set_user_attr("run_dir", str(run.path))
        if STOP.signal is not None:  # asked between two trials, as Optuna began this one
            trial.set_user_attr(search_trials.INTERRUPTED, signal.Signals(STOP.signal).name)
            raise KeyboardInterrupt
        config = sample_config(spec, trial)
        pruning = PruneOnValidation(trial)
        if trial.user_attrs.get(search_trials.RESUMES) is not None:
            result = search_trials.continue_point(config, run, directory, quiet, [pruning])
        else:  # a trial number is handed out once by the storage, so the run is this process's alone
            result = start_run(config, run, runs_dir=directory, overwrite=True, quiet=quiet, callbacks=[pruning])
        best = max((r["val_acc"] for r in result.history if r.get("val_acc") is not None), default=None)
        if result.status == Status.DIVERGED:
            trial.set_user_attr("status", str(Status.DIVERGED))
            raise optuna.TrialPruned("diverged: training loss became NaN/Inf")
        if result.status == Status.INTERRUPTED:
            stopped_by = result.interrupt_signal or STOP.signal or signal.SIGINT
            trial.set_user_attr(search_trials.INTERRUPTED, signal.Signals(stopped_by).name)
            raise KeyboardInterrupt
        if not pruning.started:  # a finished run read back: its epochs, as if trained now
            pruning.report(result.history)
        if pruning.pruned or (result.reason or "").startswith(PRUNED):
            raise optuna.TrialPruned(result.reason)
        log(f"{name}: best val top-1 {100 * (best or 0):.2f}%  {trial.params}")
        return float(best if best is not None else 0.0)

    return objective


def _release(held: list[Any]) -> None:
    while held:
        held.pop().release()


@contextlib.contextmanager
def _untold_interrupts() -> Iterator[None]:
    """Optuna logs a trial ended by KeyboardInterrupt (how an interrupted trial is stored as FAIL) as two
    warnings, one with the whole traceback; the search says "interrupted" itself, once, without one."""

    def keep(record: logging.LogRecord) -> bool:
        return STOP.signal is None and not (record.exc_info and record.exc_info[0] is KeyboardInterrupt)

    handlers = logging.getLogger("optuna").handlers
    for handler in handlers:
        handler.addFilter(keep)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(keep)


def session_seed(seed: int, stored: int, worker: int = 0) -> int:
    """The sampler's seed for one session of a search: the search's seed moved on by the trials already
    stored (a session run again continues the draws, reproducibly) and, where several workers may share
    the database (an explicit --storage), by the worker (its process id), so that they draw apart."""
    return (seed + 7919 * stored + worker) % 2**32


def _open_study(optuna: Any, spec: SearchSpec, url: str, pruner: Any, attempts: int = 6) -> Any:
    """Create or join the stored study. Workers starting together on an empty database race to create
    Optuna's tables (PostgreSQL: "duplicate key ... pg_type_typname_nsp_index" for its enum types); the loser
    tries again once the winner's tables exist. A database that cannot be reached is a ConfigError."""
    import random
    import time

    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    for attempt in range(attempts):
        try:
            # (its sampler is seeded by run_search, once the stored trials are known: session_seed)
            return optuna.create_study(study_name=spec.name, storage=url, direction="maximize", pruner=pruner,
                                       load_if_exists=True)
        except (IntegrityError, ProgrammingError) as exc:  # the schema race: someone else is creating it
            if attempt == attempts - 1:
                raise ConfigError(f"cannot open the Optuna storage {shown_storage(spec)}: {exc.orig}") from None
            time.sleep(0.2 + random.random())
        except OperationalError as exc:
            raise ConfigError(f"cannot open the Optuna storage {shown_storage(spec)}: "
                              f"{str(exc.orig).strip().splitlines()[0]}; is the database server running and the URL "
                              "right (postgresql://USER:PASSWORD@HOST:PORT/DATABASE)?") from None
    raise AssertionError("unreachable")


def shown_storage(spec: SearchSpec) -> str:
    """The storage for a log line, without a password."""
    url = spec.storage or "sqlite (optuna.db in the search directory)"
    scheme, sep, rest = url.partition("://")
    if "@" in rest and ":" in rest.split("@", 1)[0]:
        rest = f"{rest.split(':', 1)[0]}:***@{rest.split('@', 1)[1]}"
    return f"{scheme}{sep}{rest}"


def summarize(study: Any) -> dict[str, Any]:
    """Counts per state, the best trial, every finished trial's value, and Optuna's parameter importance
    (what viz/search.py draws)."""
    optuna = _optuna()
    states = search_trials.count_states(optuna, study.trials)  # each point once, however often it was interrupted
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    summary: dict[str, Any] = {"name": study.study_name, "states": states, "best": None, "plots": [],
                               "complete": [(t.number, t.value) for t in complete],
                               "pruned": [t.number for t in study.trials if t.state == optuna.trial.TrialState.PRUNED],
                               "importance": {}}
    if not complete:
        return summary
    best = study.best_trial
    summary["best"] = {"number": best.number, "value": best.value, "params": best.params,
                       "run_dir": best.user_attrs.get("run_dir")}
    if len(complete) >= 3 and len({k for t in complete for k in t.params}) >= 1:
        try:
            with warnings.catch_warnings():  # "fewer than 2 trials in a regime": expected in small searches
                warnings.simplefilter("ignore", UserWarning)
                summary["importance"] = dict(optuna.importance.get_param_importances(study))
        except (RuntimeError, ValueError):  # e.g. every trial has the same value
            pass
    return summary
