"""The Optuna search on a real PostgreSQL server (version 15 from /usr/lib/postgresql/15/bin): a throw-away
cluster in a temporary directory, unix socket only, started as an unprivileged user where we are root
(initdb refuses root); two `cnnlab tune search` workers on one study, as two machines would run it."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")
pytest.importorskip("psycopg")

PG = Path("/usr/lib/postgresql/15/bin")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (PG / "initdb").is_file(), reason=f"PostgreSQL 15 is not installed ({PG})")]

SEARCH = """\
name: shared_search
base: {model: lenet5, data: {name: digits, train_limit: 256}, epochs: 2, batch_size: 32}
trials: 6
space:
  optim.lr: {log: [0.005, 0.2]}
pruner: none
"""


def _unprivileged(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A running throw-away cluster; yields its URL (user cnnlab, trust auth on the socket only)."""
    home = Path(tempfile.mkdtemp(prefix="cnnlab-pg-"))
    data, sockets = home / "data", home / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        for path in (home, sockets):
            shutil.chown(path, "nobody", "nogroup")
    with socket.socket() as probe:  # a free number for the socket's name (.s.PGSQL.PORT); no TCP listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run(_unprivileged([str(PG / "initdb"), "-D", str(data), "-U", "cnnlab", "-A", "trust"]),
                   check=True, capture_output=True)
    options = f"-c listen_addresses='' -k {sockets} -p {port} -c max_connections=40"
    subprocess.run(_unprivileged([str(PG / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(home / "log"),
                                  "-w", "start"]), check=True, capture_output=True)
    try:
        yield f"postgresql://cnnlab@/postgres?host={sockets}&port={port}"
    finally:
        subprocess.run(_unprivileged([str(PG / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_two_workers_share_one_search_through_postgresql(postgres: str, tmp_path: Path) -> None:
    (tmp_path / "search.yaml").write_text(SEARCH)
    workers = [subprocess.Popen([sys.executable, "-m", "cnnlab", "tune", "search", "search.yaml", "--storage", postgres,
                                 "--dir", f"runs/{machine}"], cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
               for machine in ("machine_a", "machine_b")]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    study = optuna.load_study(study_name="shared_search", storage=postgres.replace("postgresql://",
                                                                                   "postgresql+psycopg://"))
    finished = [t for t in study.trials if t.state.is_finished()]
    run_dirs = [Path(t.user_attrs["run_dir"]).parent.name for t in finished]
    # every trial is one run of one worker: the counts add up, and the study stopped at 6 (+1 at most: each
    # worker checks the total after its own trial)
    assert 6 <= len(finished) <= 7 and len(finished) == len(study.trials)
    assert sorted(set(run_dirs)) == ["machine_a", "machine_b"], run_dirs  # both worked
    on_disk = sorted((tmp_path / "runs").glob("machine_*/trial_*"))
    assert len(on_disk) == len(finished) and len({p.name for p in on_disk}) == len(finished)  # no number twice
    for out, _ in outputs:  # each worker's summary counts the other's trials too
        own = len(re.findall(r"^trial_\d+: ", out, flags=re.M))
        counts = re.search(r"^trials: (.*)$", out, flags=re.M).group(1)
        seen = sum(int(n) for n in re.findall(r"(\d+) (?:complete|running|pruned)", counts))
        assert 0 < own < seen <= len(finished), out
        assert "cnnlab@/postgres" in out and "postgresql+psycopg" not in out


def test_a_search_that_cannot_reach_its_database_says_so(tmp_path: Path) -> None:
    (tmp_path / "search.yaml").write_text(SEARCH)
    missing = f"postgresql://cnnlab@/postgres?host={tmp_path}/nowhere&port=5"
    result = subprocess.run([sys.executable, "-m", "cnnlab", "tune", "search", "search.yaml", "--storage", missing],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "cannot open the Optuna storage" in result.stderr and "Traceback" not in result.stderr
