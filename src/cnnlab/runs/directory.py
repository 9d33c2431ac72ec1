"""The run directory, the only thing results are read from (tables, plots, eval, resume), and its owner.

runs/<name>/config.yaml     the resolved config
runs/<name>/run.json        the RunRecord: status, reason, metrics, timings, owner, versions, data
runs/<name>/metrics.csv     one row per epoch
runs/<name>/steps.csv       the training loss of every step
runs/<name>/checkpoints/    last.safetensors (resumable), previous.safetensors (the one before it),
                            best.safetensors (weights), epoch_NNNN.safetensors (train.keep_epochs)
runs/<name>/plots/          curves.png, confusion_<split>.png, ...
runs/<name>/.lock           held (flock) by the one process that trains the run

Rules (docs/architecture.md): a run name is one plain path component; nothing is written or deleted
outside the runs directory; `--overwrite` deletes only a directory whose run.json cnnlab wrote; one
process owns a run at a time, and a run whose owner died is `crashed`, resumable.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config import RunConfig, config_hash, diff, read_config, save_config
from ..errors import ConfigError, RunBusy
from ..io import FileLock, check_name, describe_owner, is_inside, make_dirs, remove_stale_temp, storage_error
from ..train.status import Status
from .record import RunRecord

LOCK_NAME = ".lock"


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock = FileLock(self.path / LOCK_NAME, what=f"run '{self.path}'")

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def info_path(self) -> Path:
        return self.path / "run.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def steps_path(self) -> Path:
        return self.path / "steps.csv"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.safetensors"

    @property
    def previous(self) -> Path:
        return self.checkpoints / "previous.safetensors"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.safetensors"

    def epoch_checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch_{epoch:04d}.safetensors"

    # ----------------------------------------------------------------------------------- existence
    def exists(self) -> bool:
        return self.config_path.is_file()

    def require(self) -> RunDir:
        if not self.path.is_dir():
            raise ConfigError(f"run directory '{self.path}' does not exist")
        if not self.exists():
            raise ConfigError(f"'{self.path}' is not a cnnlab run directory (no config.yaml in it)")
        self.record()  # a run.json this cnnlab cannot read (changed by hand, a newer schema) stops every command
        return self  # on the run here, before anything is written into it (a resume rewrites config.yaml first)

    def is_cnnlab_run(self) -> bool:
        """Whether run.json exists and was written by cnnlab: the only kind of folder --overwrite deletes."""
        try:
            return RunRecord.is_cnnlab(json.loads(self.info_path.read_text()))
        except (OSError, ValueError):
            return False

    def has_content(self) -> bool:
        return self.path.is_dir() and any(p.name != LOCK_NAME for p in self.path.iterdir())

    # ----------------------------------------------------------------------------------- config
    def read_config(self) -> RunConfig:
        """config.yaml; an empty or cut-off one is a ConfigError (config.saved.read_config), and so is one whose
        settings are none this run trained with (another run's config.yaml, or one edited by hand): a run with
        an id (runs/identity.py) records the hash of every config it had, its resumes' changes included."""
        config = read_config(self.config_path)
        record = self.record()
        if record is not None and record.run_id is not None and record.config_hash is not None:
            known = {record.config_hash} | {change.get("config_hash") for change in record.config_changes
                                            if isinstance(change, dict)}
            digest = config_hash(config)
            if digest not in known:
                raise ConfigError(
                    f"{self.config_path}: these are not the settings this run trained with (their hash {digest} is "
                    f"none of run.json's: {', '.join(sorted(h for h in known if isinstance(h, str)))}): another "
                    "run's config.yaml, or one changed by hand. Restore the run's own file; a run's settings change "
                    "only by `cnnlab train --resume RUN --allow-config-change key=value`, which records them")
        return config

    def write_config(self, config: RunConfig) -> None:
        """config.yaml, atomically, and only when it changes (the caller holds the run's lock)."""
        make_dirs(self.path)
        save_config(config, self.config_path)

    def made_from(self, config: RunConfig, record: RunRecord | None = None) -> bool:
        """Whether this run computes what `config` computes: run.json's config hash says so, or (a hash
        of an older scheme, or none) the hash of the run's own config.yaml read by this cnnlab. False when
        neither can be read."""
        record = record or self.record()
        digest = config_hash(config)
        if record is not None and record.config_hash == digest:
            return True
        try:
            return config_hash(self.read_config()) == digest
        except ConfigError:
            return False

    def config_changes(self, config: RunConfig) -> list[str]:
        """'key: old -> new' for every setting `config` changes against the run's own (where it runs aside)."""
        return [change for change in diff(self.read_config(), config) if not change.startswith("device:")]

    def refuse_changed(self, config: RunConfig, doing: str, fix: str, cli_fix: str | None = None) -> None:
        """A ConfigError listing the changes when `config` is not the run's own config; `cli_fix` is the fix
        in command-line terms, where it differs from `fix` (the Python API's)."""
        changes = self.config_changes(config)
        if changes:
            what = f"refusing to {doing} '{self.path}' with a changed config:\n  " + "\n  ".join(changes)
            error = ConfigError(f"{what}\n{fix}")
            error.cli = f"{what}\n{cli_fix}" if cli_fix else None
            raise error

    # ----------------------------------------------------------------------------------- record
    def record(self) -> RunRecord | None:
        return RunRecord.load(self.info_path)

    def save(self, record: RunRecord) -> RunRecord:
        record.save(self.info_path)
        return record

    def update(self, **values: Any) -> RunRecord:
        """Read run.json, set `values` (typed fields only), write it back atomically."""
        return self.save((self.record() or RunRecord()).updated(**values))

    def status(self) -> Status | None:
        """The run's status; 'running' whose owner is gone (its lock is free) reads as 'crashed'."""
        record = self.record()
        if record is None:
            return None
        if record.status == Status.RUNNING and not self.lock.held and not self.lock.held_elsewhere():
            return Status.CRASHED
        return record.status

    # ----------------------------------------------------------------------------------- owning
    def claim(self, timeout: float = 0.0) -> bool:
        """Take the run's lock (False when another process holds it); on success remove the temporary
        files that writers killed mid-write left behind."""
        if not self.lock.acquire(timeout):
            return False
        remove_stale_temp(self.path, self.checkpoints, self.plots)
        return True

    def require_claim(self) -> RunDir:
        if not self.claim():
            raise RunBusy(f"run '{self.path}' is in use by {describe_owner(self.lock.owner())}; wait for it to "
                          "finish (or stop it), or choose another --name")
        return self

    def release(self) -> None:
        self.lock.release()

    @contextlib.contextmanager
    def writing(self, doing: str) -> Iterator[RunDir]:
        """Hold the run's lock while writing into it (the write rule: one writer per run, and a claim by
        another process, which removes leftover temporary files, never lands mid-write); RunBusy, naming
        `doing`, when another process holds it."""
        if not self.claim():
            raise RunBusy(f"run '{self.path}' is in use by {describe_owner(self.lock.owner())}: cannot {doing} "
                          "while it is; wait for that process to finish (or stop it)")
        try:
            yield self
        finally:
            self.release()

    def clear(self, runs_dir: Path) -> None:
        """Empty a cnnlab run directory for --overwrite (the caller holds its lock). Refuses anything that
        is not a cnnlab run directory strictly inside `runs_dir`."""
        if self.path.is_symlink() or not is_inside(self.path, runs_dir):
            raise ConfigError(f"refusing to overwrite '{self.path}': it is not a folder inside '{runs_dir}'")
        if self.has_content() and not self.is_cnnlab_run():
            raise ConfigError(f"refusing to overwrite '{self.path}': it is not a cnnlab run directory (no run.json "
                              "written by cnnlab in it). cnnlab deletes only its own runs; move it away or choose "
                              "another --name")
        for child in self.path.iterdir():
            if child.name == LOCK_NAME:
                continue
            try:
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            except OSError as exc:
                raise storage_error(exc, child, "remove") from None


def default_run_name(config: RunConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{config.model.name}-{config.data.name}-{stamp}"


def plan_run_dir(runs_dir: str | Path, name: str | None, config: RunConfig, overwrite: bool = False) -> RunDir:
    """Where a new run will go, checked before anything is created: a plain name; an existing run is
    refused unless `overwrite` (then it must be a cnnlab run); a default name that is taken gets -2, -3 ..."""
    runs_dir = Path(runs_dir)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise ConfigError(f"--runs-dir '{runs_dir}' is a file, not a folder; choose another --runs-dir")
    if name is None:
        return RunDir(_free_name(runs_dir, default_run_name(config)))
    run = RunDir(runs_dir / check_name(name))
    if run.path.is_symlink() or (run.path.exists() and not run.path.is_dir()):
        raise ConfigError(f"'{run.path}' exists and is not a run directory; choose another --name")
    if run.has_content() and not overwrite:
        raise ConfigError(f"run directory '{run.path}' already exists. Resume it with --resume "
                          f"{shlex.quote(str(run.path))}, "
                          "choose another --name, or pass --overwrite to replace it")
    if run.has_content() and not run.is_cnnlab_run():
        raise ConfigError(f"refusing to overwrite '{run.path}': it is not a cnnlab run directory (no run.json "
                          "written by cnnlab in it). cnnlab deletes only its own runs; move it away or choose "
                          "another --name")
    return run


def _free_name(runs_dir: Path, base: str) -> Path:
    candidate, index = runs_dir / base, 2
    while candidate.exists():
        candidate, index = runs_dir / f"{base}-{index}", index + 1
    return candidate


def create_run_dir(run: RunDir, runs_dir: str | Path, overwrite: bool = False, named: bool = True) -> RunDir:
    """Create the planned run directory and take its lock; with `overwrite`, empty it first (only a cnnlab
    run). Of two processes creating one named run at once, the second gets RunBusy or 'already exists';
    an unnamed run that another process took in the meantime moves on to the next free name."""
    runs_dir = Path(runs_dir)
    make_dirs(runs_dir)
    if not named:
        while True:
            try:
                run.path.mkdir()
                break
            except FileExistsError:
                run = RunDir(_free_name(runs_dir, run.path.name))
            except OSError as exc:
                raise storage_error(exc, run.path, "create the folder") from None
    make_dirs(run.path)
    run.require_claim()
    try:
        if run.has_content():
            if not overwrite:
                raise ConfigError(f"run directory '{run.path}' already exists (another process just made it); "
                                  "choose another --name")
            run.clear(runs_dir)
    except BaseException:
        run.release()
        raise
    return run
