"""Running a planned study: one run after another in this process, or `jobs` runs at once as separate
worker processes (several small runs share a GPU or the CPU cores; each worker gets cores / jobs threads
through CNNLAB_NUM_THREADS).

Every run is done exactly once, however many `cnnlab study run` processes (on one machine or several
sharing the folder) work on the same study: a run is decided on and trained only by the process holding
its lock (runs.directory); a process that finds a run locked leaves it to its owner and comes back to it
once the owner is done (or gone: a crashed run resumes). `--shard i/n` splits the run list statically
instead, for job arrays.

Idempotent: finished runs (completed, stopped_early, diverged) are skipped; interrupted or crashed runs
resume from their last checkpoint; failed runs are re-run only with `rerun_failed`. Ctrl-C/SIGTERM stops
the study after the running runs checkpoint; running the study again continues it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import save_config
from ..errors import CnnlabError, ConfigError, RunBusy
from ..io import TEMP_SUFFIX, FileLock, make_dirs
from ..parent import PARENT_VARIABLE
from ..runs import Action, RunDir, Status, decide, resume_run, start_run
from ..train import STOP
from ..train.interrupts import unignored
from .study import RunSpec, Study, adopt_added_runs, adopt_design, write_plan

BUSY = "busy"  # the outcome of a run another process holds
NOT_STARTED = "not started"  # a worker signalled while Python started, before its run existed
STUDY_LOCK = ".lock"  # held while a process writes the study's plan.json
# what a study writes into its folder besides its runs (and plan.json)
STUDY_FILES = {"study.yaml", "table.csv", "table.md", "report.html", "plots", "greedy.json", "tune.json", ".configs",
               "mlruns", "forest.png", "bars.png", "curves.png", "error_crossing.png", "search_history.png",
               "param_importance.png"}
WAIT_SECONDS = 1.0  # between looks at runs other processes hold


@dataclass
class StudyOutcome:
    directory: Path
    statuses: dict[str, str]  # run name -> final status, for the runs this process trained
    skipped: list[str]
    interrupted: bool = False
    others: list[str] = field(default_factory=list)  # runs another process finished while this one waited

    @property
    def exit_code(self) -> int:
        return 130 if self.interrupted else 0


def shard(study: Study, index: int, count: int) -> frozenset[str]:
    """The runs of job `index` of `count` (1-based) in a static split for job arrays: runs index,
    index + count, ...; for `protocol: tune`, whole variations so (their points and the retrain of their
    best belong together). A greedy study decides each stage on the last, so it cannot be split statically."""
    if count < 1 or not 1 <= index <= count:
        raise ConfigError(f"--shard must be i/n with 1 <= i <= n, got {index}/{count}")
    if study.mode == "greedy":
        raise ConfigError("--shard splits a study statically, but a greedy study decides each stage on the one "
                          "before: run it without --shard (several `cnnlab study run` processes on one --dir "
                          "share each stage's runs)")
    if study.protocol == "tune":
        mine = {v for position, v in enumerate(study.variations) if position % count == index - 1}
        return frozenset(spec.name for spec in study.runs if spec.variation in mine)
    return frozenset(spec.name for position, spec in enumerate(study.runs) if position % count == index - 1)


def run_one(spec: RunSpec, directory: Path, rerun_failed: bool = False, quiet: bool = False,
            replace_changed: bool = False,
            announce: Callable[[Action], None] | None = None) -> tuple[Action | str, str]:
    """Claim one run, decide what it needs under its lock, and do it: ('busy', '') when another process
    holds it, else (the action, the run's status afterwards). With `replace_changed`, a run made from
    another config (a tuning grid's final run after the best point changed) is trained afresh."""
    run = RunDir(directory / spec.name)
    if not run.claim():
        return BUSY, ""
    try:
        record = run.record()
        if replace_changed and record is not None and not run.made_from(spec.config, record):
            action = Action.START
        else:
            action = decide(run.status(), run.last.is_file(), rerun_failed)
        if action == Action.SKIP:
            return action, str(run.status())
        if announce is not None:
            announce(action)
        if action == Action.RESUME:
            result = resume_run(spec.config, run, quiet=quiet)
        else:
            result = start_run(spec.config, run, runs_dir=directory, overwrite=True, quiet=quiet)
        return action, str(result.status)
    finally:
        run.release()


def run_study(study: Study, directory: str | Path, jobs: int = 1, rerun_failed: bool = False,
              quiet: bool = False, log: Callable[[str], None] = print) -> StudyOutcome:
    directory = Path(directory)
    check_data(study.selected, study.where)
    if STOP.signal is not None:  # asked while the runs were checked: stop before anything is written
        return _stopped(StudyOutcome(directory, {}, []), log)
    prepare_study_dir(study, directory)
    return run_specs(study.selected, directory, jobs, rerun_failed, quiet, log)


def run_specs(runs: Sequence[RunSpec], directory: Path, jobs: int = 1, rerun_failed: bool = False,
              quiet: bool = False, log: Callable[[str], None] = print) -> StudyOutcome:
    """Run these runs of a prepared study directory (in this process, or `jobs` worker processes)."""
    if jobs <= 1:
        return _sequential(runs, directory, rerun_failed, quiet, log)
    return _parallel(runs, directory, jobs, rerun_failed, log)


def check_data(runs: Sequence[RunSpec], where: Callable[[tuple[str, ...]], str] | None = None) -> None:
    """The mistakes that need the data, found for every run before the first run starts (not after hours
    of others): the dataset and its class selection, the batch size against the training split, the model
    against the image size, early stopping against the validation split. Each distinct data setting is read
    once; the error names the study file, the variation and the run."""
    from ..models import model_fits
    from ..train.build import splits_of, train_batch_size
    from ..train.early_stop import check as check_early_stop

    read: dict[str, Any] = {}
    fits: dict[str, bool] = {}
    for spec in runs:
        if STOP.signal is not None:  # asked while checking (10,000 runs take a while): the caller stops
            return
        config = spec.config
        key = repr((config.data, config.model.name, sorted(config.model.options.items())))
        try:
            if key not in read:
                read[key] = splits_of(config)
            splits = read[key]
            train_batch_size(config.train.batch_size, len(splits.train))
            check_early_stop(config.stop, splits.val is not None)
            size, channels = splits.spec.image_size, splits.spec.channels
            if key not in fits:  # (built once per data and model: 30 ms each, 5 minutes for 10,000 runs)
                fits[key] = model_fits(config.model.name, config.model.options, channels, size)
            if not fits[key]:
                raise ConfigError(f"model {config.model.name} does not accept {size}x{size} images; set "
                                  "data.image_size or pick another model")
        except CnnlabError as exc:
            place = f"{where(('variations', spec.variation))}: " if where else ""
            raise type(exc)(f"{place}variation '{spec.variation}' (run {spec.name}): {exc}") from None


def prepare_study_dir(study: Study, directory: Path) -> None:
    """Refuse a folder that is not this study's, then write plan.json, under the study's lock.

    The check runs twice: before anything is created (a foreign folder gets no lock file), and again under
    the lock, because a second `cnnlab study run` that starts at the same moment may find the first one's
    lock and half-written plan (`.plan.json.*.tmp`) in a folder that is not yet a study folder."""
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"study directory '{directory}' is a file; choose another --dir")
    refuse_foreign_dir(directory, being_made=True)
    make_dirs(directory)
    with FileLock(directory / STUDY_LOCK, what=f"study '{directory}'").require(timeout=60):
        for stale in directory.glob(f".plan.json.*{TEMP_SUFFIX}"):  # plan.json is written under this lock:
            stale.unlink(missing_ok=True)  # a temporary one seen now is a killed writer's
        refuse_foreign_dir(directory, being_made=False)
        adopt_added_runs(study, directory)
        adopt_design(study, directory)
        refuse_changed_runs(study.runs, directory)
        write_plan(study, directory)


def refuse_foreign_dir(directory: Path, being_made: bool) -> None:
    """A folder with other things in it and no plan.json is the user's, not a study's: refuse it. The
    study's own lock (and, outside the lock, another process's plan being written) are not 'other things'; nor,
    beside the study file's copy (study.yaml), are a study's own files and cnnlab run directories: a study whose
    damaged plan.json was deleted (experiments/plan.py's advice) is planned anew there."""
    if not directory.is_dir() or (directory / "plan.json").is_file():
        return
    replanned = (directory / "study.yaml").is_file()

    def ours(entry: Path) -> bool:
        name = entry.name
        if name == STUDY_LOCK or (being_made and name.startswith(".plan.json.") and name.endswith(TEMP_SUFFIX)):
            return True
        by_seeds = name.startswith(("table-seeds-", "forest-seeds-"))  # `study table --seeds`
        return replanned and (name in STUDY_FILES or by_seeds
                              or (entry.is_dir() and not entry.is_symlink() and RunDir(entry).is_cnnlab_run()))

    if any(not ours(entry) for entry in directory.iterdir()):
        raise ConfigError(f"'{directory}' is not empty and is not a cnnlab study directory (no plan.json); "
                          "cnnlab writes studies only into new or study folders: choose another --dir")


def refuse_changed_runs(runs: Sequence[RunSpec], directory: Path) -> None:
    """A run directory made from another config than the study now plans (the file or the overrides
    changed) is neither a result of this study nor resumable: stop before anything runs, and say which."""
    for spec in runs:
        run = RunDir(directory / spec.name)
        record = run.record() if run.exists() else None
        if record is not None and not run.made_from(spec.config, record):
            changes = "; ".join(run.config_changes(spec.config)[:4]) or "the config hash differs"
            raise ConfigError(f"run '{run.path}' was made with another config than the study now plans "
                              f"({changes}). Use a new --dir for the changed study, or remove that run directory.")


def _sequential(runs: Sequence[RunSpec], directory: Path, rerun_failed: bool, quiet: bool,
                log: Callable[[str], None]) -> StudyOutcome:
    with STOP.watching():  # a signal between runs, or after a run's last epoch, starts no further run
        return _run_in_turn(runs, directory, rerun_failed, quiet, log)


def _run_in_turn(runs: Sequence[RunSpec], directory: Path, rerun_failed: bool, quiet: bool,
                 log: Callable[[str], None]) -> StudyOutcome:
    outcome = StudyOutcome(directory, {}, [])
    done = _already_finished(runs, directory, rerun_failed, log)
    pending = [spec for spec in runs if spec.name not in done]
    outcome.skipped += done
    total, waiting_said = len(pending), False
    while pending:
        progressed = False
        for spec in list(pending):
            if STOP.signal is not None:  # asked between runs (or while waiting for other processes' runs)
                return _stopped(outcome, log)
            if RunDir(directory / spec.name).lock.held_elsewhere():
                continue
            number = total - len(pending) + 1
            announce = lambda action, n=number, name=spec.name: log(f"[{n}/{total}] {name} ({action})")  # noqa: E731
            try:
                action, status = run_one(spec, directory, rerun_failed, quiet, announce=announce)
            except CnnlabError:
                raise  # a user mistake (missing data, full disk) stops the study: every later run would fail too
            except Exception as exc:  # noqa: BLE001  a crash of one run is recorded (in run.json) and the study goes on
                pending.remove(spec)
                outcome.statuses[spec.name] = str(Status.FAILED)
                log(f"    failed: {type(exc).__name__}: {exc}")
                continue
            if action == BUSY:
                continue
            pending.remove(spec)
            progressed = True
            if action == Action.SKIP:
                outcome.others.append(spec.name)
                log(f"{spec.name}: {status} by another process")
                continue
            outcome.statuses[spec.name] = status
            if status == Status.INTERRUPTED:
                return _stopped(outcome, log)
        if pending and not progressed:
            if not waiting_said:
                log(f"waiting for {len(pending)} run(s) that other processes are training")
                waiting_said = True
            time.sleep(WAIT_SECONDS)
    return outcome


def _stopped(outcome: StudyOutcome, log: Callable[[str], None]) -> StudyOutcome:
    log("study interrupted; run the same command again to continue it")
    outcome.interrupted = True
    return outcome


def _already_finished(runs: Sequence[RunSpec], directory: Path, rerun_failed: bool,
                      log: Callable[[str], None]) -> list[str]:
    """The runs that are results already, said in `log`."""
    done = finished_runs(runs, directory, rerun_failed)
    if done:
        log(f"{len(done)} of {len(runs)} runs already finished: skipped")
    return done


def finished_runs(runs: Sequence[RunSpec], directory: Path, rerun_failed: bool = False) -> list[str]:
    """The runs that are results already, which a study run skips (read without their locks: a run's status
    only ever moves on to a result, so what reads finished stays finished); `study run --dry-run` costs the rest."""
    return [spec.name for spec in runs
            if decide(RunDir(directory / spec.name).status(), False, rerun_failed) == Action.SKIP]


def _parallel(runs: Sequence[RunSpec], directory: Path, jobs: int, rerun_failed: bool,
              log: Callable[[str], None]) -> StudyOutcome:
    threads = max(1, (os.cpu_count() or 1) // jobs)
    env = {**os.environ, "CNNLAB_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    configs = make_dirs(directory / ".configs")
    outcome = StudyOutcome(directory, {}, [])
    outcome.skipped += _already_finished(runs, directory, rerun_failed, log)
    pending = [spec for spec in runs if spec.name not in outcome.skipped]
    running: dict[str, Any] = {}
    # a request taken before this loop (an enclosing STOP scope: the study's set-up, an earlier stage) starts nothing
    stop: dict[str, Any] = {"signal": STOP.signal, "count": 0}

    def on_signal(signum: int, frame: object) -> None:
        stop["signal"], stop["count"] = signum, stop["count"] + 1
        for process, _ in running.values():  # the first signal: each worker checkpoints and stops (workers
            if stop["count"] == 1:  # never escalate themselves, train/interrupts.py); a second: exit at once
                process.send_signal(signal.SIGTERM)
            else:
                process.kill()

    previous = {s: signal.signal(s, on_signal) for s in unignored()}
    try:
        while running or (pending and stop["signal"] is None):
            while pending and len(running) < jobs and stop["signal"] is None:
                spec = _next_free(pending, directory)
                if spec is None:
                    break
                pending.remove(spec)
                running[spec.name] = (_launch(spec, directory, configs, env, rerun_failed), spec)
                log(f"started {spec.name}, {len(running)} running")
            for name, (process, spec) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[name]
                status = _settle(RunDir(directory / name), process.returncode)
                if status == BUSY:
                    pending.append(spec)  # another process took it first: look again later
                else:
                    outcome.statuses[name] = status
                    log(f"finished {name}: {status}")
            time.sleep(0.2 if running or not pending else WAIT_SECONDS)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return _stopped(outcome, log) if stop["signal"] is not None else outcome


def _next_free(pending: list[RunSpec], directory: Path) -> RunSpec | None:
    for spec in pending:
        if not RunDir(directory / spec.name).lock.held_elsewhere():
            return spec
    return None


def _settle(run: RunDir, returncode: int) -> str:
    """The status of a run whose worker ended: busy (exit 75: another process held it), or what the run
    wrote. A worker that ended before creating the run was either stopped by a signal while Python was
    still starting (before any handler: exit -N; nothing happened, the study's next run starts it) or
    failed (its message is in the log beside it). One killed mid-run leaves it crashed, resumable."""
    if returncode == RunBusy.exit_code:
        return BUSY
    status = run.status()
    if status is not None:
        return str(status)
    return NOT_STARTED if returncode < 0 else str(Status.FAILED)


def _launch(spec: RunSpec, directory: Path, configs: Path, env: dict, rerun_failed: bool) -> subprocess.Popen:
    config_path = configs / f"{spec.name}.yaml"
    save_config(spec.config, config_path)
    command = [sys.executable, "-m", "cnnlab", "study", "worker", str(directory), spec.name, str(config_path)]
    if rerun_failed:
        command.append("--rerun-failed")
    log_file = open(directory / f".{spec.name}.log", "ab")  # noqa: SIM115  closed when the process ends
    # a session of its own: Ctrl-C in the terminal signals the foreground process group; outside it, a worker
    # hears only what this process forwards, which decides when to stop and when to kill (_parallel). So a
    # kill -9 of this process's group would not reach it: it ends itself when this process dies, set up by
    # the program's entry before torch loads (cnnlab/parent.py), so even a worker still starting does
    env = {**env, PARENT_VARIABLE: str(os.getpid())}
    return subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)

