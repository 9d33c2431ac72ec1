"""NaN/Inf and loss explosions end a run as `diverged` (exit 3) and keep the last good checkpoint.

Check 9 of the fault-injection list (issue 12)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from cnnlab.runs import RunDir, Status
from tests.reliability.helpers import TINY, cli_here, weights

INJECT = Path(__file__).with_name("inject.py")


def test_every_way_of_diverging_ends_as_diverged_with_the_last_good_checkpoint(tmp_path: Path) -> None:
    runs = {
        "inf_lr": ("train", *TINY, "lr=1e30", "--name", "inf_lr", "--quiet"),
        # LeNet-5's tanh keeps the loss finite at lr=10: it trains at 110-130, ~50 x ln 10, and used to "complete"
        "explodes": ("train", *TINY, "lr=10", "--name", "explodes", "--quiet"),
        "late": ("train", *TINY, "schedule=step", "schedule.step_size=2", "schedule.gamma=10000",
                 "--name", "late", "--quiet"),  # two good epochs at 0.02, then lr 200
    }
    injected = {
        "nan_data": ("nan-data", "2", "train", *TINY, "--name", "nan_data", "--quiet"),
        "nan_weights": ("nan-weights", "2", "train", *TINY, "--name", "nan_weights", "--quiet"),
    }
    processes = [subprocess.Popen([sys.executable, str(INJECT), *args], cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for args in injected.values()]
    results = {name: cli_here(*args, cwd=tmp_path) for name, args in runs.items()}  # while those two run
    for name, process in zip(injected, processes):
        out, err = process.communicate(timeout=240)
        results[name] = type("Result", (), {"returncode": process.returncode, "stderr": err, "output": out + err})
    for name, result in results.items():
        assert result.returncode == 3, (name, result.output)
        assert "diverged:" in result.stderr and "Traceback" not in result.stderr, (name, result.stderr)
        assert RunDir(tmp_path / "runs" / name).record().status == Status.DIVERGED

    def divergence(name: str) -> dict:
        return RunDir(tmp_path / "runs" / name).record().divergence

    assert divergence("inf_lr")["rule"] == "nonfinite" and divergence("inf_lr")["epoch"] == 1
    assert not (tmp_path / "runs" / "inf_lr" / "checkpoints" / "last.safetensors").exists()
    explosion = divergence("explodes")
    assert explosion["rule"] == "threshold" and explosion["loss"] > explosion["limit"] > 2.3
    for name, epoch in (("late", 3), ("nan_data", 2), ("nan_weights", 2)):
        assert divergence(name)["epoch"] == epoch, (name, divergence(name))
        record = RunDir(tmp_path / "runs" / name).record()
        assert record.epochs_completed == epoch - 1 and record.test is None
        kept = weights(tmp_path / "runs" / name)  # the checkpoint of the last good epoch, untouched
        assert all(torch.isfinite(t).all() for t in kept.values())
        from cnnlab.train.checkpoint import load_checkpoint

        _, meta = load_checkpoint(tmp_path / "runs" / name / "checkpoints" / "last.safetensors")
        assert meta["state"]["epoch"] == epoch - 1
