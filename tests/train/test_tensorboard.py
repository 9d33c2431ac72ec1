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


def test_tensorboard_has_the_hyperparameters_with_the_final_metrics(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    result = cnnlab.train(None, [*FAST, "train.tensorboard=true", "optim.lr=0.03"], runs_dir=tmp_path, name="hp",
                          quiet=True)
    events = EventAccumulator(str(result.run_dir / "tensorboard"))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    names = {info.name for info in experiment.hparam_infos}
    assert {"optim.lr", "model.name", "train.epochs", "data.root", "augment.hflip"} <= names
    assert session.hparams["optim.lr"].number_value == pytest.approx(0.03)
    assert session.hparams["model.name"].string_value == "lenet5"
    assert session.hparams["augment.hflip"].string_value == "false"  # JSON text, not the number 0.0
    metrics = {info.name.tag for info in experiment.metric_infos}
    assert {"hparam/test_acc", "hparam/val_acc", "hparam/train_loss"} <= metrics
    [test_acc] = events.Scalars("hparam/test_acc")
    assert test_acc.value == pytest.approx(result.test["acc"]) and test_acc.step == 2
