"""The run lifecycle: interrupt + resume is bitwise identical to an uninterrupted run; divergence and
stop requests end runs cleanly; a changed config is refused on resume."""

import os
import signal
from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.errors import ConfigError
from cnnlab.train import Callback, read_metrics
from cnnlab.train.checkpoint import load_checkpoint, split_prefix

# 320 training images at batch 32 = 10 steps per epoch; dropout exercises the RNG state in checkpoints
BASE = ["data=digits", "model=convnet", "model.dropout=0.3", "data.train_limit=320", "batch_size=32",
        "epochs=3", "lr=0.05"]
TIME_COLUMNS = ("train_seconds", "val_seconds", "images_per_second")


class InterruptAt(Callback):
    """Sends a real SIGINT to this process after global step `step` (the trainer finishes that step)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_fit_start(self, trainer) -> None:
        trainer.progress_seconds = 0.0  # a progress call after every step

    def on_progress(self, trainer, progress) -> None:
        if progress["step"] == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    tensors, _ = load_checkpoint(run_dir / "checkpoints" / "last.safetensors")
    return split_prefix(tensors, "model.")


def untimed(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIME_COLUMNS} for row in rows]


@pytest.mark.parametrize("interrupt_step", [3, 10, 13])
def test_interrupted_and_resumed_run_equals_uninterrupted_run(tmp_path: Path, interrupt_step: int) -> None:
    reference = cnnlab.train(None, BASE, runs_dir=tmp_path, name="reference", quiet=True)
    stopped = cnnlab.train(None, BASE, runs_dir=tmp_path, name="resumed", quiet=True,
                           callbacks=[InterruptAt(interrupt_step)])
    assert stopped.status == "interrupted" and stopped.exit_code == 130
    assert cnnlab.load_run(stopped.run_dir).info["status"] == "interrupted"
    resumed = cnnlab.train(resume=stopped.run_dir, quiet=True)
    assert resumed.status == "completed"

    ours, theirs = weights(resumed.run_dir), weights(reference.run_dir)
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours), "weights differ bitwise"
    assert untimed(read_metrics(resumed.run_dir / "metrics.csv")) == untimed(read_metrics(reference.run_dir / "metrics.csv"))
    assert resumed.test == reference.test
    info = cnnlab.load_run(resumed.run_dir).info
    assert info["sessions"] == 2 and info["epochs_completed"] == 3 and info["steps"] == 30


def test_learning_rate_of_10_diverges_cleanly(tmp_path: Path) -> None:
    result = cnnlab.train(None, [*BASE, "lr=10"], runs_dir=tmp_path, name="nan", quiet=True)
    assert result.status == "diverged" and result.exit_code == 3
    assert "NaN/Inf" in result.reason and "no checkpoint was written" in result.reason
    info = cnnlab.load_run(result.run_dir).info
    assert info["status"] == "diverged" and info["test"] is None


def test_divergence_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    # lr 0.05 in epoch 1, then x10,000 from epoch 2 on
    result = cnnlab.train(None, [*BASE, "schedule=step", "schedule.step_size=1", "schedule.gamma=1e4"],
                          runs_dir=tmp_path, name="late", quiet=True)
    assert result.status == "diverged" and "epoch 2" in result.reason
    tensors, meta = load_checkpoint(result.run_dir / "checkpoints" / "last.safetensors")
    assert meta["state"]["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in split_prefix(tensors, "model.").values())
    assert len(read_metrics(result.run_dir / "metrics.csv")) == 1


def test_resume_with_changed_config_is_refused_unless_allowed(tmp_path: Path) -> None:
    stopped = cnnlab.train(None, BASE, runs_dir=tmp_path, name="r", quiet=True, callbacks=[InterruptAt(4)])
    with pytest.raises(ConfigError, match=r"changed config:\n  optim.lr: 0.05 -> 0.1\n.*allow_config_change=True"):
        cnnlab.train(None, ["lr=0.1"], resume=stopped.run_dir, quiet=True)
    result = cnnlab.train(None, ["lr=0.1"], resume=stopped.run_dir, quiet=True, allow_config_change=True)
    assert result.status == "completed" and cnnlab.load_run(result.run_dir).config.optim.lr == 0.1


def test_resume_without_a_checkpoint_says_so(tmp_path: Path) -> None:
    result = cnnlab.train(None, [*BASE, "lr=10"], runs_dir=tmp_path, name="nan", quiet=True)
    with pytest.raises(ConfigError, match="no checkpoint to resume from"):
        cnnlab.train(resume=result.run_dir, quiet=True)


class StopAfterFirstEpoch(Callback):
    def on_epoch_end(self, trainer, row) -> None:
        trainer.request_stop("enough")


def test_a_callback_can_stop_the_run(tmp_path: Path) -> None:
    result = cnnlab.train(None, BASE, runs_dir=tmp_path, name="s", quiet=True, callbacks=[StopAfterFirstEpoch()])
    assert result.status == "stopped_early" and result.reason == "enough" and result.exit_code == 0
    assert len(result.history) == 1 and result.test is not None


def test_existing_run_name_is_refused(tmp_path: Path) -> None:
    cnnlab.train(None, [*BASE, "epochs=1"], runs_dir=tmp_path, name="x", quiet=True)
    with pytest.raises(ConfigError, match="already exists. Resume it with --resume"):
        cnnlab.train(None, BASE, runs_dir=tmp_path, name="x", quiet=True)
