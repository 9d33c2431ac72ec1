"""Tracking fails fast (issue 34, 5): an MLflow store on a read-only file system, or a server that never
answers, is found by one probe before the first epoch (at most 5 s), said in one warning, and the run trains on
untracked; with --mlflow-required the run is refused, exit 2, before its directory exists. Before: the run
finished after ~110 s of MLflow's retries and 36 lines of warnings."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import FAST
from tests.reliability.helpers import cli, on_small_disk, small_disk_available

pytest.importorskip("mlflow")

TRAIN = ["train", *FAST, "--quiet"]


def warnings_about_mlflow(output: str) -> list[str]:
    return [line for line in output.splitlines() if "mlflow" in line.lower()]


@pytest.mark.skipif(not small_disk_available(), reason="no user+mount namespaces here (unshare -rm)")
def test_a_store_on_a_read_only_file_system_is_one_warning_or_refused_when_required(tmp_path: Path) -> None:
    mount = tmp_path / "store"
    mount.mkdir()
    clock = "$($PY -c 'import time; print(time.time())')"
    script = (f"start={clock}; $CNNLAB {' '.join(TRAIN)} --runs-dir '{tmp_path}/runs' --name {{name}} "
              f"train.mlflow_uri=sqlite:///{mount}/mlflow.db {{extra}}; echo \"exit=$?\"; "
              f"echo \"started=$start ended={clock}\"")
    untracked = on_small_disk(script.format(name="untracked", extra=""), mount, "1m", tmp_path, options="ro")
    assert "exit=0" in untracked.stdout and "Traceback" not in untracked.stderr, untracked.stdout + untracked.stderr
    said = warnings_about_mlflow(untracked.stdout + untracked.stderr)
    assert len(said) == 1 and "cannot be written" in said[0] and "read-only" in said[0].lower(), said
    assert "the run goes on without MLflow tracking" in said[0]
    assert (tmp_path / "runs" / "untracked" / "run.json").is_file()
    assert not (tmp_path / "runs" / "untracked" / "mlflow.json").exists()
    seconds = float(untracked.stdout.split("ended=")[1].split()[0]) - float(untracked.stdout.split("started=")[1].split()[0])
    assert seconds < 60, seconds  # the run itself; MLflow's retries took ~110 s
    required = on_small_disk(script.format(name="required", extra="--mlflow-required"), mount, "1m", tmp_path,
                             options="ro")
    assert "exit=2" in required.stdout and "Traceback" not in required.stderr, required.stdout + required.stderr
    assert "train.mlflow_required=true (--mlflow-required) refuses to train untracked" in required.stderr
    assert not (tmp_path / "runs" / "required").exists()


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers (a hung tracking server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


def test_a_server_that_never_answers_costs_one_probe_and_one_warning(tmp_path: Path, silent_server: str) -> None:
    started = time.monotonic()
    untracked = cli(*TRAIN, "--name", "untracked", f"train.mlflow_uri={silent_server}", cwd=tmp_path, timeout=120)
    assert untracked.returncode == 0 and "Traceback" not in untracked.stderr, untracked.output
    said = warnings_about_mlflow(untracked.output)
    assert len(said) == 1 and f"{silent_server} cannot be reached" in said[0], said
    assert time.monotonic() - started < 60
    started = time.monotonic()
    required = cli(*TRAIN, "--name", "required", "--mlflow", silent_server, "--mlflow-required", cwd=tmp_path,
                   timeout=120)
    assert required.returncode == 2 and "refuses to train untracked" in required.stderr, required.output
    assert time.monotonic() - started < 40 and not (tmp_path / "runs" / "required").exists()
