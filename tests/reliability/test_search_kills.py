"""`cnnlab tune search` stopped mid-trial by SIGTERM, SIGINT or SIGKILL, on SQLite and on PostgreSQL (issue 22,
section 3): the signal's own exit code (143, 130); the same command run again continues the interrupted trial's
point in that trial's own run directory (resumed from its checkpoint like any crashed run), Optuna's record
agrees with the run directories (no trial left RUNNING, the stale one FAIL and taken over by exactly one later
trial with the same parameters), and the summary counts the point once. The injector holds the search at a
known training step until the signal has landed, so the moment is exact on any machine."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.runs import RunDir, Status
from cnnlab.train import read_metrics
from tests.experiments.test_tune_postgres import PG, postgres  # noqa: F401 (the throw-away cluster, a fixture)
from tests.reliability.helpers import cli_here, same_weights, wait_for, weights

optuna = pytest.importorskip("optuna")

INJECT = Path(__file__).with_name("inject.py")
SEARCH = """\
name: {name}
base: {{model: lenet5, data: {{name: digits, train_limit: 256}}, epochs: 3, batch_size: 32}}
trials: 3
space:
  optim.lr: {{log: [0.01, 0.1]}}
pruner: none
"""
# 256 training images in batches of 32: 8 steps per epoch, 24 per trial; step 12 is the middle of epoch 2
EXIT = {signal.SIGTERM: 143, signal.SIGINT: 130, signal.SIGKILL: -signal.SIGKILL}
SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGKILL]
needs_postgres = pytest.mark.skipif(not (PG / "initdb").is_file(), reason=f"PostgreSQL 15 is not installed ({PG})")


class Search:
    """One search directory (runs/s under `root`) on SQLite (storage None) or a database URL."""

    def __init__(self, root: Path, name: str, storage: str | None = None) -> None:
        self.root, self.name, self.storage = root, name, storage
        self.directory = root / "runs" / "s"
        (root / "search.yaml").write_text(SEARCH.format(name=name))

    @property
    def args(self) -> list[str]:
        return ["tune", "search", "search.yaml", "--dir", "runs/s", *(["--storage", self.storage] if self.storage else [])]

    def interrupt(self, step: int, sig: int) -> tuple[int, str]:
        """Run the search until this process's `step`-th training step, signal it there; its exit code and output."""
        marker = self.root / "holding-step"
        marker.unlink(missing_ok=True)
        process = subprocess.Popen([sys.executable, str(INJECT), "hold-step", str(step), *self.args], cwd=self.root,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
        wait_for(marker.is_file, what=f"training step {step}", process=process)
        process.send_signal(sig)
        out, err = process.communicate(timeout=120)
        return process.returncode, out + err

    def trials(self) -> list:
        if self.storage:
            url = self.storage.replace("postgresql://", "postgresql+psycopg://")
        else:
            url = f"sqlite:///{self.directory / 'optuna.db'}"
        return optuna.load_study(study_name=self.name, storage=url).trials


def assert_whole(search: Search, printed: str, trials: int = 3) -> list:
    """The search holds `trials` finished trials, each its own completed run directory; every trial that did
    not finish was taken over by exactly one later trial with its parameters and its run directory; nothing is
    left RUNNING or waiting; the summary counts each point once."""
    State = optuna.trial.TrialState
    stored = search.trials()
    assert not [t.number for t in stored if t.state in (State.RUNNING, State.WAITING)], stored
    finished = [t for t in stored if t.state in (State.COMPLETE, State.PRUNED)]
    assert len(finished) == trials, [(t.number, t.state) for t in stored]
    for failed in (t for t in stored if t.state == State.FAIL):
        takers = [t for t in stored if t.user_attrs.get("resumes") == failed.number]
        assert len(takers) == 1, (failed.number, [(t.number, t.user_attrs) for t in stored])
        assert takers[0].params == failed.params and takers[0].number > failed.number
        assert takers[0].user_attrs["run_dir"] == failed.user_attrs["run_dir"]  # the same run directory
    run_dirs = [Path(t.user_attrs["run_dir"]).name for t in finished]
    assert len(set(run_dirs)) == trials, run_dirs  # no run directory counted for two trials
    on_disk = sorted(p.name for p in search.directory.glob("trial_*"))
    assert on_disk == sorted(run_dirs), (on_disk, run_dirs)  # and none left behind interrupted or 'running'
    for trial in finished:
        run = search.directory / Path(trial.user_attrs["run_dir"]).name
        record = RunDir(run).record()
        assert record.status == Status.COMPLETED, (run, record.status)
        rows = read_metrics(run / "metrics.csv")
        assert [row["epoch"] for row in rows] == [1, 2, 3], (run, rows)  # no epoch twice, none missing
        assert trial.value == max(row["val_acc"] for row in rows)  # the objective saw the whole run
    summary = re.search(r"^trials: (.*)$", printed, flags=re.M)
    assert summary is not None and summary.group(1) == f"{trials} complete", printed
    return stored


def interrupted_then_continued(search: Search, sig: int) -> None:
    """The first trial signalled at step 12 (epoch 2); what the signal leaves; the same command run again."""
    code, out = search.interrupt(12, sig)
    first = RunDir(search.directory / "trial_0000")
    stored = {t.number: t for t in search.trials()}
    if sig == signal.SIGKILL:
        assert first.status() == Status.CRASHED and stored[0].state == optuna.trial.TrialState.RUNNING
    else:
        assert first.status() == Status.INTERRUPTED and stored[0].state == optuna.trial.TrialState.FAIL
    again = cli_here(*search.args, cwd=search.root)
    assert again.returncode == 0, again.output
    stored = assert_whole(search, again.stdout)
    taker = next(t for t in stored if t.user_attrs.get("resumes") == 0)
    assert taker.number == 1  # the interrupted point runs first, before any new one is drawn
    assert first.record().sessions == 2  # resumed from its checkpoint, not trained again from the start
    # and resumed exactly: the weights equal the same config trained without an interruption
    reference = cli_here("train", str(first.config_path), "--name", "reference", "--quiet", cwd=search.root)
    assert reference.returncode == 0, reference.output
    assert same_weights(weights(first.path), weights(search.root / "runs" / "reference")), "weights differ bitwise"
    # what each session said: the signal's own exit code, the interrupted trial once, then where it went on
    assert code == EXIT[sig], out
    if sig != signal.SIGKILL:
        assert "search interrupted; run the same command again" in out and "Traceback" not in out, out
        assert re.search(r"^trials: 1 interrupted$", out, flags=re.M), out
    assert f"trial 0 was interrupted ({'killed' if sig == signal.SIGKILL else 'stopped'}" in again.stdout, again.stdout


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_search_signalled_mid_trial_continues_that_trial_on_sqlite(tmp_path: Path, sig: int) -> None:
    interrupted_then_continued(Search(tmp_path, "killed"), sig)


@needs_postgres
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_search_signalled_mid_trial_continues_that_trial_on_postgresql(postgres: str,  # noqa: F811
                                                                         tmp_path: Path, sig: int) -> None:
    interrupted_then_continued(Search(tmp_path, f"killed_{signal.Signals(sig).name.lower()}", postgres), sig)


@pytest.mark.slow
def test_a_search_signalled_at_random_steps_ends_with_every_point_once(tmp_path: Path) -> None:
    """Three interruptions in a row, each by a random signal at a random step of that session (an interrupted
    trial resumed and interrupted again, or a fresh one), then the command once more: the same whole search.
    CNNLAB_KILL_SEED=N repeats a sequence."""
    seed = int(os.environ.get("CNNLAB_KILL_SEED", random.randrange(2**16)))
    rng = random.Random(seed)
    search = Search(tmp_path, "random")
    plan = [(rng.choice(SIGNALS), rng.randint(1, 20)) for _ in range(3)]  # 20 < 24: a trial is left each time
    for sig, step in plan:
        code, out = search.interrupt(step, sig)
        assert code == EXIT[sig], (seed, plan, out)
        running = [t.number for t in search.trials() if t.state == optuna.trial.TrialState.RUNNING]
        assert len(running) == (1 if sig == signal.SIGKILL else 0), (seed, plan, running)
    again = cli_here(*search.args, cwd=tmp_path)
    assert again.returncode == 0, (seed, plan, again.output)
    assert_whole(search, again.stdout)
