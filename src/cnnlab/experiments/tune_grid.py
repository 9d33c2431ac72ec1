"""`cnnlab tune grid`: the tuning protocol of Bagnoli 2019's Caltech-101 study.

1. For each grid point (the study used (lr, step_size) pairs; any keys work) train with a validation
   evaluation every epoch. A point whose training loss becomes NaN/Inf is discarded: recorded with its
   status, never a crash of the search.
2. Keep each point's best validation accuracy and the epoch it was reached at; the best point wins
   (ties: the earlier best epoch, then grid order).
3. Retrain the winner on train + validation (no split held out) for exactly that many epochs and report
   its test accuracy.

The grid runs are an ordinary study (resumable, idempotent, `--jobs`), and the retraining run is
`final/` inside the same directory, skipped when it already finished with the same config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..config import RunConfig, StopConfig
from ..errors import ConfigError
from ..io import atomic_write_json
from ..runs import RunDir, Status
from .runner import run_one, run_study
from .study import RunSpec, Study, plan_study
from .table import study_rows

FINAL = "final"


@dataclass
class GridResult:
    directory: Path
    rows: list[dict[str, Any]]  # one per grid point, with 'discarded'
    best: dict[str, Any] | None
    final: dict[str, Any] | None  # the retraining run's test metrics, epochs and directory
    interrupted: bool = False


def parse_grid_options(items: Sequence[str]) -> dict[str, list[Any]]:
    """['lr=0.1,0.01', 'schedule.step_size=10,20'] -> {'lr': [0.1, 0.01], 'schedule.step_size': [10, 20]}."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or not text.strip():
            raise ConfigError(f"--grid '{item}' must look like key=value1,value2 (for example lr=0.1,0.01)")
        grid[key.strip()] = [_scalar(v) for v in text.split(",")]
    return grid


def _scalar(text: str) -> Any:
    value = yaml.safe_load(text)
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
        try:
            return float(value)
        except ValueError:
            return value
    return value


def plan_grid(config_file: str | None, overrides: Sequence[str], grid: dict[str, list[Any]], name: str) -> Study:
    if not grid:
        raise ConfigError("tune grid needs at least one --grid key=value1,value2")
    data = {"name": name, "base": config_file, "grid": grid, "metric": "best_val_acc"}
    base_path = Path(config_file).resolve() if config_file else None
    if base_path is not None:
        data["base"] = str(base_path)
    study = plan_study(data, None, overrides, lambda keys: "--grid" if keys == ("grid",) else "tune grid")
    for spec in study.runs:
        if spec.config.data.val_fraction == 0 and not spec.config.data.val_per_class:
            raise ConfigError("tune grid selects on validation accuracy: data.val_fraction must be > 0")
    return study


def select_best(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The grid point with the highest best validation accuracy (a pure decision; diverged and failed
    points are not candidates)."""
    candidates = [r for r in rows if not r["discarded"] and r["best_val_acc"] is not None]
    if not candidates:
        return None
    return min(candidates, key=lambda r: (-r["best_val_acc"], r["best_epoch"] or 0, rows.index(r)))


def final_config(config: RunConfig, epochs: int) -> RunConfig:
    """The winner's config, retrained on train + validation for `epochs` epochs (nothing to stop on)."""
    data = dataclasses.replace(config.data, val_fraction=0.0, val_per_class=None)
    train = dataclasses.replace(config.train, epochs=epochs, restore_best=False)
    return dataclasses.replace(config, data=data, train=train, stop=StopConfig())


def grid_rows(directory: Path) -> list[dict[str, Any]]:
    rows = study_rows(directory)
    for row in rows:
        row["discarded"] = row["status"] in (Status.DIVERGED, Status.FAILED)
        row["why"] = {Status.DIVERGED: "loss became NaN/Inf", Status.FAILED: "the run crashed"}.get(row["status"], "")
    return rows


def run_grid(study: Study, directory: str | Path, jobs: int = 1, quiet: bool = True,
             log: Callable[[str], None] = print) -> GridResult:
    directory = Path(directory)
    outcome = run_study(study, directory, jobs=jobs, quiet=quiet, log=log)
    if outcome.interrupted:
        return GridResult(directory, grid_rows(directory), None, None, interrupted=True)
    rows = grid_rows(directory)
    best = select_best(rows)
    final = None
    if best is not None:
        spec = next(s for s in study.runs if s.name == best["run"])
        config = final_config(spec.config, int(best["best_epoch"]))
        run = RunDir(directory / FINAL)
        log(f"retraining {best['run']} on train + validation for {best['best_epoch']} epochs")
        _, status = run_one(RunSpec(FINAL, "final", config.seed, best["grid"], config), directory,
                            rerun_failed=True, quiet=quiet, replace_changed=True)
        if status == Status.INTERRUPTED:
            return GridResult(directory, rows, best, None, interrupted=True)
        record = run.record()
        sizes = (record.data or {}).get("sizes", {})
        final = {"run": str(run.path), "status": str(record.status), "epochs": record.epochs_completed,
                 "test": record.test, "grid": best["grid"], "train_size": sizes.get("train")}
    result = GridResult(directory, rows, best, final)
    atomic_write_json(directory / "tune.json", {"rows": rows, "best": best, "final": final})
    return result
