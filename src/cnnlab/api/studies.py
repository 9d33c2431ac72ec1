"""Runs of runs: studies, tuning, optimizer comparisons, and the report of any of them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CnnlabError, ConfigError, RunBusy
from ..experiments.greedy import GreedyResult
from ..experiments.runner import StudyOutcome
from ..experiments.study import Study, load_study
from ..io import check_output_file
from ..log import get as get_logger
from ..runs import RunDir, Status
from ..train import STOP
from .training import draw_curves, evaluate, make_config

STUDY_LOG = get_logger("experiments")  # how a study, grid or search goes (printed by the command line)


def report(directory: str | Path) -> Path:
    """report.html of a study or run directory. Pictures and evaluations that are missing (a run trained
    in-process has no curves.png yet; a finished run may never have been evaluated) are made first."""
    from ..experiments.study import read_plan
    from ..viz.report import write_report

    directory = Path(directory)
    if (directory / "plan.json").is_file():
        runs = [directory / meta["name"] for meta in read_plan(directory)["runs"]]
    elif (directory / "config.yaml").is_file():
        runs = [directory]
    else:
        raise ConfigError(f"'{directory}' is neither a study directory nor a run directory")
    for run_dir in runs:
        try:
            draw_curves(run_dir)
            status = RunDir(run_dir).status() if (run_dir / "run.json").is_file() else None
        except CnnlabError:
            if len(runs) == 1:
                raise  # the report of this one run: its run.json (or metrics.csv) is the problem, said so (exit 2)
            continue  # one of a study's runs: the report's table shows it as unreadable, with the reason
        if status is not None and status.scored and not (run_dir / "eval_test.json").is_file():
            try:
                evaluate(run_dir, "test")
            except CnnlabError:
                pass  # the data is not here any more: the report says there is no test evaluation
    return write_report(directory)


def compare_optimizers(specs: Sequence[str] | None = None, overrides: Sequence[str] = (),
                       directory: str | Path = "runs/compare-optimizers", config: str | None = None,
                       quiet: bool = False) -> Any:
    """One run per optimizer (`'adam'` or `'adam:0.003'`), then table.csv and loss_per_iteration.png."""
    from ..experiments.compare import DEFAULT_OPTIMIZERS
    from ..experiments.compare import compare_optimizers as compare
    from ..viz.compare import plot_loss_curves

    result = compare(DEFAULT_OPTIMIZERS if specs is None else specs, overrides, directory, config, quiet)
    plot_loss_curves([result.directory / label for label in result.labels], result.labels, result.plot)
    return result


# -------------------------------------------------------------------------------------------- studies
def plan_study(path: str | Path, overrides: Sequence[str] = (), shard: str | None = None,
               seeds: Sequence[int] | None = None) -> Study:
    """Read and plan a study file (every run's config resolved and its model built on the meta device):
    `path` a file, or the name of a study that comes with cnnlab (`packaged_studies()`);
    `shard` 'i/n': this process runs only runs i, i+n, ... (whole variations for `protocol: tune`) of one
    job array; the study directory's plan, table and plots still cover the whole study."""
    from ..experiments.packaged import study_file
    from ..experiments.runner import shard as take_shard

    study = load_study(study_file(path), overrides, seeds)
    if shard:
        index, count = _shard(shard)
        study = dataclasses.replace(study, only=take_shard(study, index, count))
    return study


def predict_study(study: Study, jobs: int = 1, directory: str | Path | None = None, rerun_failed: bool = False,
                  **run_options: Any) -> Any:
    """The study's predicted cost, run by run (experiments/cost.py: each distinct computation measured for a
    few steps on this machine, at the threads each of `jobs` processes gets); nothing is written. What
    `run_study` with the same arguments would refuse is refused here too, before anything is measured: its
    options (`run_options`: until_decided, max_seeds, alpha, min_effect, boundary), the data each run needs,
    and a `directory` that is not this study's or holds runs of another plan; the runs already finished in
    `directory` (a plain study's) are left out of the total, as `run_study` skips them."""
    from ..experiments.cost import greedy_runs, predict
    from ..experiments.runner import check_data, finished_runs, refuse_changed_runs, refuse_foreign_dir

    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    _check_run_options(study, **run_options)
    greedy = study.mode == "greedy"
    runs = greedy_runs(study) if greedy else study.selected
    where = study.where
    # (each dataset is read here first, as `run_study` does, so cost.py measures the warm read every run then makes;
    # the first, cold read and its imports are start-up, which a dry run does not count)
    check_data(runs, (lambda keys: where(("stages",))) if greedy and where else where)
    finished: list[str] = []
    if directory is not None:
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise ConfigError(f"study directory '{directory}' is a file; choose another --dir")
        refuse_foreign_dir(directory, being_made=True)
        if not greedy and study.protocol != "tune":  # (their runs are named and planned as they go)
            refuse_changed_runs(runs, directory)
            finished = finished_runs(runs, directory, rerun_failed)
    return predict(runs, jobs, finished)


def _check_run_options(study: Study, until_decided: bool = False, max_seeds: int = 5, alpha: float = 0.05,
                       min_effect: float = 0.5, boundary: str = "obrien-fleming") -> Any:
    """`run_study`'s options checked against the study (what `predict_study` refuses alike): its VerdictOptions."""
    options = verdict_options(alpha, min_effect)
    if until_decided and (study.mode == "greedy" or study.protocol == "tune"):
        raise ConfigError("--until-decided adds seeds to the rows of a one-change study; a greedy study or one with "
                          "protocol: tune decides on validation: give it seeds: [...] instead")
    if until_decided and not 2 <= max_seeds <= 100:
        raise ConfigError(f"--max-seeds must be between 2 and 100 (a verdict over seeds needs two), got {max_seeds}")
    if boundary not in ("obrien-fleming", "pocock"):
        raise ConfigError(f"--boundary must be obrien-fleming or pocock, not '{boundary}'")
    return options


def _shard(text: str) -> tuple[int, int]:
    index, sep, count = text.partition("/")
    if not sep or not index.isdigit() or not count.isdigit():
        raise ConfigError(f"--shard must look like i/n (this job's number of the array's n), got '{text}'")
    return int(index), int(count)


def run_study(study: Study, directory: str | Path, jobs: int = 1, rerun_failed: bool = False,
              quiet: bool = False, log: Callable[[str], None] = STUDY_LOG.info, until_decided: bool = False,
              max_seeds: int = 5, alpha: float = 0.05, min_effect: float = 0.5,
              boundary: str = "obrien-fleming") -> Any:
    """Run every run of `study` not yet finished (with other processes on the same folder, each run once),
    then draw the curves of the runs that have none. A greedy study runs stage by stage; a study with
    `protocol: tune` then retrains each variation's best point on train + validation. `until_decided`:
    then add seeds to the rows whose verdict is 'within noise' (and their references), a round at a time,
    until each is decided or has `max_seeds` seeds (experiments/decided.py), under a group-sequential design with
    `boundary` 'obrien-fleming' or 'pocock' (evaluate/sequential.py) that keeps `alpha` over all the looks."""
    from ..experiments.decided import run_until_decided
    from ..experiments.greedy import run_greedy
    from ..experiments.runner import run_study as execute
    from ..experiments.tune_grid import run_tuned

    options = _check_run_options(study, until_decided, max_seeds, alpha, min_effect, boundary)

    # one stop request from the first run to the last picture: a signal while the curves are drawn lets them
    # be drawn whole (the study's runs are all finished by then), as for `cnnlab train`
    outcome: GreedyResult | StudyOutcome
    with STOP.watching():
        if study.mode == "greedy":
            outcome = run_greedy(study, directory, jobs, rerun_failed, quiet, log)
        elif study.protocol == "tune":
            results = run_tuned(study, directory, jobs, quiet, log)
            outcome = StudyOutcome(Path(directory), {}, [], any(r.interrupted for r in results.values()))
        elif until_decided:
            outcome = run_until_decided(study, directory, jobs, rerun_failed, quiet, log, max_seeds, options,
                                        boundary)
        else:
            outcome = execute(study, directory, jobs, rerun_failed, quiet, log)
        runs = Path(directory).iterdir() if Path(directory).is_dir() else ()  # (none: stopped before the first)
        for run_dir in runs:
            if run_dir.is_dir() and not run_dir.name.startswith("."):
                draw_curves(run_dir)
    return outcome


def study_worker(directory: str | Path, name: str, config: str | Path, rerun_failed: bool = False) -> int:
    """One run of a study in a process of its own (`study run --jobs N`): its exit code (75: busy)."""
    from ..config import load_config
    from ..experiments.runner import BUSY, run_one
    from ..experiments.study import RunSpec

    run_config = load_config(config)
    # the parent's forwarded signal, during set-up or the curves too (as api.train); a signal sent to this
    # process directly as well (scancel signals the whole job) is the same request, not a second one
    with STOP.watching(escalate=False):
        action, status = run_one(RunSpec(name, name, run_config.seed, {}, run_config), Path(directory),
                                 rerun_failed, quiet=True)
        if action == BUSY:
            return RunBusy.exit_code
        draw_curves(Path(directory) / name)
    return {Status.INTERRUPTED: 130, Status.DIVERGED: 3}.get(Status(status), 0)


@dataclass
class StudyTable:
    headers: list[str]
    rows: list[list[str]]
    csv: Path
    markdown: Path
    notes: list[str] = dataclasses.field(default_factory=list)  # how the verdicts were reached; unreadable runs

    forest: Path | None = None  # forest.png: the verdicts as a picture (a one-change study's table)

    def _repr_html_(self) -> str:  # a notebook shows the study table, verdicts and notes under it, then the forest
        from ..html import image, table

        picture = image(self.forest, "the verdicts: Δ per row with its interval") \
            if self.forest is not None and self.forest.is_file() else ""
        return table(self.headers, self.rows, str(self.csv.parent), self.notes) + picture


def study_table(directory: str | Path, alpha: float = 0.05, min_effect: float = 0.5,
                seeds: Sequence[int] | None = None) -> StudyTable:
    """The study's table, as its kind has it: one row per variation (mean ± std over seeds, Δ baseline,
    the reference's numbers beside ours); per stage and alternative (greedy); or per variation's tuned
    point and final test accuracy (protocol tune). Written to table.csv and table.md. Each row's verdict
    (experiments/verdicts.py) uses `alpha` and `min_effect` (in points of accuracy: 0.5 = half a point).
    `seeds`: the table of those seeds' runs only (how the study reads with fewer seeds), written to
    table-seeds-S_S.csv/.md beside the whole table."""
    from ..experiments.greedy import greedy_notes, greedy_table
    from ..experiments.reference import notes as reference_notes
    from ..experiments.study import read_plan
    from ..experiments.table import build_table, formatted, markdown, write_tables
    from ..experiments.tune_grid import tuned_table
    from ..io import atomic_write_text

    directory = Path(directory)
    plan = read_plan(directory)
    metric = plan.get("metric", "test_acc")
    if seeds is not None and (plan.get("mode") == "greedy" or plan.get("protocol") == "tune"):
        raise ConfigError("--seeds reads a one-change study's table at some of its seeds; a greedy or tuned study's "
                          "table is one search: tabulate it whole")
    if plan.get("mode") == "greedy" or plan.get("protocol") == "tune":
        record = directory / ("greedy.json" if plan.get("mode") == "greedy" else "tune.json")
        try:  # the search's own record: damaged, it is named (not a traceback from deep inside the table)
            headers, rows = greedy_table(directory, plan.get("reference")) if plan.get("mode") == "greedy" else \
                tuned_table(directory, plan.get("reference"))
        except FileNotFoundError:
            raise ConfigError(f"'{record}' is missing: the search has not finished a stage yet; run the study "
                              "(`cnnlab study run`) to write it") from None
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:  # JSONDecodeError: ValueError
            raise ConfigError(f"{record} is damaged ({type(exc).__name__}: {str(exc)[:120]}); restore it, or delete "
                              "it and run the study again (`cnnlab study run`): finished runs are reused") from None
        options = plan.get("greedy") or {}
        notes = greedy_notes(options.get("require", "best"), options.get("keep", "auto"), options.get("seeds", 1)) \
            if plan.get("mode") == "greedy" \
            else []
        notes += reference_notes(plan.get("reference"))
        csv_path, md_path = directory / "table.csv", directory / "table.md"
        atomic_write_text(csv_path, "\n".join(",".join(cells) for cells in [headers, *rows]) + "\n")
        atomic_write_text(md_path, markdown(headers, rows) + "".join(f"\n- {note}\n" for note in notes))
        return StudyTable(headers, rows, csv_path, md_path, notes)
    from ..viz.study import plot_forest

    options = verdict_options(alpha, min_effect)
    table, notes = build_table(directory, options, seeds)
    headers, rows = formatted(table, metric, plan.get("reference"))
    stem = "table" if seeds is None else "table-seeds-" + "_".join(map(str, seeds))
    csv_path, md_path = write_tables(table, directory, metric, notes, plan.get("reference"), stem)
    forest = plot_forest(table, directory / f"{stem.replace('table', 'forest')}.png", metric, options.min_effect,
                         plan.get("name", ""))
    return StudyTable(headers, rows, csv_path, md_path, notes, forest)


def verdict_options(alpha: float, min_effect: float) -> Any:
    """The verdicts' settings, checked: `min_effect` in points of accuracy (0.5 = half a point)."""
    from ..experiments.verdicts import VerdictOptions

    if not 0 < alpha < 1:
        raise ConfigError(f"--alpha must lie between 0 and 1 (e.g. 0.05), got {alpha}")
    if not 0 <= min_effect < 100:
        raise ConfigError(f"--min-effect is in points of accuracy, between 0 and 100 (e.g. 0.5), got {min_effect}")
    return VerdictOptions(alpha=alpha, min_effect=min_effect / 100)


def crossing_references(directory: str | Path) -> dict[str, str]:
    """The study file's published crossing ratios (`reference: crossing_ratio:`), per row, as `study plot
    --crossing` prints them beside the measured ones: '6x at 25% training error (SOURCE)'."""
    from ..experiments.reference import columns
    from ..experiments.study import read_plan

    return {name: f"{column.text(value)}" + (f" at {column.label}" if column.label else "")
            + (f" ({column.source})" if column.source else "")
            for column in columns(read_plan(Path(directory)).get("reference")) if column.key == "crossing_ratio"
            for name, value in column.values.items()}


def study_plot(directory: str | Path, alpha: float = 0.05, min_effect: float = 0.5) -> tuple[Path, Path, Path]:
    """curves.png (every variation's curves), bars.png (the final metric, with error bars) and forest.png (each
    row's Δ with its interval against its reference, coloured by verdict, the ±`min_effect` band shaded)."""
    from ..viz.study import plot_study

    return plot_study(directory, verdict_options(alpha, min_effect))


def error_crossing(directory: str | Path, level: float = 0.25) -> tuple[Path, dict[str, float | None]]:
    """error_crossing.png (training error per epoch with the `level` line, AlexNet figure 1) and the epoch at
    which each variation first reaches it (interpolated; None: never)."""
    from ..experiments.table import crossings
    from ..viz.study import plot_crossing

    if not 0 < level < 1:
        raise ConfigError(f"--crossing must be an error rate between 0 and 1 (e.g. 0.25), got {level}")
    return plot_crossing(directory, level), crossings(directory, level)


def study(file: str | Path, overrides: Sequence[str] = (), *, directory: str | Path | None = None, jobs: int = 1,
          seeds: Sequence[int] | None = None, rerun_failed: bool = False, quiet: bool = False,
          until_decided: bool = False, max_seeds: int = 5, alpha: float = 0.05, min_effect: float = 0.5) -> StudyTable:
    """A whole study in one call, as `cnnlab study run`: `file` a study file or the name of one that comes
    with cnnlab ('eq2425_report'), `overrides` (key=value) for every run, into `directory` (default
    runs/<study name>); finished runs are kept, so calling it again continues a stopped study. Returns its
    table with the verdicts (a notebook shows it)."""
    planned = plan_study(file, overrides, seeds=seeds)
    directory = Path(directory or Path("runs") / planned.name)
    run_study(planned, directory, jobs, rerun_failed, quiet, until_decided=until_decided, max_seeds=max_seeds,
              alpha=alpha, min_effect=min_effect)
    return study_table(directory, alpha, min_effect)


def packaged_studies() -> list[Any]:
    """The studies that come with cnnlab (`cnnlab study list`): name, seed document, what it asks, runs,
    budget; each runs by name from any folder."""
    from ..experiments.packaged import entries

    return entries()


def study_text(name: str | Path) -> str:
    """A study file's text, comments included (`cnnlab study show NAME > mine.yaml`, to copy and edit)."""
    from ..experiments.packaged import study_file

    return study_file(name).read_text(encoding="utf-8")


# ----------------------------------------------------------------------------------- transfer, ensembles
def ensemble(run_dirs: Sequence[str | Path], split: str = "test", combine: str = "softmax", tta: str = "none",
             device: str | None = None, out: str | Path | None = None) -> Any:
    """Several trained runs combined on one split; each member's and the ensemble's top-1/top-5."""
    from ..experiments.ensemble import run_ensemble, write_result

    if out is not None:
        check_output_file(Path(out), "--out", (".json",))
    result = run_ensemble(run_dirs, split, combine, tta, device)
    if out is not None:
        write_result(result, Path(out))
    return result


def features(config: str | None, overrides: Sequence[str], weights: str | Path, out: str | Path,
             probe: bool = True) -> tuple[dict[str, Path], Any]:
    """A trained network as a fixed feature extractor: features_<split>.npz, then (with `probe`) logistic
    regression on them."""
    from ..experiments.features import export_features, linear_probe

    paths = export_features(make_config(config, overrides), weights, out)
    return paths, (linear_probe(out) if probe else None)
