"""MLflow tracking of a run (train.mlflow, train.mlflow_uri): the resolved config as params (dotted keys),
each epoch's metrics (step = epoch), at the end the test metrics, the status and the final checkpoint, and
the run's pictures (plots/*.png) once they are drawn.

MLflow is an optional extra (`pip install 'cnnlab[track]'`), imported only when a run asks for it.
Tracking never costs the run: before the first epoch the store is probed (`probe`: a local store's folder
takes a file and its database opens for writing; a server answers within PROBE_SECONDS), and one that cannot
be written or reached is one warning on the 'cnnlab' logger, after which the run trains on untracked, instead of
MLflow's own retries (on a read-only file system: ~110 s and 36 lines of warnings); with train.mlflow_required
(--mlflow-required) it is a ConfigError, exit 2, before anything is written. A store that fails later is one
warning too. The MLflow run's id is kept in RUN_DIR/mlflow.json, so
a resumed run continues its MLflow run instead of starting a second one.

The default store is RUNS_DIR/mlruns: a SQLite database (mlflow.db) with the artifacts beside it. Not
MLflow's plain-folder store: MLflow 3 keeps that one in maintenance mode and refuses to open it unless
MLFLOW_ALLOW_FILE_STORE=true, recommending a database; `mlflow ui --backend-store-uri
sqlite:///runs/mlruns/mlflow.db` opens this one.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..config import config_hash, flatten, to_dict
from ..errors import CnnlabError, ConfigError
from ..io import FileLock, atomic_write_json, check_writable, make_dirs
from ..log import get as get_logger
from .hooks import Callback, TrainerView
from .status import Status

if TYPE_CHECKING:  # annotations only
    from ..config import RunConfig

LOG = get_logger(__name__)
T = TypeVar("T")

STORE_FOLDER = "mlruns"
DATABASE = "mlflow.db"
RECORD = "mlflow.json"  # in the run directory: which store and MLflow run this run logs to
DEFAULT_EXPERIMENT = "cnnlab"
EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "lr", "images_per_second",
                 "train_seconds", "val_seconds")
# how MLflow names the end of a run; an interrupted run is KILLED until it is resumed (RUNNING again)
MLFLOW_STATUS = {Status.COMPLETED: "FINISHED", Status.STOPPED_EARLY: "FINISHED", Status.DIVERGED: "FAILED",
                 Status.FAILED: "FAILED", Status.INTERRUPTED: "KILLED"}
PARAMS_PER_CALL = 100  # MLflow's limit on params in one log_batch
PARAM_LENGTH = 6000  # MLflow's limit on a param's value (since MLflow 2.0; 500 before)


PROBE_SECONDS = 5.0  # the longest a probe of the store waits for a server's answer


def wanted(config: RunConfig) -> bool:
    return config.train.mlflow or config.train.mlflow_uri is not None or config.train.mlflow_required


def require() -> Any:
    """The mlflow module, or a ConfigError saying how to install it (checked before a run starts)."""
    try:
        import mlflow
    except ImportError:
        raise ConfigError("train.mlflow=true (or --mlflow) needs the mlflow package: pip install 'cnnlab[track]' "
                          "(or set train.mlflow=false)") from None
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):  # 'creating tables' lines on each new store
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


def params_plain(config: RunConfig) -> dict[str, Any]:
    """The resolved config, flat: dotted keys -> plain values."""
    return {key: value for key, (value, _) in flatten(to_dict(config)).items()}


def params(config: RunConfig) -> dict[str, str]:
    """The resolved config as MLflow params: dotted keys, values as in YAML (null, true, [1.0, 1.0]), cut to
    MLflow's limit (a long class list would otherwise fail the whole batch)."""
    return {key: (value if isinstance(value, str) else json.dumps(value))[:PARAM_LENGTH]
            for key, value in params_plain(config).items()}


def store_folder(run_dir: Path) -> Path:
    """RUNS_DIR/mlruns for a run in RUNS_DIR. A study's run (its folder holds the study's plan.json) uses
    the store of the folder that holds the study directory, so single runs and studies share one store."""
    parent = Path(run_dir).resolve().parent
    if (parent / "plan.json").is_file():
        parent = parent.parent
    return parent / STORE_FOLDER


@dataclass(frozen=True)
class Store:
    uri: str
    artifacts: str | None  # where new experiments keep artifacts (None: the tracking server decides)
    lock: Path | None  # serialises creating the default store and its experiments across processes

    @classmethod
    def of(cls, config: RunConfig, run_dir: Path) -> Store:
        if config.train.mlflow_uri is not None:
            return cls(config.train.mlflow_uri, None, None)
        folder = store_folder(run_dir)
        return cls(f"sqlite:///{folder / DATABASE}", (folder / "artifacts").as_uri(), folder / ".lock")


def probe(config: RunConfig, run_dir: Path) -> str | None:
    """Why the run's store cannot be written or reached, found without MLflow's retries (at most PROBE_SECONDS),
    or None. Local stores (sqlite:///, file:, a path): the folder takes a file and an existing database opens for
    writing; http(s): the server answers (any HTTP status) within PROBE_SECONDS. Other schemes are not probed."""
    uri = Store.of(config, run_dir).uri
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme in ("http", "https"):
        try:
            urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=PROBE_SECONDS).close()
        except urllib.error.HTTPError:
            return None  # it answered: reachable (what it allows shows at the first write)
        except (OSError, ValueError) as exc:  # URLError, a timeout, a refused connection
            reason = getattr(exc, "reason", exc)
            return f"cannot be reached ({reason})"
        return None
    if scheme == "sqlite":
        target = Path(uri[len("sqlite:///"):])
    elif scheme in ("file", ""):
        target = Path(urllib.parse.urlparse(uri).path if scheme else uri) / "meta.yaml"
    else:
        return None
    try:
        check_writable(target.parent)
        if target.is_file():
            with open(target, "ab"):
                pass
    except (CnnlabError, OSError) as exc:
        return f"cannot be written ({str(exc).splitlines()[0] if isinstance(exc, CnnlabError) else exc})"
    return None


def check_store(config: RunConfig, run_dir: Path) -> bool:
    """Whether the run logs to MLflow: the store is probed once before training; a store that cannot be written
    or reached is one warning and False, or (train.mlflow_required) a ConfigError."""
    if not wanted(config):
        return False
    problem = probe(config, run_dir)
    if problem is None:
        return True
    what = f"mlflow: the tracking store {Store.of(config, run_dir).uri} {problem}"
    if config.train.mlflow_required:
        raise ConfigError(f"{what}; train.mlflow_required=true (--mlflow-required) refuses to train untracked: make "
                          "the store writable or reachable, give another (train.mlflow_uri=...), or leave "
                          "mlflow_required off to train without tracking")
    LOG.warning(f"{what}; the run goes on without MLflow tracking")
    return False


def open_run(config: RunConfig, run_dir: Path) -> tuple[Any, str, bool]:
    """(client, MLflow run id, continued): the run of RUN_DIR/mlflow.json when it is in this store (set
    running again), else a new run in the experiment, recorded in mlflow.json."""
    mlflow = require()
    store = Store.of(config, run_dir)
    experiment = config.train.mlflow_experiment or DEFAULT_EXPERIMENT
    if store.lock is None:
        client = mlflow.MlflowClient(tracking_uri=store.uri)
        experiment_id = _experiment_id(client, experiment, store.artifacts)
    else:  # two processes creating the database (its migrations) or one experiment at once would collide
        make_dirs(store.lock.parent)
        with FileLock(store.lock, what=f"MLflow store '{store.lock.parent}'").require(timeout=120):
            client = mlflow.MlflowClient(tracking_uri=store.uri)
            experiment_id = _experiment_id(client, experiment, store.artifacts)
    known = _recorded_run(client, run_dir, store.uri)
    if known is not None:
        client.update_run(known, status="RUNNING")
        return client, known, True
    run = client.create_run(experiment_id, run_name=run_dir.name,
                            tags={"cnnlab.run_dir": str(run_dir.resolve()), "cnnlab.config_hash": config_hash(config)})
    atomic_write_json(run_dir / RECORD, {"tracking_uri": store.uri, "experiment_id": experiment_id,
                                         "run_id": run.info.run_id})
    return client, run.info.run_id, False


def _experiment_id(client: Any, name: str, artifacts: str | None) -> str:
    found = client.get_experiment_by_name(name)
    if found is None:
        return client.create_experiment(name, artifact_location=artifacts)
    if found.lifecycle_stage == "deleted":
        client.restore_experiment(found.experiment_id)
    return found.experiment_id


def _recorded_run(client: Any, run_dir: Path, uri: str) -> str | None:
    """The MLflow run this run logged to before (a resume), if it is in this store and not deleted."""
    try:
        recorded = json.loads((run_dir / RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(recorded, dict) or recorded.get("tracking_uri") != uri or not recorded.get("run_id"):
        return None
    try:
        run = client.get_run(recorded["run_id"])
    except Exception:  # gone from the store (deleted, or the store replaced): a new MLflow run then
        return None
    return None if run.info.lifecycle_stage == "deleted" else run.info.run_id


class MLflowTracking(Callback):
    """Logs a run to MLflow; lifecycle adds it when train.mlflow (or mlflow_uri) is set. Every MLflow call
    goes through `_safely`: the first failure is one warning, and the run trains on without tracking."""

    def __init__(self, config: RunConfig, run_dir: Path) -> None:
        self.config, self.run_dir = config, Path(run_dir)
        self.client: Any = None
        self.run_id: str | None = None
        self.broken = False
        self.last_epoch = 0

    def on_fit_start(self, trainer: TrainerView) -> None:
        opened = self._safely("open the MLflow run", lambda: open_run(self.config, self.run_dir))
        if opened is None:
            return
        self.client, self.run_id, continued = opened
        self._safely("log the params", lambda: self._log_params(continued))

    def _log_params(self, continued: bool) -> None:
        from mlflow.entities import Param, RunTag

        values = params(self.config)
        logged = self.client.get_run(self.run_id).data.params if continued else {}
        # a param cannot change in MLflow; a resume allowed to change the config notes the new value as a tag
        changed = [RunTag(f"cnnlab.resumed_with.{key}", value) for key, value in values.items()
                   if key in logged and logged[key] != value]
        new = [Param(key, value) for key, value in values.items() if key not in logged]
        for start in range(0, len(new), PARAMS_PER_CALL):
            self.client.log_batch(self.run_id, params=new[start:start + PARAMS_PER_CALL])
        if changed:
            self.client.log_batch(self.run_id, tags=changed)

    def on_epoch_end(self, trainer: TrainerView, row: dict[str, Any]) -> None:
        self.last_epoch = int(row["epoch"])
        values = {key: row[key] for key in EPOCH_METRICS if row.get(key) is not None}
        self._log_metrics(values, self.last_epoch, "log the epoch's metrics")

    def _log_metrics(self, values: Mapping[str, float], step: int, what: str) -> None:
        if self.run_id is None or not values:
            return

        def log() -> None:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])

        self._safely(what, log)

    def on_run_end(self, status: Status, reason: str, test: Mapping[str, Any] | None) -> None:
        """After the test set is scored and run.json written: test metrics, status, final checkpoint."""
        if self.run_id is None:
            return
        self._log_metrics({f"test_{key}": test[key] for key in ("loss", "acc", "top5") if test.get(key) is not None}
                          if test else {}, self.last_epoch, "log the test metrics")

        def end() -> None:
            self.client.set_tag(self.run_id, "cnnlab.status", str(status))
            if reason:
                self.client.set_tag(self.run_id, "cnnlab.reason", reason[:5000])
            last = self.run_dir / "checkpoints" / "last.safetensors"
            if status.finished and last.is_file():  # an interrupted run logs it when it ends after its resume
                self.client.log_artifact(self.run_id, str(last), "checkpoints")
            self.client.set_terminated(self.run_id, MLFLOW_STATUS.get(status, "FAILED"))

        self._safely("end the MLflow run", end)

    def on_exception(self, trainer: TrainerView, error: BaseException) -> None:
        if self.run_id is not None:
            self._safely("end the MLflow run", lambda: self.client.set_terminated(self.run_id, "FAILED"))

    def _safely(self, what: str, action: Callable[[], T]) -> T | None:
        if self.broken:
            return None
        try:
            return action()
        except Exception as exc:  # tracking never ends a run: one warning, then the run goes on untracked
            self.broken = True
            LOG.warning(f"mlflow: could not {what} ({_first_line(exc)}); the run goes on without MLflow tracking")
            return None


def log_pictures(run_dir: str | Path) -> int:
    """plots/*.png of a tracked run (one with RUN_DIR/mlflow.json) as artifacts of its MLflow run, under
    plots/; the number logged. Called when the pictures are drawn; a failure is one warning."""
    run_dir = Path(run_dir)
    pictures = sorted((run_dir / "plots").glob("*.png"))
    try:
        recorded = json.loads((run_dir / RECORD).read_text())
    except (OSError, ValueError):
        return 0
    if not pictures:
        return 0
    try:
        client = require().MlflowClient(tracking_uri=recorded["tracking_uri"])
        for picture in pictures:
            client.log_artifact(recorded["run_id"], str(picture), "plots")
    except Exception as exc:
        LOG.warning(f"mlflow: could not log the pictures of '{run_dir}' ({_first_line(exc)})")
        return 0
    return len(pictures)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__
