"""Which run a file belongs to: every file a command reads from a run directory is checked against the run.

A run gets a random `run_id` when it starts (run.json); every checkpoint it writes carries that id in its
header (`last`, `previous`, `best`, `epoch_NNNN`, the EMA's weights inside them), and run.json records the digest
of its per-image results (runs/predictions.py) and of the files its pictures are drawn from (metrics.csv,
steps.csv) at the end of every session. On read, a checkpoint whose id is another run's (copied in from a run
of another seed, or left behind when the folder was replaced) is a DataError naming it, as is a file whose digest
disagrees with the run's record. Runs from before the id existed have checkpoints without one: those are checked
by their config hash (the hashes this run's config had, resumes with changes included), as before.
"""

from __future__ import annotations

import csv
import hashlib
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..config import HASH_SCHEME, config_hash
from ..errors import CnnlabError, DataError
from ..train.callbacks import read_metrics, read_step_losses
from ..train.status import Status
from .directory import RunDir
from .record import RunRecord

RECORDED_FILES = ("metrics.csv", "steps.csv")  # their sha256 in run.json's `files` after every session
WRITING = (Status.RUNNING, Status.CRASHED)  # a session may be (or was, when it died) ahead of run.json


def new_run_id() -> str:
    """16 hex digits: two runs never share one (2^64 ids)."""
    return secrets.token_hex(8)


def own_hashes(run: RunDir, record: RunRecord | None) -> set[str]:
    """The config hashes this run's checkpoints may carry: run.json's, config.yaml's, and each one a resume
    with --allow-config-change switched to (a checkpoint of an older session keeps the hash of its time)."""
    hashes = set()
    if record is not None:
        hashes |= {record.config_hash} | {c.get("config_hash") for c in record.config_changes if isinstance(c, dict)}
        hashes |= {c.get("from_hash") for c in record.config_changes if isinstance(c, dict)}
    try:
        hashes.add(config_hash(run.read_config()))
    except CnnlabError:
        pass  # a damaged config.yaml is reported by whoever reads it
    return {h for h in hashes if isinstance(h, str)}


def foreign_checkpoint(run: RunDir, record: RunRecord | None, meta: Mapping[str, Any]) -> str | None:
    """Why a checkpoint (its header `meta`) is not one this run wrote, or None when it is (or cannot be told)."""
    written_by = meta.get("run_id")
    mine = record.run_id if record is not None else None
    if written_by is not None:
        if written_by == mine:
            return None
        if mine is None:
            return f"it was written by run id {written_by}, and this run has none (it is older than run ids)"
        return f"it was written by another run (run id {written_by}; this run's is {mine})"
    if meta.get("config_hash_scheme") == HASH_SCHEME and meta.get("config_hash") not in own_hashes(run, record):
        return (f"it was written under another config (hash {meta.get('config_hash')}) than any this run had "
                f"({', '.join(sorted(own_hashes(run, record))) or 'none readable'})")
    return None


def check_checkpoint(run: RunDir, path: Path, meta: Mapping[str, Any], record: RunRecord | None = None,
                     epoch: int | None = None) -> None:
    """A DataError naming `path` when the checkpoint read from `run` was written by another run, or (`epoch`)
    holds another epoch than its name says."""
    record = record if record is not None else run.record()
    why = foreign_checkpoint(run, record, meta)
    if why is None and epoch is not None:
        held = meta.get("epoch", (meta.get("state") or {}).get("epoch"))
        if held is not None and held != epoch:
            why = f"it holds the weights of epoch {held}, not of epoch {epoch} as its name says"
    if why is not None:
        raise DataError(f"'{path}' is not a checkpoint of run '{run.path}': {why}. Restore the run's own file, or "
                        "delete this one (nothing was read from it)")


def inside(path: Path, run: RunDir) -> bool:
    """Whether `path` lies in the run's directory (a --checkpoint FILE elsewhere is the user's explicit choice)."""
    try:
        return Path(path).resolve().is_relative_to(run.path.resolve())
    except OSError:
        return False


# ------------------------------------------------------------------------------------------- files
def file_digest(path: Path) -> str | None:
    """The sha256 of a file, or None when it is not there."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def recorded_files(run: RunDir) -> dict[str, str]:
    """run.json's `files`: the digests of the run's files its pictures are drawn from, as they are now."""
    return {name: digest for name in RECORDED_FILES if (digest := file_digest(run.path / name)) is not None}


def check_file(run: RunDir, name: str, record: RunRecord | None = None) -> None:
    """A DataError when RUN/`name` (metrics.csv, steps.csv) is not the file the run's last session left: its
    digest differs from run.json's. Not checked while a session may still be writing it (a running or crashed
    run), nor for a run from before the digests were kept."""
    record = record if record is not None else run.record()
    if record is None or not record.files or name not in record.files or record.status in WRITING:
        return
    digest = file_digest(run.path / name)
    if digest is not None and digest != record.files[name]:
        raise DataError(f"'{run.path / name}' is not the file this run's training wrote (its sha256 differs from "
                        "run.json's `files`): copied from another run, or changed since. Restore the run's own file; "
                        "the run's checkpoints and run.json are unaffected")


def run_metrics(run_path: Path, record: RunRecord | None = None) -> list[dict[str, Any]]:
    """RUN/metrics.csv ([] when there is none), checked against run.json's digest of it (`check_file`)."""
    run = RunDir(run_path)
    if not run.metrics_path.is_file():
        return []
    check_file(run, "metrics.csv", record)
    return _csv_rows(run.metrics_path, read_metrics)


def run_step_losses(run_path: Path, record: RunRecord | None = None) -> list[tuple[int, int, float]]:
    """RUN/steps.csv ([] when there is none), checked like metrics.csv."""
    run = RunDir(run_path)
    if not run.steps_path.is_file():
        return []
    check_file(run, "steps.csv", record)
    return _csv_rows(run.steps_path, read_step_losses)


def _csv_rows(path: Path, reader: Callable[[Path], list[Any]]) -> list[Any]:
    """A CSV file the run wrote, read by `reader`; one that cannot be parsed is a DataError naming it."""
    try:
        return reader(path)
    except (OSError, ValueError, KeyError, TypeError, csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"'{path}' is not a file cnnlab wrote ({type(exc).__name__}: {str(exc)[:120]}); restore it "
                        "from a copy, or delete it (the run's pictures of its curves are then not drawn)") from None
