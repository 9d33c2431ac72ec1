"""Processes that die, are signalled, repeat themselves or run side by side.

Checks 2, 11, 12 and 13 of the fault-injection list (issue 12)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cnnlab.runs import RunDir, Status
from cnnlab.train.checkpoint import load_checkpoint
from tests.reliability.helpers import (
    TINY,
    children,
    cli,
    cli_all,
    cli_here,
    command,
    finish,
    metrics_rows,
    same_weights,
    start,
    untimed_metrics,
    wait_for,
    weights,
)

INJECT = Path(__file__).with_name("inject.py")


def test_kill_9_mid_epoch_then_resume_equals_an_uninterrupted_run_bitwise(tmp_path: Path) -> None:
    """2. SIGKILL in the middle of epoch 2; `--resume` continues from the end of epoch 1: weights and
    metrics.csv equal an uninterrupted run bit for bit (CPU, same threads)."""
    small_convnet = ("model=convnet", "model.filters=[8,16,32]", "model.fc=[64]", "model.dropout=0.3")
    args = (*TINY, *small_convnet, "epochs=3", "--quiet")  # dropout: the RNG state must be checkpointed
    reference = start("train", *args, "--name", "reference", cwd=tmp_path)
    # 10 steps per epoch: the 13th step (the third of epoch 2) is held until the kill, the arithmetic untouched
    killed = subprocess.Popen([sys.executable, str(INJECT), "hold-step", "13", "train", *args, "--name", "killed"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = tmp_path / "runs" / "killed"
    wait_for(lambda: (tmp_path / "holding-step").is_file(), what="step 13", process=killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert metrics_rows(run) == 1  # killed in epoch 2, not after it
    assert finish(reference).returncode == 0
    assert RunDir(run).status() == Status.CRASHED  # run.json still says running; nobody holds the lock
    resumed = cli("train", "--resume", str(run), "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.output
    ref = tmp_path / "runs" / "reference"
    assert same_weights(weights(run), weights(ref)), "weights differ bitwise"
    assert untimed_metrics(run) == untimed_metrics(ref)
    assert RunDir(run).record().test == RunDir(ref).record().test
    assert [row["epoch"] for row in untimed_metrics(run)] == [1, 2, 3]  # no epoch twice


def test_sigterm_is_prompt_checkpoints_and_resumes_and_a_second_sigint_exits_at_once(tmp_path: Path) -> None:
    """11. SIGTERM: the step finishes, a checkpoint is written, exit 143 within 2 s + a step + a checkpoint
    write; resumable. SIGINT twice: exit 130 at once, nothing corrupt, resumable."""
    long = (*TINY, "epochs=200", "data.train_limit=1280")
    term = start("train", *long, "--name", "term", cwd=tmp_path)
    twice = start("train", *long, "--name", "twice", cwd=tmp_path)
    for name in ("term", "twice"):
        wait_for(lambda n=name: metrics_rows(tmp_path / "runs" / n) >= 1, what=f"{name}: epoch 1",
                 process=term if name == "term" else twice)
    started = time.monotonic()
    term.send_signal(signal.SIGTERM)
    ended = finish(term)
    seconds = time.monotonic() - started
    record = RunDir(tmp_path / "runs" / "term").record()
    step = record.train_seconds / max(record.steps, 1)
    assert ended.returncode == 143 and "interrupted: SIGTERM" in ended.stderr
    assert "cnnlab train --resume runs/term" in ended.stderr  # the message says how to continue
    assert record.status == Status.INTERRUPTED
    assert seconds < 2.0 + 4 * step + 0.5, f"{seconds:.2f} s from SIGTERM to exit"

    twice.send_signal(signal.SIGINT)
    twice.send_signal(signal.SIGINT)
    second = finish(twice)
    assert second.returncode == 130, second.output
    last = tmp_path / "runs" / "twice" / "checkpoints" / "last.safetensors"
    load_checkpoint(last)  # whatever the second signal cut short, the checkpoint on disk is whole

    # resumable: both continue, to one epoch past their checkpoint rather than 200 (cut short on purpose)
    ends = {name: load_checkpoint(tmp_path / "runs" / name / "checkpoints" / "last.safetensors")[1]["state"]["epoch"]
            + 1 for name in ("term", "twice")}
    resumed = [cli_here("train", "--resume", f"runs/{name}", "--quiet", f"epochs={end}", "--allow-config-change",
                        cwd=tmp_path) for name, end in ends.items()]
    for (name, end), result in zip(ends.items(), resumed):
        assert result.returncode == 0, result.output
        record = RunDir(tmp_path / "runs" / name).record()
        assert record.status == Status.COMPLETED and record.epochs_completed == end and record.sessions == 2


TWO_RUNS = """\
name: late
base: {model: lenet5, data: {name: digits, train_limit: 192}, epochs: 2, batch_size: 32}
variations:
  second: {lr: 0.05}
"""
SEARCH = """\
name: late_search
base: {model: lenet5, data: {name: digits, train_limit: 192}, epochs: 2, batch_size: 32}
trials: 3
space:
  optim.lr: {log: [0.01, 0.1]}
"""


def test_a_signal_after_the_last_epoch_completes_that_run_and_starts_no_other(tmp_path: Path) -> None:
    """SIGTERM after a run's last epoch, to `cnnlab train` (while it draws its curves, run.json final), to a
    study, a search and a tune grid (while their first run scores its test split, run.json still 'running'),
    to a search whose trials are all done (while it draws its plots), and to a `study run --jobs 2` before its
    first run (while it checks the data): the run ends 'completed' with its test score and its pictures drawn
    whole (train, and the finished search: exit 0), never killed mid-way and left 'running'; the study, the
    search and the grid start no further run (no second trial, no retraining) and exit 130 (the search 143,
    SIGTERM's own code, as `cnnlab train`); the --jobs study starts no worker, writes nothing and exits 130; the study run
    again runs the rest. The injector holds each process at its marker until the signal has landed, so the
    moment is exact on any machine."""
    for place in ("study", "train", "search", "plotted", "grid", "jobs"):
        (tmp_path / place).mkdir()
    for place in ("study", "jobs"):
        (tmp_path / place / "late.yaml").write_text(TWO_RUNS)
    for place in ("search", "plotted"):
        (tmp_path / place / "search.yaml").write_text(SEARCH)
    study = ("study", "run", "late.yaml", "--dir", "runs/late", "--quiet")
    search = ("tune", "search", "search.yaml", "--dir", "runs/search")
    commands = {"study": study, "train": ("train", *TINY, "--name", "late", "--quiet"), "search": search,
                "plotted": (*search, "--trials", "1"),
                "grid": ("tune", "grid", *TINY, "epochs=2", "--grid", "lr=0.05", "--dir", "runs/grid"),
                "jobs": (*study, "--jobs", "2")}
    # where each process is held until the signal lands
    fault = {"study": "slow-test", "train": "slow-curves", "search": "slow-test", "plotted": "slow-plots",
             "grid": "slow-test", "jobs": "slow-setup"}
    marker = {"slow-test": "scoring-test", "slow-curves": "drawing-curves", "slow-plots": "drawing-plots",
              "slow-setup": "checking-data"}
    processes = {place: subprocess.Popen([sys.executable, str(INJECT), fault[place], "60000", *args],
                                         cwd=tmp_path / place, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True) for place, args in commands.items()}
    for place, process in processes.items():
        wait_for(lambda p=place: (tmp_path / p / marker[fault[p]]).is_file(), what=f"{place}: {fault[place]}",
                 process=process)
    for process in processes.values():
        process.send_signal(signal.SIGTERM)
    said = {place: p.communicate(timeout=120) for place, p in processes.items()}
    out = {place: stdout for place, (stdout, _) in said.items()}
    both = {place: stdout + stderr for place, (stdout, stderr) in said.items()}
    code = {place: p.returncode for place, p in processes.items()}

    assert code["train"] == 0 and "test accuracy" in out["train"], both["train"]
    trained = RunDir(tmp_path / "train" / "runs" / "late").record()
    assert trained.status == Status.COMPLETED and trained.test is not None and trained.epochs_completed == 3
    plots = tmp_path / "train" / "runs" / "late" / "plots"
    assert (plots / "curves.png").is_file() and not list(plots.glob(".*.tmp"))  # drawn whole, not cut off

    assert code["search"] == 143 and "search interrupted" in out["search"], both["search"]  # SIGTERM's own code
    assert "trials: 1 complete" in out["search"]  # the trial in progress finished; no second one started
    assert [p.name for p in (tmp_path / "search" / "runs" / "search").glob("trial_*")] == ["trial_0000"]
    searched = tmp_path / "plotted" / "runs" / "search"
    assert code["plotted"] == 0 and "trials: 1 complete" in out["plotted"], both["plotted"]
    assert (searched / "search_history.png").is_file() and not list(searched.glob(".*.tmp"))

    assert code["grid"] == 130 and "interrupted" in out["grid"], both["grid"]
    point = next((tmp_path / "grid" / "runs" / "grid").glob("lr*"))
    assert RunDir(point).record().status == Status.COMPLETED  # the point finished ...
    assert not (tmp_path / "grid" / "runs" / "grid" / "final").exists()  # ... and no retraining started

    assert code["jobs"] == 130 and "started" not in out["jobs"], both["jobs"]  # no worker was started
    assert not (tmp_path / "jobs" / "runs").exists()  # stopped while checking: nothing written, not even the plan

    assert code["study"] == 130 and "study interrupted" in out["study"], both["study"]
    first = RunDir(tmp_path / "study" / "runs" / "late" / "baseline").record()
    assert first.status == Status.COMPLETED and first.test is not None and first.epochs_completed == 2
    assert not (tmp_path / "study" / "runs" / "late" / "second").exists()  # no run started after the request
    again = cli_here(*study, cwd=tmp_path / "study")
    assert again.returncode == 0 and "1 of 2 runs already finished: skipped" in again.stdout, again.output
    assert RunDir(tmp_path / "study" / "runs" / "late" / "second").record().status == Status.COMPLETED


def test_ctrl_c_while_the_program_loads_ends_it_without_a_traceback(tmp_path: Path) -> None:
    """SIGINT while `cnnlab` (the installed script, and `python -m cnnlab`) is still loading torch: the program
    ends by the signal, as a terminal expects, with no KeyboardInterrupt traceback from inside torch's import;
    nothing is written. A `cnnlab` started with SIGINT ignored (a background job of a script, `nohup`) keeps
    ignoring it, while loading and while training, and completes."""
    script = Path(sys.executable).with_name("cnnlab")
    launches = {"script": [str(script)], "module": [sys.executable, "-m", "cnnlab"], "ignored": [str(script)]}

    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    processes = {how: subprocess.Popen([*launch, "train", *TINY, "--name", how, "--quiet"], cwd=tmp_path,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                       preexec_fn=ignore_sigint if how == "ignored" else None)
                 for how, launch in launches.items()}
    for how, process in processes.items():  # torch's library mapped: inside the imports
        maps = Path(f"/proc/{process.pid}/maps")
        wait_for(lambda m=maps: m.is_file() and "libtorch" in m.read_text(), what=f"{how}: loading torch",
                 process=process, timeout=60)
        process.send_signal(signal.SIGINT)
    wait_for(lambda: metrics_rows(tmp_path / "runs" / "ignored") >= 1, what="ignored: epoch 1",
             process=processes["ignored"])
    processes["ignored"].send_signal(signal.SIGINT)  # and once more while it trains
    said = {how: process.communicate(timeout=120) for how, process in processes.items()}
    for how in ("script", "module"):
        err = said[how][1]
        assert processes[how].returncode == -signal.SIGINT and "Traceback" not in err, (how, err)
        assert not (tmp_path / "runs" / how).exists()
    assert processes["ignored"].returncode == 0, said["ignored"]
    assert RunDir(tmp_path / "runs" / "ignored").record().status == Status.COMPLETED


def test_the_same_seed_twice_gives_identical_metrics_and_weights(tmp_path: Path) -> None:
    """12. Two processes, same config and seed: identical metrics.csv (timings aside) and weights."""
    convnet = ("model=convnet", "model.filters=[8,16,32]", "model.fc=[64]", "model.dropout=0.3")
    first, second = cli_all(("train", *TINY, *convnet, "--name", "a", "--quiet"),
                            ("train", *TINY, *convnet, "--name", "b", "--quiet"), cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0
    a, b = tmp_path / "runs" / "a", tmp_path / "runs" / "b"
    assert same_weights(weights(a), weights(b)) and untimed_metrics(a) == untimed_metrics(b)
    assert RunDir(a).record().test == RunDir(b).record().test


STUDY = """\
name: shared
base: {model: lenet5, data: {name: digits, train_limit: 192}, epochs: 2, batch_size: 32}
variations:
  tanh: {}
  relu: {model.activation: relu}
  adam: {optimizer: adam, lr: 0.001}
seeds: [0, 1]
"""


def test_two_study_processes_share_one_study_and_do_every_run_exactly_once(tmp_path: Path) -> None:
    """13. Two `cnnlab study run` on one directory: both exit 0, every run completed by exactly one of
    them (one session each), no metrics.csv row twice. Two `train --name same` at once: one is refused."""
    (tmp_path / "shared.yaml").write_text(STUDY)
    results = cli_all(("study", "run", "shared.yaml", "--dir", "runs/shared", "--quiet"),
                      ("study", "run", "shared.yaml", "--dir", "runs/shared", "--quiet"), cwd=tmp_path, timeout=600)
    for result in results:
        assert result.returncode == 0, result.output
    runs = [p for p in (tmp_path / "runs" / "shared").iterdir() if (p / "run.json").is_file()]
    assert len(runs) == 6  # tanh (the empty variation is the baseline), relu, adam x seeds 0, 1
    for run in runs:
        record = RunDir(run).record()
        assert record.status == Status.COMPLETED and record.sessions == 1, run
        epochs = [row["epoch"] for row in untimed_metrics(run)]
        assert epochs == [1, 2], (run, epochs)
    trained = [line for result in results for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(trained) == 6, trained  # each run started by exactly one of the two processes
    assert all(result.stdout.count("[") >= 1 for result in results)  # and both did some of the work

    same = cli_all(("train", *TINY, "--name", "same", "--quiet"), ("train", *TINY, "--name", "same", "--quiet"),
                   cwd=tmp_path)
    codes = sorted(result.returncode for result in same)
    assert codes[0] == 0 and codes[1] in (2, 75), [r.output for r in same]
    refused = next(r for r in same if r.returncode != 0)
    assert "already exists" in refused.stderr or "in use by" in refused.stderr
    assert RunDir(tmp_path / "runs" / "same").record().sessions == 1


ORPHANS = """\
name: orphans
base: {model: lenet5, data: {name: digits, train_limit: 320}, epochs: 6, batch_size: 32}
variations:
  relu: {model.activation: relu}
"""


def alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie, dead but not yet reaped by whoever adopted it, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def worker_run(pid: int) -> str | None:
    """The run a `cnnlab study worker DIR NAME CONFIG` process trains, from its command line."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return None
    return words[words.index("worker") + 2] if "worker" in words else None


def test_kill_9_of_a_jobs_study_ends_its_workers_and_the_study_run_again_resumes_their_runs(tmp_path: Path) -> None:
    """`study run --jobs 2` killed with SIGKILL to its process group (its workers live in sessions of their
    own, so the group's signal does not reach them): each worker ends within seconds instead of training on
    as an orphan, its run reads 'crashed', and the study run again resumes both runs from their checkpoints
    and completes them (2 sessions each, every epoch once). Each worker is frozen (SIGSTOP) as soon as its run
    has a checkpoint and let go after the kill, so both are mid-run however loaded the machine is."""
    (tmp_path / "orphans.yaml").write_text(ORPHANS)
    study = ("study", "run", "orphans.yaml", "--dir", "runs/orphans", "--quiet", "--jobs", "2")
    out = tmp_path / "runs" / "orphans"
    parent = subprocess.Popen(command(*study), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)  # its own group, as a terminal's job
    workers: dict[str, int] = {}

    def freeze_those_with_a_checkpoint() -> bool:
        for pid in children(parent.pid):
            name = worker_run(pid)
            if name and name not in workers and (out / name / "checkpoints" / "last.safetensors").is_file():
                os.kill(pid, signal.SIGSTOP)
                workers[name] = pid
        return len(workers) == 2

    try:
        wait_for(freeze_those_with_a_checkpoint, timeout=180, what="both runs' first checkpoints", process=parent)
        assert all(metrics_rows(out / name) < 6 for name in workers), workers
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
        for pid in workers.values():
            os.kill(pid, signal.SIGCONT)  # an orphan would now train on
        wait_for(lambda: not any(alive(pid) for pid in workers.values()), timeout=5, what="the workers to end")
    finally:
        for pid in workers.values():  # (on the old code: the orphans)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert sorted(workers) == ["baseline", "relu"]
    assert {name: RunDir(out / name).status() for name in workers} == dict.fromkeys(workers, Status.CRASHED)

    again = cli_here(*study[:-2], cwd=tmp_path)  # in this process (no --jobs): 2 fewer starts of torch
    assert again.returncode == 0 and again.stdout.count("(resume)") == 2, again.output
    for name in workers:
        record = RunDir(out / name).record()
        assert (record.status, record.epochs_completed, record.sessions) == (Status.COMPLETED, 6, 2), name
        assert [row["epoch"] for row in untimed_metrics(out / name)] == [1, 2, 3, 4, 5, 6]


FOLLOWER = """\
import os, sys, time
from pathlib import Path
from cnnlab import parent
if sys.argv[1] == "watching":
    parent._death_signal = lambda signum: False  # as where there is no prctl
pid = os.getppid() if sys.argv[1] != "late" else os.getppid() + 1  # late: the parent is gone already
Path(sys.argv[1]).write_text(parent.follow_parent(pid))
time.sleep(120)
"""
MIDDLE = f"""\
import os, subprocess, sys, time
for how in ('prctl', 'watching', 'late'):
    subprocess.Popen([sys.executable, '-c', {FOLLOWER!r}, how])
# a real cnnlab told to follow this process, as `study run --jobs` tells its workers: still loading torch
# when this process is killed, it must end at once, not train on
subprocess.Popen([sys.executable, '-m', 'cnnlab', 'train', 'data=digits', 'epochs=50', '--name', 'loading',
                  '--quiet'], env={{**os.environ, 'CNNLAB_FOLLOW_PARENT': str(os.getpid())}})
time.sleep(120)
"""


def test_a_worker_follows_its_parent_by_prctl_by_watching_while_loading_and_when_the_parent_died_first(
        tmp_path: Path) -> None:
    """cnnlab.parent in processes whose parent is then killed with SIGKILL: with prctl (Linux) and with the
    thread that watches the parent's pid (elsewhere), each ends within seconds; a follower whose parent was
    gone before it got there ends at once; a `cnnlab` told to follow by $CNNLAB_FOLLOW_PARENT (a --jobs
    worker) follows from its first moment, so one still loading torch ends too, before creating its run."""
    middle = subprocess.Popen([sys.executable, "-c", MIDDLE], cwd=tmp_path)
    try:
        wait_for(lambda: len(children(middle.pid)) == 4, what="four followers", process=middle)
        followers = children(middle.pid)
        wait_for(lambda: all((tmp_path / how).is_file() for how in ("prctl", "watching")), what="following",
                 timeout=60, process=middle)
        assert {how: (tmp_path / how).read_text() for how in ("prctl", "watching")} == {
            "prctl": "prctl", "watching": "watching"}
        assert not (tmp_path / "late").exists()  # killed itself inside follow_parent
        middle.kill()
        middle.wait()
        wait_for(lambda: not any(alive(pid) for pid in followers), timeout=3, what="the followers to end")
        assert not (tmp_path / "runs" / "loading").exists()  # ended while loading, before making its run
    finally:
        for pid in children(middle.pid):
            os.kill(pid, signal.SIGKILL)
