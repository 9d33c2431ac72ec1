"""TensorBoard logging (optional extra): the event file holds the per-epoch and per-step scalars."""

from pathlib import Path

import pytest

import cnnlab
from cnnlab.train import read_metrics
from tests.helpers import FAST


def test_tensorboard_event_file_has_the_metrics(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = cnnlab.train(None, [*FAST, "train.tensorboard=true"], runs_dir=tmp_path, name="tb", quiet=True)
    events = EventAccumulator(str(result.run_dir / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/train_loss", "loss/val_loss", "accuracy/val_acc", "lr", "loss/train_step"} <= tags
    rows = read_metrics(result.run_dir / "metrics.csv")
    val = [(e.step, e.value) for e in events.Scalars("accuracy/val_acc")]
    assert [s for s, _ in val] == [1, 2] and [v for _, v in val] == pytest.approx([r["val_acc"] for r in rows])
    assert len(events.Scalars("loss/train_step")) == 2 * 256 // 32  # every optimizer step
