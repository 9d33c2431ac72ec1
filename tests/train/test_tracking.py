"""MLflow tracking (train.mlflow, --mlflow; optional extra `track`): what a run logged is read back with
MLflow's own client from a real SQLite store under tmp_path."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import cnnlab
from cnnlab import api
from cnnlab.config import config_hash
from cnnlab.train import Callback, read_metrics
from cnnlab.train.tracking import DATABASE, STORE_FOLDER, params
from tests.helpers import FAST

mlflow = pytest.importorskip("mlflow")


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store whose tables exist: MLflow creates them (Alembic migrations) in ~7 s on two cores, which each
    test would pay again; a copy of this file is a new, empty store."""
    database = tmp_path_factory.mktemp("template") / DATABASE
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{database}").search_experiments()
    return database


@pytest.fixture
def runs(tmp_path: Path, empty_store: Path) -> Path:
    """A runs directory with its default store (RUNS/mlruns/mlflow.db) ready."""
    (tmp_path / "runs" / STORE_FOLDER).mkdir(parents=True)
    shutil.copy(empty_store, tmp_path / "runs" / STORE_FOLDER / DATABASE)
    return tmp_path / "runs"


def client_of(run_dir: Path):
    recorded = json.loads((run_dir / "mlflow.json").read_text())
    return mlflow.MlflowClient(tracking_uri=recorded["tracking_uri"]), recorded["run_id"]


def artifacts(client, run_id: str, folder: str) -> list[str]:
    return [item.path for item in client.list_artifacts(run_id, folder)]


def test_a_run_logs_params_epoch_metrics_test_status_and_artifacts(runs: Path) -> None:
    result = cnnlab.train(None, [*FAST, "train.mlflow=true"], runs_dir=runs, name="tracked", quiet=True)
    client, run_id = client_of(result.run_dir)
    assert json.loads((result.run_dir / "mlflow.json").read_text())["tracking_uri"] == \
        f"sqlite:///{(runs / STORE_FOLDER / DATABASE).resolve()}"
    logged = client.get_run(run_id)
    config = cnnlab.load_run(result.run_dir).config
    assert logged.data.params == params(config)  # the whole resolved config, dotted keys
    assert logged.data.params["optim.lr"] == "0.02" and logged.data.params["train.epochs"] == "2"
    assert logged.data.params["data.root"] == "null" and logged.data.params["train.mlflow"] == "true"
    rows = read_metrics(result.run_dir / "metrics.csv")
    for key in ("train_loss", "val_acc", "lr"):
        history = client.get_metric_history(run_id, key)
        assert [(m.step, m.value) for m in history] == [(row["epoch"], pytest.approx(row[key])) for row in rows]
    assert logged.data.metrics["test_acc"] == pytest.approx(result.test["acc"])
    assert logged.data.metrics["test_loss"] == pytest.approx(result.test["loss"])
    assert logged.info.status == "FINISHED" and logged.data.tags["cnnlab.status"] == "completed"
    assert logged.info.run_name == "tracked"
    assert artifacts(client, run_id, "plots") == ["plots/curves.png"]
    assert artifacts(client, run_id, "checkpoints") == ["checkpoints/last.safetensors"]
    stored = Path(client.download_artifacts(run_id, "checkpoints/last.safetensors", str(runs.parent / "down")))
    assert stored.read_bytes() == (result.run_dir / "checkpoints" / "last.safetensors").read_bytes()
    assert client.get_experiment(logged.info.experiment_id).name == "cnnlab"


class InterruptAt(Callback):
    """A real SIGINT to this process after global step `step` (the trainer finishes that step)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_fit_start(self, trainer) -> None:
        trainer.progress_seconds = 0.0

    def on_progress(self, trainer, progress) -> None:
        if progress["step"] == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_a_resumed_run_continues_its_mlflow_run(runs: Path) -> None:
    stopped = cnnlab.train(None, [*FAST, "train.mlflow=true"], runs_dir=runs, name="resumed", quiet=True,
                           callbacks=[InterruptAt(11)])  # 8 steps per epoch: in the second epoch
    assert stopped.status == "interrupted"
    client, run_id = client_of(stopped.run_dir)
    assert client.get_run(run_id).info.status == "KILLED"
    assert [m.step for m in client.get_metric_history(run_id, "val_acc")] == [1]

    resumed = cnnlab.train(resume=stopped.run_dir, quiet=True)
    assert resumed.status == "completed"
    assert client_of(resumed.run_dir)[1] == run_id  # the same MLflow run, not a second one
    experiment = client.get_run(run_id).info.experiment_id
    assert len(client.search_runs([experiment])) == 1
    logged = client.get_run(run_id)
    assert logged.info.status == "FINISHED" and logged.data.metrics["test_acc"] == pytest.approx(resumed.test["acc"])
    rows = read_metrics(resumed.run_dir / "metrics.csv")
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "val_acc")] == \
        [(row["epoch"], pytest.approx(row["val_acc"])) for row in rows]


STUDY = """\
name: tracked_study
base: {data: digits, model: lenet5, data.train_limit: 128, epochs: 1, batch_size: 32, train.mlflow: true}
variations:
  faster: {optim.lr: 0.05}
"""


def test_a_studys_runs_log_under_one_experiment_named_after_it(runs: Path) -> None:
    path = runs.parent / "study.yaml"
    path.write_text(STUDY)
    api.run_study(api.plan_study(path), runs / "tracked_study", quiet=True)
    # the study's directory sits in RUNS: its runs share RUNS/mlruns with single runs
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{runs / STORE_FOLDER / DATABASE}")
    experiment = client.get_experiment_by_name("tracked_study")
    logged = client.search_runs([experiment.experiment_id])
    assert sorted(run.info.run_name for run in logged) == ["baseline", "faster"]
    assert {run.data.params["optim.lr"] for run in logged} == {"0.02", "0.05"}
    assert all(run.info.status == "FINISHED" and "test_acc" in run.data.metrics for run in logged)
    assert not (runs / "tracked_study" / STORE_FOLDER).exists()


def test_an_unwritable_store_is_one_warning_and_the_run_trains_on(tmp_path: Path, caplog) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    with caplog.at_level(logging.WARNING, logger="cnnlab"):
        result = cnnlab.train(None, [*FAST, f"train.mlflow_uri=sqlite:///{blocker}/mlflow.db"], runs_dir=tmp_path,
                              name="untracked", quiet=True)
    assert result.status == "completed" and len(read_metrics(result.run_dir / "metrics.csv")) == 2
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("cnnlab") and "mlflow" in r.getMessage()]
    assert len(warnings) == 1 and "goes on without MLflow tracking" in warnings[0]
    assert not (result.run_dir / "mlflow.json").exists()


def test_a_store_that_fails_mid_run_is_one_warning(runs: Path, caplog, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise mlflow.exceptions.MlflowException("disk I/O error")

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", refuse)  # every later write refused, as by a full disk
    with caplog.at_level(logging.WARNING, logger="cnnlab"):
        result = cnnlab.train(None, [*FAST, "train.mlflow=true"], runs_dir=runs, name="failing", quiet=True)
    assert result.status == "completed" and result.test is not None
    warnings = [r.getMessage() for r in caplog.records if "mlflow" in r.getMessage()]
    assert len(warnings) == 1 and "disk I/O error" in warnings[0]


def test_cli_train_with_mlflow_true_logs_to_the_default_store(runs: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "cnnlab", "train", "--runs-dir", str(runs), "--name", "cli", *FAST,
         "train.mlflow=true"], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    client, run_id = client_of(runs / "cli")
    logged = client.get_run(run_id)
    assert logged.info.status == "FINISHED" and logged.data.params["model.name"] == "lenet5"
    assert [m.step for m in client.get_metric_history(run_id, "val_loss")] == [1, 2]
    assert artifacts(client, run_id, "plots") == ["plots/curves.png"]


def test_cli_mlflow_flag_sets_the_tracking_uri(tmp_path: Path, empty_store: Path, monkeypatch) -> None:
    database = tmp_path / "elsewhere.db"
    shutil.copy(empty_store, database)
    from cnnlab.cli import main

    monkeypatch.chdir(tmp_path)  # a store given by URI keeps MLflow's default artifact root, ./mlruns

    assert main(["train", "--runs-dir", str(tmp_path / "runs"), "--name", "flag", "--quiet", *FAST,
                 "--mlflow", f"sqlite:///{database}"]) == 0
    client, run_id = client_of(tmp_path / "runs" / "flag")
    assert client.tracking_uri == f"sqlite:///{database}"
    assert client.get_run(run_id).data.params["train.mlflow_uri"] == f"sqlite:///{database}"
    assert not (tmp_path / "runs" / STORE_FOLDER).exists()
    assert artifacts(client, run_id, "plots") == ["plots/curves.png"]


def test_without_mlflow_installed_the_key_is_a_config_error_exit_2(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "mlflow"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'mlflow'\")\n")
    path = os.pathsep.join(p for p in [str(tmp_path / "shadow"), os.environ.get("PYTHONPATH", "")] if p)
    completed = subprocess.run(
        [sys.executable, "-m", "cnnlab", "train", "--runs-dir", str(tmp_path / "runs"), *FAST, "train.mlflow=true"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": path})
    assert completed.returncode == 2
    assert "pip install 'cnnlab[track]'" in completed.stderr and "Traceback" not in completed.stderr
    assert not (tmp_path / "runs").exists()  # refused before anything was written


@pytest.mark.parametrize("key", ["train.mlflow=true", "train.mlflow_uri=http://localhost:5000",
                                 "train.mlflow_experiment=lab"])
def test_tracking_keys_do_not_change_the_config_hash(key: str) -> None:
    assert config_hash(api.make_config(None, [*FAST, key])) == config_hash(api.make_config(None, FAST))


@pytest.mark.parametrize("args", [["train", *FAST, "--mlflow", ""], ["study", "run", "missing.yaml", "--mlflow", " "]])
def test_an_empty_mlflow_flag_is_refused(args, tmp_path, monkeypatch, capsys) -> None:
    from cnnlab.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as raised:
        main(args)
    assert raised.value.code == 2 and "--mlflow takes a tracking URI" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("key,message", [("train.mlflow_uri=''", "train.mlflow_uri must be a tracking URI"),
                                         ("train.mlflow_experiment=''", "train.mlflow_experiment must be an")])
def test_an_empty_tracking_uri_or_experiment_is_refused(key, message, tmp_path, monkeypatch, capsys) -> None:
    from cnnlab.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["train", *FAST, key]) == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
