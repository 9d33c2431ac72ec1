"""One run on several processes (torchrun, gloo on the CPU; train/distributed.py): two processes at global
batch B reach the weights of one process at B, rank 0 alone writes, a run resumes on another world size,
SIGTERM ends every rank with a checkpoint, and two "machines" meet through the c10d rendezvous."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.runs import RunDir, Status
from tests.reliability.helpers import children, untimed_metrics, weights

pytestmark = pytest.mark.slow

# lenet5 (tanh, average pooling): no batch norm, no dropout, so the processes compute exactly one model
# fp32: two ranks and one process sum the gradients in different orders; the 1e-5 tolerances below are fp32's
# (precision=auto is bf16 on a CPU with native bf16)
BASE = ["data=digits", "model=lenet5", "data.train_limit=512", "batch_size=32", "schedule=constant", "lr=0.05",
        "train.precision=fp32"]
INJECT = Path(__file__).parent / "reliability" / "inject.py"
TOLERANCE = 1e-5  # float32 summation order differs (two half-batch gradients averaged vs one batch's)


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One process, 2 and 3 epochs: what every distributed variant must reproduce."""
    root = tmp_path_factory.mktemp("reference")
    for epochs in (2, 3):
        cnnlab.train(None, [*BASE, f"epochs={epochs}"], runs_dir=root, name=f"e{epochs}", quiet=True)
    return root


def test_two_machines_through_c10d_equal_one_process_then_resume_onto_one_and_onto_two(tmp_path: Path,
                                                                                      reference: Path) -> None:
    """Two "machines" (two torchrun agents meeting at a c10d rendezvous on 127.0.0.1) train what one process
    trains, rank 0 alone writing; the run then resumes onto one process (the API) and onto two (--nproc)."""
    port = _free_port()
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d",
         f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=cnnlab-test", "-m", "cnnlab", "train", *BASE, "epochs=2",
         "--name", "c10d"], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)]
    outputs = [node.communicate(timeout=240) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    printed = "".join(out for out, _ in outputs)
    assert printed.count("test accuracy") == 1 and printed.count("epoch 2/2") == 1  # rank 0 speaks for both
    run = tmp_path / "runs" / "c10d"
    record = RunDir(run).record()
    assert record.world_size == 2 and record.sessions == 1 and record.status == Status.COMPLETED
    assert [row["epoch"] for row in untimed_metrics(run)] == [1, 2]  # each epoch once
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["c10d"]
    difference = _close(weights(run), weights(reference / "e2"))
    assert difference < TOLERANCE, difference
    one = json.loads((reference / "e2" / "run.json").read_text())["test"]
    assert record.test["acc"] == pytest.approx(one["acc"], abs=1 / 359)  # at most one test image apart

    shutil.copytree(run, tmp_path / "runs" / "two_then_one")
    # onto one process, in this process (the API)
    cnnlab.train(None, ["epochs=3"], resume=tmp_path / "runs" / "two_then_one", allow_config_change=True, quiet=True)
    # onto two processes, with the CLI's --nproc (torchrun underneath)
    again = subprocess.run([sys.executable, "-m", "cnnlab", "train", "epochs=3", "--resume", "runs/c10d",
                            "--allow-config-change", "--nproc", "2"], cwd=tmp_path, env=_env(), capture_output=True,
                           text=True, timeout=240)
    assert again.returncode == 0, again.stderr[-3000:]
    for name in ("two_then_one", "c10d"):
        resumed = tmp_path / "runs" / name
        assert [row["epoch"] for row in untimed_metrics(resumed)] == [1, 2, 3], name
        assert RunDir(resumed).record().sessions == 2
        assert _close(weights(resumed), weights(reference / "e3")) < TOLERANCE, name


def test_sigterm_ends_every_rank_with_a_checkpoint_that_resumes_on_one_process(tmp_path: Path,
                                                                               reference: Path) -> None:
    """torchrun SIGTERMed at a held step: every rank stops after that step, one checkpoint, resumed on one
    process to the uninterrupted weights. Beside it, three `--nproc` runs end as `cnnlab train` does on one
    process, with one-line messages and not torchrun's traceback and exit 1: SIGTERM to torchrun and to its
    ranks at once (as SLURM's scancel does; a rank counts the two as one request): 143, 'interrupted' with a
    checkpoint; a loss that diverges: 3; one rank killed by SIGKILL mid-run: 137, and the run reads 'crashed'
    (resumable), not 'failed' by the rank that lost its peer."""
    shortcut = {name: subprocess.Popen([sys.executable, "-m", "cnnlab", "train", *BASE, *extra, "--name", name,
                                        "--nproc", "2"], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
                for name, extra in (("long", ["epochs=100"]), ("nan", ["epochs=2", "lr=1e12"]),
                                    ("killed", ["epochs=100"]))}
    agent = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                              str(INJECT), "hold-step", "5", "train", *BASE, "epochs=2", "--name", "cut"],
                             cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = tmp_path / "runs" / "cut"
    deadline = time.monotonic() + 120
    while not (tmp_path / "holding-step").is_file():  # each rank holds its 5th step (of 16 per epoch) for the signal
        assert time.monotonic() < deadline and agent.poll() is None, agent.communicate()
        time.sleep(0.05)
    for name in ("long", "killed"):
        while not (tmp_path / "runs" / name / "metrics.csv").is_file():  # an epoch in
            assert time.monotonic() < deadline and shortcut[name].poll() is None, shortcut[name].communicate()
            time.sleep(0.05)
    ranks = children(shortcut["long"].pid)  # (the shortcut execs torchrun: its children are the ranks)
    assert len(ranks) == 2, ranks
    for pid in (shortcut["long"].pid, *ranks):
        os.kill(pid, signal.SIGTERM)
    os.kill(max(children(shortcut["killed"].pid)), signal.SIGKILL)
    sent = time.monotonic()
    agent.send_signal(signal.SIGTERM)
    out, err = agent.communicate(timeout=120)
    assert time.monotonic() - sent < 30, "the ranks took too long to stop"
    record = RunDir(run).record()
    assert record.status == Status.INTERRUPTED, (record.reason, err[-3000:])
    assert record.reason.startswith("SIGTERM during epoch 1") and record.steps == 5, record.reason  # the held step
    assert (run / "checkpoints" / "last.safetensors").is_file()
    assert not list(run.rglob("*.tmp"))
    result = cnnlab.train(None, [], resume=run, quiet=True)  # onto one process
    assert result.status == Status.COMPLETED
    assert [row["epoch"] for row in untimed_metrics(run)] == [1, 2]
    assert _close(weights(run), weights(reference / "e2")) < TOLERANCE
    resumed = untimed_metrics(run)[0]["train_loss"]
    uninterrupted = untimed_metrics(reference / "e2")[0]["train_loss"]
    assert resumed == pytest.approx(uninterrupted, rel=1e-5)  # the epoch's mean over both ranks and both sessions

    (_, long_err), (_, nan_err), (_, killed_err) = (process.communicate(timeout=120) for process in shortcut.values())
    assert shortcut["long"].returncode == 143 and "Traceback" not in long_err, long_err[-3000:]
    assert "interrupted: SIGTERM during epoch" in long_err and "cnnlab train --resume runs/long" in long_err
    assert "again" not in long_err  # one request per rank, not "SIGTERM again: exiting now"
    record = RunDir(tmp_path / "runs" / "long").record()
    assert record.status == Status.INTERRUPTED and record.steps % 16, record.reason  # mid-epoch, checkpointed
    assert (tmp_path / "runs" / "long" / "checkpoints" / "last.safetensors").is_file()
    assert shortcut["killed"].returncode == 137 and "Traceback" not in killed_err, killed_err[-3000:]
    assert re.search(r"rank \d was killed by signal 9", killed_err)
    said = [line for line in killed_err.splitlines() if "another process of this distributed run ended" in line]
    assert all(len(line) < 250 and ".cc:" not in line for line in said), said  # no backend source paths
    assert RunDir(tmp_path / "runs" / "killed").status() == Status.CRASHED
    assert shortcut["nan"].returncode == 3 and "Traceback" not in nan_err, nan_err[-3000:]
    assert "diverged: training loss became NaN/Inf" in nan_err and re.search(r"rank \d ended first, with exit code 3", nan_err)


def test_a_signal_while_the_ranks_meet_ends_them_at_once(tmp_path: Path) -> None:
    """SIGTERM to torchrun while rank 1 is still starting (no handler yet: it dies at once) and rank 0 waits
    for it where the ranks meet: rank 0 ends at once too, instead of waiting there with its stop request until
    torchrun gives up on it (30 s, then SIGKILL) or being left behind; nothing was written."""
    agent = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                              str(INJECT), "late-rank", "1", "train", *BASE, "epochs=2", "--name", "met"],
                             cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ((tmp_path / "late-rank").is_file() and (tmp_path / "meeting").is_file()):
        assert time.monotonic() < deadline and agent.poll() is None, agent.communicate()
        time.sleep(0.05)
    time.sleep(0.5)  # rank 0 inside init_process_group (only sooner would still pass: it dies either way)
    ranks = children(agent.pid)
    sent = time.monotonic()
    agent.send_signal(signal.SIGTERM)
    _, err = agent.communicate(timeout=120)
    assert time.monotonic() - sent < 15, err[-3000:]  # torchrun's own shutdown timeout is 30 s
    assert agent.returncode != 0
    assert not [pid for pid in ranks if Path(f"/proc/{pid}").exists()]  # no rank left behind
    assert not (tmp_path / "runs" / "met").exists()


def test_a_batch_that_does_not_divide_over_the_processes_is_refused(tmp_path: Path) -> None:
    env = {**_env(), "WORLD_SIZE": "3", "RANK": "0", "LOCAL_RANK": "0"}
    refused = subprocess.run([sys.executable, "-m", "cnnlab", "train", *BASE, "epochs=1"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    assert "train.batch_size=32 is the global batch and must divide evenly over the 3 processes; use 30 or 33" in \
        refused.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_more_processes_than_cores_or_gpus_is_refused(tmp_path: Path, capsys, monkeypatch) -> None:
    from cnnlab.cli import main

    monkeypatch.chdir(tmp_path)
    cores = len(os.sched_getaffinity(0))
    assert main(["train", *BASE, "--nproc", str(cores + 1)]) == 2
    assert f"--nproc {cores + 1} is more than the {cores} CPU cores" in capsys.readouterr().err
    assert main(["train", *BASE, "--nproc", "0"]) == 2
    # every rank's mistake is found before torchrun starts (one message, exit 2, not torchrun's traceback)
    for extra, message in ((["batch_size=63"], "use 62 or 64"), (["bogus=1"], "unknown key 'bogus'"),
                           (["data=imagefolder", "data.root=."], "do not shard over processes yet"),
                           (["--resume", "runs/nope"], "'runs/nope' does not exist")):
        assert main(["train", *BASE, *extra, "--nproc", "2"]) == 2
        assert message in capsys.readouterr().err
    assert not Path("runs").exists()
