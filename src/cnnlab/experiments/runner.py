"""Running a planned study: in this process one run after another, or `jobs` runs at once as separate
`cnnlab train` processes (several small runs share a GPU or the CPU cores; each process gets
cores / jobs threads through CNNLAB_NUM_THREADS).

Idempotent: a run whose run.json says completed, stopped_early or diverged is skipped; interrupted or
crashed-while-running runs resume from their last checkpoint (or start again if they have none); failed
runs (an exception) are recorded as 'failed' and re-run only with `rerun_failed`. Ctrl-C/SIGTERM stops
the study after the running runs checkpoint; running the study again continues it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..api import train
from ..config import save_config
from ..errors import CnnlabError, ConfigError
from ..train import INTERRUPTED, RunDir
from .study import FINISHED, RunSpec, Study, write_plan


@dataclass
class StudyOutcome:
    directory: Path
    statuses: dict[str, str]  # run name -> final status
    skipped: list[str]
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        return 130 if self.interrupted else 0


def status_of(run: RunDir) -> str | None:
    if not run.info_path.is_file():
        return None
    return run.read_info().get("status", "running")


def action_for(status: str | None, has_checkpoint: bool, rerun_failed: bool) -> str:
    """What to do with a run, a pure decision: 'skip', 'resume' or 'start'."""
    if status in FINISHED or (status == "failed" and not rerun_failed):
        return "skip"
    if status in (INTERRUPTED, "running") and has_checkpoint:
        return "resume"
    return "start"


def run_study(study: Study, directory: str | Path, jobs: int = 1, rerun_failed: bool = False,
              quiet: bool = False, log: Callable[[str], None] = print) -> StudyOutcome:
    directory = Path(directory)
    _refuse_changed_runs(study, directory)
    write_plan(study, directory)
    todo: list[tuple[RunSpec, str]] = []
    skipped: list[str] = []
    for spec in study.runs:
        run = RunDir(directory / spec.name)
        action = action_for(status_of(run), run.last.is_file(), rerun_failed)
        if action == "skip":
            skipped.append(spec.name)
        else:
            todo.append((spec, action))
    if skipped:
        log(f"{len(skipped)} of {len(study.runs)} runs already finished: skipped")
    if jobs <= 1:
        return _sequential(todo, directory, skipped, quiet, log)
    return _parallel(todo, directory, skipped, jobs, log)


def _refuse_changed_runs(study: Study, directory: Path) -> None:
    """A run directory made from another config than the study now plans (the file or the overrides
    changed) is neither a result of this study nor resumable: stop before anything runs, and say which."""
    from ..config import config_hash, diff

    for spec in study.runs:
        run = RunDir(directory / spec.name)
        if not run.info_path.is_file() or not run.exists():
            continue
        recorded = run.read_info().get("config_hash")
        if recorded is not None and recorded != config_hash(spec.config):
            changes = "; ".join(diff(run.read_config(), spec.config)[:4]) or "the config hash differs"
            raise ConfigError(f"run '{run.path}' was made with another config than the study now plans "
                              f"({changes}). Use a new --dir for the changed study, or remove that run directory.")


def _sequential(todo, directory: Path, skipped: list[str], quiet: bool, log) -> StudyOutcome:
    statuses: dict[str, str] = {}
    for index, (spec, action) in enumerate(todo, start=1):
        log(f"[{index}/{len(todo)}] {spec.name} ({action})")
        try:
            if action == "resume":
                result = train(resume=directory / spec.name, quiet=quiet)
            else:
                result = train(spec.config, runs_dir=directory, name=spec.name, overwrite=True, quiet=quiet)
        except CnnlabError:
            raise  # a user mistake (missing data, ...) stops the study: every later run would fail the same way
        except Exception as exc:  # noqa: BLE001  a crash of one run is recorded, the study goes on
            RunDir(directory / spec.name).update_info(status="failed", reason=f"{type(exc).__name__}: {exc}",
                                                      traceback=traceback.format_exc(limit=8))
            statuses[spec.name] = "failed"
            log(f"    failed: {type(exc).__name__}: {exc}")
            continue
        statuses[spec.name] = result.status
        if result.status == INTERRUPTED:
            log("study interrupted; run the same command again to continue it")
            return StudyOutcome(directory, statuses, skipped, interrupted=True)
    return StudyOutcome(directory, statuses, skipped)


def _parallel(todo, directory: Path, skipped: list[str], jobs: int, log) -> StudyOutcome:
    threads = max(1, (os.cpu_count() or 1) // jobs)
    env = {**os.environ, "CNNLAB_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    configs = directory / ".configs"
    configs.mkdir(exist_ok=True)
    pending, running, statuses = list(todo), {}, {}
    stop = {"signal": None}
    previous = {s: signal.signal(s, lambda signum, frame: stop.update(signal=signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    forwarded = False
    try:
        while running or (pending and stop["signal"] is None):
            while pending and len(running) < jobs and stop["signal"] is None:
                spec, action = pending.pop(0)
                running[spec.name] = (_launch(spec, action, directory, configs, env), spec)
                log(f"started {spec.name} ({action}), {len(running)} running")
            if stop["signal"] is not None and not forwarded:  # once: a second signal would cut the checkpoint short
                for process, _ in running.values():
                    process.send_signal(signal.SIGTERM)
                forwarded = True
            for name, (process, _spec) in list(running.items()):
                if process.poll() is not None:
                    del running[name]
                    statuses[name] = _settle(RunDir(directory / name), process.returncode)
                    log(f"finished {name}: {statuses[name]}")
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return StudyOutcome(directory, statuses, skipped, interrupted=stop["signal"] is not None)


def _settle(run: RunDir, returncode: int) -> str:
    """The status of a run whose process ended. What the run wrote wins (a run that completed and was
    then signalled while exiting is still completed); a crash without a word is recorded as failed; one
    killed by a signal mid-run stays 'running' and resumes from its checkpoint next time."""
    status = status_of(run)
    if status in (*FINISHED, INTERRUPTED, "failed") or returncode < 0:
        return status or INTERRUPTED
    if returncode != 0:
        run.update_info(status="failed", reason=f"exit code {returncode}; see the log next to the run directory")
        return "failed"
    return status or "failed"


def _launch(spec: RunSpec, action: str, directory: Path, configs: Path, env: dict) -> subprocess.Popen:
    command = [sys.executable, "-m", "cnnlab", "train", "--quiet"]
    if action == "resume":
        command += ["--resume", str(directory / spec.name)]
    else:
        config_path = configs / f"{spec.name}.yaml"
        save_config(spec.config, config_path)
        command += [str(config_path), "--name", spec.name, "--runs-dir", str(directory), "--overwrite"]
    log_file = open(directory / f".{spec.name}.log", "w")  # noqa: SIM115  closed when the process ends
    return subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
