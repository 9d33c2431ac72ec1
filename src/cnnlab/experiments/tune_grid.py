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
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import RunConfig, StopConfig
from ..config.yaml_file import InvalidYaml, load_yaml
from ..errors import ConfigError
from ..io import FileLock, atomic_write_json
from ..runs import RunDir, Status
from ..train import STOP
from . import reference as published
from .runner import run_one, run_study
from .study import RunSpec, Study, plan_study, read_plan
from .table import delta_cell, judge_runs, study_rows

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
    try:
        value = load_yaml(text, f"'{text}'", numbered=False).data
    except InvalidYaml:
        return text
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_pairs(items: Sequence[str]) -> dict[str, list[Any]]:
    """['lr,schedule.step_size=0.1:20,0.01:30'] -> {'lr': [0.1, 0.01], 'schedule.step_size': [20, 30]}: points
    that go together (the study's (eta, step_size) pairs), not a cartesian grid."""
    pairs: dict[str, list[Any]] = {}
    for item in items:
        keys_text, sep, text = item.partition("=")
        keys = [k.strip() for k in keys_text.split(",") if k.strip()]
        points = [p.split(":") for p in text.split(",") if p.strip()]
        if not sep or len(keys) < 2 or not points or any(len(p) != len(keys) for p in points):
            raise ConfigError(f"--pairs '{item}' must look like KEY1,KEY2=V1:V2,V1:V2 with one value per key in "
                              "each point (for example lr,schedule.step_size=0.1:20,0.01:30)")
        for index, key in enumerate(keys):
            pairs[key] = [_scalar(point[index]) for point in points]
    return pairs


def plan_grid(config_file: str | None, overrides: Sequence[str], grid: dict[str, list[Any]], name: str,
              pairs: dict[str, list[Any]] | None = None) -> Study:
    if not grid and not pairs:
        raise ConfigError("tune grid needs at least one --grid key=value1,value2 or --pairs k1,k2=a:b,c:d")
    data = {"name": name, "base": config_file, "grid": grid, "zip": pairs or {}, "metric": "best_val_acc"}
    base_path = Path(config_file).resolve() if config_file else None
    if base_path is not None:
        data["base"] = str(base_path)
    where = {("grid",): "--grid", ("zip",): "--pairs"}
    study = plan_study(data, None, overrides, lambda keys: where.get(keys, "tune grid"))
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
    # the validation split is carved exactly as in the tuning runs, then trained on: train + validation is
    # the same images for every split kind (fractions, images per class, a tree's val/ folder)
    data = dataclasses.replace(config.data, val_into_train=True)
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
    """The protocol over one grid (one variation): the final run is `final/`."""
    results = run_tuned(study, directory, jobs, quiet, log)
    return next(iter(results.values()))


def run_tuned(study: Study, directory: str | Path, jobs: int = 1, quiet: bool = True,
              log: Callable[[str], None] = print) -> dict[str, GridResult]:
    """The protocol for every variation of a study: its grid (or zip) points trained with validation,
    the best one retrained on train + validation (`final/`, or `<variation>__final/` when there are
    several variations). tune.json records each variation's rows, choice and final run."""
    directory = Path(directory)
    outcome = run_study(study, directory, jobs=jobs, quiet=quiet, log=log)
    if not (directory / "plan.json").is_file():  # stopped while the runs were checked: nothing written, nothing to say
        return {v: GridResult(directory, [], None, None, interrupted=True) for v in study.variations}
    rows = grid_rows(directory)
    variations = list(dict.fromkeys(spec.variation for spec in study.selected))  # this shard's, or all
    results = {}
    for variation in variations:
        mine = [row for row in rows if row["variation"] == variation]
        if outcome.interrupted or STOP.signal is not None:  # (a signal after the last point's last epoch too)
            results[variation] = GridResult(directory, mine, None, None, interrupted=True)
            continue
        final_name = FINAL if len(study.variations) == 1 else f"{variation}__{FINAL}"
        results[variation] = _retrain_best(study, directory, mine, final_name, quiet, log)
        if results[variation].interrupted:
            break
    record = {v: {"rows": r.rows, "best": r.best, "final": r.final} for v, r in results.items()}
    if len(study.variations) == 1:
        atomic_write_json(directory / "tune.json", next(iter(record.values())))
        return results
    with FileLock(directory / ".lock", what=f"study '{directory}'").require(timeout=60):  # shards merge
        path = directory / "tune.json"
        known = json.loads(path.read_text()).get("variations", {}) if path.is_file() else {}
        atomic_write_json(path, {"variations": {v: {**known, **record}[v] for v in study.variations
                                                if v in {**known, **record}}})
    return results


def _retrain_best(study: Study, directory: Path, rows: list[dict[str, Any]], name: str, quiet: bool,
                  log: Callable[[str], None]) -> GridResult:
    best = select_best(rows)
    if best is None:
        return GridResult(directory, rows, None, None)
    spec = next(s for s in study.runs if s.name == best["run"])
    config = final_config(spec.config, int(best["best_epoch"]))
    log(f"retraining {best['run']} on train + validation for {best['best_epoch']} epochs")
    _, status = run_one(RunSpec(name, spec.variation, config.seed, best["grid"], config), directory,
                        rerun_failed=True, quiet=quiet, replace_changed=True)
    if status == Status.INTERRUPTED:
        return GridResult(directory, rows, best, None, interrupted=True)
    run = RunDir(directory / name)
    record = run.record()
    assert record is not None, "the retraining run has written its run.json"
    sizes = (record.data or {}).get("sizes", {})
    final = {"run": str(run.path), "status": str(record.status), "epochs": record.epochs_completed,
             "test": record.test, "grid": best["grid"], "train_size": sizes.get("train")}
    return GridResult(directory, rows, best, final)


def tuned_table(directory: Path, reference: Any = None) -> tuple[list[str], list[list[str]]]:
    """One row per variation of a tuned study: the chosen point, its best validation accuracy, the epoch
    it was reached and the epoch training ended, and the retrained model's test accuracy; under it, one row per
    point the variation tuned (validation only: 'variation k=v ...', as the one-change table labels it; the
    chosen one marked). Then the reference's numbers (experiments/reference.py): a variation's row takes
    those given for the variation, a point's row those given for its label, as seed 004 publishes both."""
    record = json.loads((Path(directory) / "tune.json").read_text())
    per_variation = record.get("variations") or {"": record}
    columns = published.columns(reference)
    rows = []
    planned = list(dict.fromkeys(run["variation"] for run in read_plan(directory)["runs"]))
    if "variations" in record:  # every variation of the plan, those another shard tunes as "not run" yet
        per_variation = {v: per_variation.get(v, {"best": None, "final": None, "not_run": True}) for v in planned}
    # the final runs by name inside this study directory (tune.json's paths are relative to where it ran)
    finals = {v: Path(directory) / Path(e["final"]["run"]).name if e.get("final") else None
              for v, e in per_variation.items()}
    first = next(iter(finals), "")
    verdicts = judge_runs(finals, first) if len(finals) > 1 else {}
    headers = ["variation", "best point", "best val top-1", "best epoch", "epochs trained", "final epochs",
               "test top-1", f"Δ test top-1 vs {first} [95% CI]" if verdicts else "Δ test top-1 [95% CI]", "verdict",
               *(column.header for column in columns)]
    for variation, entry in per_variation.items():
        best, final = entry["best"], entry["final"]
        point = " ".join(f"{k.split('.')[-1]}={v}" for k, v in best["grid"].items()) if best else "-"
        test = (final or {}).get("test") or {}
        point = "not run" if entry.get("not_run") else point
        cells = [variation or "-", point, _percent(best["best_val_acc"] if best else None),
                 str(best["best_epoch"]) if best else "-", str(best["epochs"]) if best else "-",
                 str(final["epochs"]) if final else "-", _percent(test.get("acc"))]
        judged = verdicts.get(variation, {})
        cells += [delta_cell(judged, "test_acc") if judged else "-", judged.get("verdict") or "-"]
        rows.append(cells + [column.cell(variation) for column in columns])
        rows += _point_rows(entry.get("rows") or [], best, columns)
    return headers, rows


def _point_rows(points: list[dict[str, Any]], best: dict[str, Any] | None,
                columns: list[published.Column]) -> list[list[str]]:
    """A variation's tuned points, each with its validation numbers and the reference's for its label."""
    rows = []
    for point in points:
        name = published.row_label(point["variation"], point["grid"])
        mark = "chosen" if best is not None and point["run"] == best["run"] else \
            f"discarded: {point['why']}" if point.get("discarded") else ""
        epoch = point.get("best_epoch")
        rows.append([name, mark, _percent(point.get("best_val_acc")), "-" if epoch is None else str(epoch),
                     "-" if point.get("epochs") is None else str(point["epochs"]), "-", "-", "-", "-",
                     *(column.cell(name) for column in columns)])
    return rows


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"
