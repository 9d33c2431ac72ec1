"""`Trainer.fit()` returns one frozen FitResult; every callback is closed (on_exception) when training
raises; a stop request after the last epoch leaves the run completed; the library prints nothing unless
asked (its messages go to the 'cnnlab' logger)."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest

import cnnlab
from cnnlab.train import Callback, FitResult, Status, TensorBoard, Trainer, resolve_runtime
from cnnlab.train.build import LoaderSpec, make_batches, make_model, make_optimizer, splits_of
from tests.helpers import FAST


def tiny_trainer(callbacks=(), overrides=()) -> Trainer:
    config = cnnlab.make_config(None, [*FAST, "device=cpu", *overrides])
    runtime = resolve_runtime(config)
    splits = splits_of(config)
    model = make_model(config.model, splits.spec, runtime)
    train = make_batches(splits.train, splits.spec, LoaderSpec.for_training(config), runtime)
    val = make_batches(splits.val, splits.spec, LoaderSpec.for_evaluation(config), runtime)
    return Trainer(model, make_optimizer(config.optim, model), train, val, config, runtime, callbacks)


class Recorder(Callback):
    def __init__(self) -> None:
        self.hooks: list[str] = []
        self.error: BaseException | None = None
        self.result: FitResult | None = None

    def on_fit_start(self, trainer) -> None:
        self.hooks.append("on_fit_start")

    def on_epoch_end(self, trainer, row) -> None:
        self.hooks.append("on_epoch_end")

    def on_fit_end(self, trainer, result) -> None:
        self.hooks.append("on_fit_end")
        self.result = result

    def on_exception(self, trainer, error) -> None:
        self.hooks.append("on_exception")
        self.error = error


class Boom(Callback):
    def on_epoch_end(self, trainer, row) -> None:
        raise RuntimeError("boom")


class StopAt(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer, row) -> None:
        if row["epoch"] == self.epoch:
            trainer.request_stop(f"asked after epoch {self.epoch}")


def test_fit_returns_one_frozen_result_of_the_whole_run() -> None:
    recorder = Recorder()
    trainer = tiny_trainer([recorder])
    result = trainer.fit()
    assert isinstance(result, FitResult) and recorder.result is result
    assert result.status is Status.COMPLETED and result.reason == "trained 2 epochs"
    assert result.epochs == 2 and len(result.history) == 2 and result.steps == 2 * (256 // 32)
    assert result.train_seconds == trainer.state.train_seconds > 0
    assert result.train_seconds == pytest.approx(sum(row["train_seconds"] for row in result.history))
    assert result.images_per_second == pytest.approx(result.steps * 32 / result.train_seconds)
    assert result.final["val_acc"] == result.history[-1]["val_acc"] and result.best_epoch in (1, 2)
    assert result.divergence is None and result.early_stop is None and result.graphs is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.status = Status.FAILED  # type: ignore[misc]


def test_every_callback_is_closed_when_training_raises(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    recorder, board = Recorder(), TensorBoard(tmp_path / "tensorboard")
    trainer = tiny_trainer([recorder, board, Boom()])
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit()
    assert recorder.hooks == ["on_fit_start", "on_epoch_end", "on_exception"]
    assert isinstance(recorder.error, RuntimeError) and board.writer is None  # the writer was closed


def test_a_run_whose_callback_raises_is_recorded_failed_and_closed(tmp_path: Path) -> None:
    recorder = Recorder()
    with pytest.raises(RuntimeError, match="boom"):
        cnnlab.train(None, FAST, runs_dir=tmp_path, name="boom", quiet=True, callbacks=[recorder, Boom()])
    record = json.loads((tmp_path / "boom" / "run.json").read_text())
    assert record["status"] == "failed" and record["reason"] == "RuntimeError: boom" and record["traceback"]
    assert recorder.hooks[-1] == "on_exception"


def test_a_stop_request_ends_the_run_before_the_next_epoch_but_not_after_the_last() -> None:
    early = tiny_trainer([StopAt(1)], ["epochs=3"]).fit()
    assert early.status is Status.STOPPED_EARLY and early.reason == "asked after epoch 1" and early.epochs == 1
    late = tiny_trainer([StopAt(3)], ["epochs=3"]).fit()
    assert late.status is Status.COMPLETED and late.reason == "trained 3 epochs" and late.epochs == 3


def test_the_library_prints_nothing_unless_asked(tmp_path: Path, capsys, caplog) -> None:
    caplog.set_level(logging.INFO, logger="cnnlab")
    cnnlab.train(None, [*FAST, "epochs=1"], runs_dir=tmp_path, name="silent")
    assert capsys.readouterr().out == ""
    assert caplog.messages[0].startswith("data: digits from") and caplog.messages[1].startswith("epoch 1/1  train loss")
    caplog.clear()
    cnnlab.train(None, [*FAST, "epochs=1"], runs_dir=tmp_path, name="quiet", quiet=True)
    assert caplog.messages == []
    handler = cnnlab.show_messages()
    try:
        cnnlab.train(None, [*FAST, "epochs=1"], runs_dir=tmp_path, name="asked")
    finally:
        logging.getLogger("cnnlab").removeHandler(handler)
    assert "epoch 1/1  train loss" in capsys.readouterr().out
