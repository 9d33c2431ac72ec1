"""A search's trials against its run directories: which run a trial trains, how a trial that was stopped
(SIGINT/SIGTERM: stored FAIL) or killed (SIGKILL, a lost machine: stored RUNNING for ever) gets its point
run again, and how the trials are counted.

Optuna hands each trial out once and never gives a trial back, so an interrupted trial's point is carried
over to a new trial: at the start of a session every trial of this search directory that did not finish and
whose run directory nobody holds (its lock is free) is marked FAIL, if the storage still says RUNNING, and its
parameters are queued (`Study.enqueue_trial`, which later trials take first) with two user attributes: `run`,
the run directory it continues, and `resumes`, the number of the trial it takes over. The new trial resumes
that run directory from its checkpoint like any crashed run (runs/decide.py), and the summary counts the
point once, under the trial that took it over. The run's lock is what tells a dead trial from a live one,
as it is for `study run`: the trial's process takes it before it records the trial's run directory and
keeps it until Optuna has stored the trial's end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config import RunConfig, config_hash
from ..io import check_name
from ..runs import Action, History, RunDir, Status, TrainResult, decide, resume_run, start_run
from ..train import Callback, read_metrics

RUN = "run"  # user attribute: the trial's run directory, a name inside the search directory
RESUMES = "resumes"  # user attribute: the number of the interrupted trial whose point (and run) this one continues
INTERRUPTED = "interrupted"  # user attribute: the signal that stopped the trial (a trial stopped, not failed)
CLAIM_SECONDS = 30.0  # how long a trial waits for its run's lock (another session may be looking at it)


def run_name(trial: Any) -> str:
    """The run directory a trial trains: its own `trial_NNNN`, or the one of the trial it continues (one plain
    folder name: a name read from a shared database never leads out of the search directory)."""
    return check_name(str(trial.user_attrs.get(RUN) or f"trial_{trial.number:04d}"), f"trial {trial.number}'s run")


def taken_over(trials: Sequence[Any]) -> set[int]:
    """The numbers of the trials whose points later trials continue."""
    return {int(t.user_attrs[RESUMES]) for t in trials if t.user_attrs.get(RESUMES) is not None}


def recover_trials(optuna: Any, study: Any, directory: Path, log: Callable[[str], None], limit: int) -> list[int]:
    """Mark every stale RUNNING trial of `directory` FAIL, and queue the points of up to `limit` trials that a
    signal or a kill left unfinished (the search needs no more); the numbers of the trials queued."""
    State = optuna.trial.TrialState
    recovered: list[int] = []
    trials = study.get_trials(deepcopy=False)
    limit -= sum(t.state == State.WAITING for t in trials)  # queued by an earlier session, not yet taken
    continued = taken_over(trials)
    for trial in trials:
        if trial.state not in (State.RUNNING, State.FAIL) or trial.number in continued:
            continue
        if trial.state == State.RUNNING and "run_dir" not in trial.user_attrs:
            continue  # its process has not yet taken its run's lock (it names the run once it has)
        if trial.state == State.FAIL and len(recovered) >= limit:
            continue
        run = RunDir(directory / run_name(trial))
        if not run.path.is_dir() or not run.claim():  # another machine's trial, a live one, or one never begun
            continue
        try:
            current = {t.number: t for t in study.get_trials(deepcopy=False)}  # again, now that it is ours
            trial = current[trial.number]
            if trial.number in taken_over(list(current.values())) or not _unfinished(State, trial, run):
                continue
            if trial.state == State.RUNNING:  # its process died (SIGKILL, power, a lost node): Optuna cannot know
                study.tell(trial.number, state=State.FAIL, skip_if_finished=True)
            if len(recovered) >= limit:
                continue
            study.enqueue_trial(trial.params, user_attrs={RUN: run.path.name, RESUMES: trial.number})
            recovered.append(trial.number)
            how = "stopped by a signal" if trial.user_attrs.get(INTERRUPTED) else "killed (its process is gone)"
            log(f"trial {trial.number} was interrupted ({how}): its point runs again, continuing {run.path}")
        finally:
            run.release()
    return recovered


def _unfinished(State: Any, trial: Any, run: RunDir) -> bool:
    """Whether the trial's point still needs running. A RUNNING trial whose run nobody holds is dead: its
    point runs again unless the run itself failed (a finished run is only read back); a FAIL trial, when a
    signal stopped it or its run is interrupted or was left running (we hold its lock: 'running' is a crash)."""
    status = run.status()
    if trial.state == State.RUNNING:
        return status != Status.FAILED
    if trial.state != State.FAIL:
        return False
    return bool(trial.user_attrs.get(INTERRUPTED)) or status in (Status.INTERRUPTED, Status.CRASHED, Status.RUNNING)


def continue_point(config: RunConfig, run: RunDir, directory: Path, quiet: bool,
                   callbacks: Sequence[Callback]) -> TrainResult:
    """Train a taken-over trial's run (its lock held): resume it from its checkpoint, read it back when it had
    finished, or start it again (no checkpoint, or made from another config than the search now gives)."""
    record = run.record()
    same = record is not None and record.config_hash == config_hash(config)
    action = decide(run.status(), run.last.is_file()) if same else Action.START
    if action == Action.SKIP and record is not None and record.status.finished:
        return TrainResult(run.path, record,
                           History(read_metrics(run.metrics_path) if run.metrics_path.is_file() else []))
    if action == Action.RESUME:
        return resume_run(config, run, quiet=quiet, callbacks=callbacks)
    return start_run(config, run, runs_dir=directory, overwrite=True, quiet=quiet, callbacks=callbacks)


def count_states(optuna: Any, trials: Sequence[Any]) -> dict[str, int]:
    """Trials per state, each point once: a trial another one took over is counted with that one; a FAIL
    trial that a signal stopped is 'interrupted' (the next session continues it), any other 'failed'."""
    State = optuna.trial.TrialState
    continued = taken_over(trials)
    states: dict[str, int] = {}
    for trial in trials:
        if trial.state == State.FAIL and trial.number in continued:
            continue
        state = trial.state.name.lower()
        if trial.state == State.FAIL:
            state = INTERRUPTED if trial.user_attrs.get(INTERRUPTED) else "failed"
        states[state] = states.get(state, 0) + 1
    return states
