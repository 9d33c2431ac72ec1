"""Prechelt's GL, PQ and UP criteria and patience on hand-computed curves whose stopping epoch is known,
then early stopping in a real run (status, run.json, best weights restored)."""

from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.config import StopConfig
from cnnlab.errors import ConfigError
from cnnlab.train.checkpoint import load_checkpoint
from cnnlab.train.early_stop import (
    decide,
    generalization_loss,
    gl_decision,
    patience_decision,
    plateau_decision,
    pq_decision,
    training_progress,
    up_decision,
)
from tests.helpers import FAST


def first_stop(decision_of, length: int) -> int | None:
    """The first epoch after which the criterion fires, feeding the history one epoch at a time."""
    for t in range(1, length + 1):
        if decision_of(t).stop:
            return t
    return None


def test_generalization_loss_and_training_progress_by_hand() -> None:
    # E_opt = 0.20, E_va(t) = 0.23: GL = 100 * (0.23 / 0.20 - 1) = 15
    assert generalization_loss([0.30, 0.20, 0.25, 0.23]) == pytest.approx(15.0)
    # strip 0.5, 0.4, 0.3 (k=3): P = 1000 * (1.2 / (3 * 0.3) - 1) = 333.33
    assert training_progress([0.9, 0.5, 0.4, 0.3], 3) == pytest.approx(1000 * (1.2 / 0.9 - 1))
    assert training_progress([0.2, 0.2, 0.2], 3) == 0.0  # no progress at all


def test_gl_fires_at_the_first_epoch_over_alpha() -> None:
    val = [0.50, 0.40, 0.30, 0.31, 0.314, 0.32, 0.33]  # GL: 0, 0, 0, 3.33, 4.67, 6.67, 10
    assert first_stop(lambda t: gl_decision(val[:t], 5.0), len(val)) == 6  # 4.67 is not > 5
    assert first_stop(lambda t: gl_decision(val[:t], 3.0), len(val)) == 4
    assert gl_decision(val[:6], 5.0).values["GL"] == pytest.approx(100 * (0.32 / 0.30 - 1))


def test_pq_is_only_checked_at_strip_ends() -> None:
    k = 2
    val = [0.5, 0.4, 0.3, 0.33, 0.36, 0.36, 0.39, 0.40]
    train = [0.6, 0.4, 0.30, 0.20, 0.19, 0.185, 0.184, 0.1835]
    # t=4: GL = 10, P_2 = 1000 * (0.5 / 0.4 - 1) = 250, PQ = 0.04; t=6: GL = 20, P = 1000*(0.375/0.37-1) = 13.51,
    # PQ = 1.48 > 0.5 -> fires at 6 (t=5 has GL 20 and would fire, but 5 is not a strip end)
    assert pq_decision(val[:4], train[:4], 0.5, k).values["PQ"] == pytest.approx(10 / 250)
    assert first_stop(lambda t: pq_decision(val[:t], train[:t], 0.5, k), len(val)) == 6
    assert first_stop(lambda t: pq_decision(val[:t], train[:t], 5.0, k), len(val)) == 8  # GL 33.3 / P 1.36


def test_up_needs_s_successive_rising_strips() -> None:
    k = 2
    # strip ends (t = 2, 4, 6, 8, 10, 12): 0.5, 0.4, 0.45, 0.42, 0.44, 0.46 -> rises at 6, 10, 12
    val = [0.6, 0.5, 0.45, 0.4, 0.3, 0.45, 0.2, 0.42, 0.41, 0.44, 0.40, 0.46]
    assert first_stop(lambda t: up_decision(val[:t], k, 1), len(val)) == 6  # UP_1: one rise
    assert first_stop(lambda t: up_decision(val[:t], k, 2), len(val)) == 12  # 10 and 12 in a row
    assert first_stop(lambda t: up_decision(val[:t], k, 3), len(val)) is None
    # the study's k = 5, s = 5: a minimum at epoch 10, then a rise at every strip end: fires at 10 + 25 = 35
    curve = [1.0 - 0.05 * t for t in range(1, 11)] + [0.5 + 0.001 * t for t in range(1, 26)] + [0.3] * 5
    assert first_stop(lambda t: up_decision(curve[:t], 5, 5), len(curve)) == 35


def test_patience_with_min_delta_and_mode() -> None:
    acc = [0.50, 0.60, 0.605, 0.61, 0.59, 0.612]
    # min_delta 0.02: best stays epoch 2 (0.605, 0.61, 0.612 are not > 0.62): patience 3 fires at 5
    assert first_stop(lambda t: patience_decision(acc[:t], 3, 0.02, "max"), len(acc)) == 5
    assert first_stop(lambda t: patience_decision(acc[:t], 3, 0.0, "max"), len(acc)) is None
    loss = [1.0, 0.8, 0.9, 0.85, 0.95]
    assert first_stop(lambda t: patience_decision(loss[:t], 2, 0.0, "min"), len(loss)) == 4


def test_plateau_stops_a_flat_curve_that_up_never_stops() -> None:
    flat = [0.40, 0.35, 0.30] + [0.30] * 57  # falls, then stays exactly where it is for 57 epochs
    assert first_stop(lambda t: up_decision(flat[:t], 5, 5), len(flat)) is None  # no strict rise, ever
    # strip ends 5, 10, ..., 30 are all 0.30: five strips without improvement end at epoch 30
    assert first_stop(lambda t: plateau_decision(flat[:t], 5, 5), len(flat)) == 30
    assert plateau_decision(flat[:30], 5, 5).values == {"stalled": 5.0}
    # a rising error is "not improving" too: plateau fires wherever UP does (here both at 35, see the UP test)
    curve = [1.0 - 0.05 * t for t in range(1, 11)] + [0.5 + 0.001 * t for t in range(1, 26)]
    assert first_stop(lambda t: plateau_decision(curve[:t], 5, 5), len(curve)) == 35


def test_plateau_on_the_caltech_study_curves() -> None:
    # Bagnoli 2019, scratch AlexNet, (eta 0.001, step 60): best validation accuracy 9.19% at epoch 3, then
    # it "remains constant for the next 25 epochs and the early stop criterion stops the training"
    accuracy = [0.0712, 0.0850, 0.0919] + [0.0919] * 47
    history = [{"val_acc": a} for a in accuracy]
    stopped = first_stop(lambda t: decide(StopConfig(criterion="plateau", strip=5, strips=5), history[:t]),
                         len(history))
    assert stopped == 30  # the strip ends 5..30 are constant: 25 epochs after the first of them
    assert first_stop(lambda t: decide(StopConfig(criterion="up", strip=5, strips=5), history[:t]),
                      len(history)) is None
    # the same on the accuracy itself (mode max), and a rise of one image in 2,000 at a strip end resets it
    assert first_stop(lambda t: plateau_decision(accuracy[:t], 5, 5, 0.0, "max"), len(accuracy)) == 30
    wiggle = accuracy[:19] + [0.0924] + accuracy[20:]  # strip end 20 better than 15: counting restarts there
    assert first_stop(lambda t: plateau_decision(wiggle[:t], 5, 5, 0.0, "max"), len(wiggle)) == 45
    # ... unless it is within min_delta: a rise of 0.05 points is no improvement at min_delta 0.001
    assert first_stop(lambda t: plateau_decision(wiggle[:t], 5, 5, 0.001, "max"), len(wiggle)) == 30
    # strip ends are compared with the strip end before them, not with the best so far: a run that peaks
    # early and then creeps back up strip by strip goes on (the study's exits came long after its best epochs,
    # e.g. best at 52, exit at 120), where patience (best so far) stops 25 epochs after the peak
    creeping = [0.5] * 9 + [0.9] + [0.60 + 0.002 * t for t in range(1, 41)]  # peak at 10, up again to 50
    creeping += creeping[-1:] * 30  # then flat: the strip ends 55..75 are five without improvement
    assert first_stop(lambda t: plateau_decision(creeping[:t], 5, 5, 0.0, "max"), len(creeping)) == 75
    assert first_stop(lambda t: patience_decision(creeping[:t], 25, 0.0, "max"), len(creeping)) == 35


def test_decide_reads_errors_from_the_history() -> None:
    history = [{"val_acc": a, "train_acc": a, "val_loss": 1 - a, "train_loss": 1 - a}
               for a in (0.5, 0.6, 0.7, 0.69, 0.65)]
    decision = decide(StopConfig(criterion="gl", alpha=10), history)  # errors .3 -> .35: GL 16.7
    assert decision.stop and decision.epoch == 5 and "GL_10" in decision.reason
    assert not decide(StopConfig(criterion="gl", alpha=20), history).stop
    assert decide(StopConfig(criterion="patience", metric="val_acc", patience=2), history).stop
    assert not decide(StopConfig(), history).stop
    with pytest.raises(ConfigError, match="stop.metric must be one of"):
        StopConfig(metric="accuracy")


def test_early_stopping_in_a_run_restores_the_best_weights(tmp_path: Path) -> None:
    # lr 0.5 makes the validation error wander; patience 1 stops at the first epoch without a new best
    args = [*FAST, "epochs=30", "lr=0.3", "early_stop=patience", "stop.patience=1", "stop.metric=val_loss"]
    result = cnnlab.train(None, args, runs_dir=tmp_path, name="es", quiet=True)
    assert result.status == "stopped_early", result.reason
    info = cnnlab.load_run(result.run_dir).info
    stop = info["early_stop"]
    assert stop["fired"] and stop["criterion"] == "patience" and stop["counted"] == "epochs"
    assert stop["epoch"] == info["epochs_completed"] < 30 and stop["best_epoch"] == stop["epoch"] - 1
    assert info["monitor"] == "val_loss" and info["best_epoch"] == stop["best_epoch"]
    # the test score comes from the best epoch's weights
    best, _ = load_checkpoint(result.run_dir / "checkpoints" / "best.safetensors")
    model = cnnlab.load_run(result.run_dir).model("best")
    assert all(torch.equal(v, best[f"model.{k}"]) for k, v in model.state_dict().items())
    evaluated = cnnlab.evaluate(result.run_dir, split="test", checkpoint="best")
    assert evaluated["acc"] == pytest.approx(result.test["acc"])


def test_a_criterion_without_validation_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a validation split"):
        cnnlab.train(None, [*FAST, "early_stop=up", "data.val_fraction=0"], runs_dir=tmp_path, name="x", quiet=True)
    with pytest.raises(ConfigError, match="works on an error"):
        cnnlab.train(None, [*FAST, "early_stop=gl", "stop.metric=val_acc"], runs_dir=tmp_path, name="y", quiet=True)


def test_plateau_ends_a_real_run_whose_validation_accuracy_stays_constant(tmp_path: Path) -> None:
    # lr 1e-9: the weights barely move, so the validation accuracy is the same every epoch; UP never fires
    # on it, plateau (strips of 1 epoch, 2 in a row) ends the run after epoch 3
    flat = [*FAST, "epochs=6", "lr=1e-9", "stop.strip=1", "stop.strips=2"]
    result = cnnlab.train(None, [*flat, "early_stop=plateau"], runs_dir=tmp_path, name="plateau", quiet=True)
    assert result.status == "stopped_early", result.reason
    stop = cnnlab.load_run(result.run_dir).info["early_stop"]
    assert (stop["criterion"], stop["epoch"], stop["values"]) == ("plateau", 3, {"stalled": 2.0})
    result = cnnlab.train(None, [*flat, "early_stop=up"], runs_dir=tmp_path, name="up", quiet=True)
    assert result.status == "completed" and cnnlab.load_run(result.run_dir).info["epochs_completed"] == 6
