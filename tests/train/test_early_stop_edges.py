"""The stopping rules at their edges, with exact decisions (epoch, reason, values): the cases mutation testing
(docs/mutation.md) showed tests/train/test_early_stop.py could not tell apart from a wrong train/early_stop.py.
Curves use values exact in binary (0.5, 0.75, 0.25) where a boundary is tested, so 'equal' means equal."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from cnnlab.config import StopConfig
from cnnlab.errors import ConfigError
from cnnlab.train.early_stop import (
    Decision,
    EarlyStopping,
    check,
    decide,
    generalization_loss,
    gl_decision,
    mode_of,
    patience_decision,
    plateau_decision,
    pq_decision,
    training_progress,
    up_decision,
)
from cnnlab.train.result import EarlyStopRecord


def test_a_zero_error_is_an_exact_best_not_a_division_by_zero() -> None:
    assert generalization_loss([0.1, 0.0, 0.0]) == 0.0  # still at the perfect best: no loss of generalization
    assert generalization_loss([0.1, 0.0, 0.5]) == math.inf  # any error after a perfect epoch is infinitely worse
    assert generalization_loss([0.0, 0.5, 0.0]) == 0.0
    assert training_progress([0.3, 0.0, 0.0], 2) == 0.0  # no training error left: no progress to make
    assert training_progress([0.0, 0.5], 2) == math.inf
    assert training_progress([0.0, 2.0], 2) == math.inf  # (a loss above 1 as well)


def test_gl_at_exactly_alpha_does_not_fire_and_says_why_when_it_does() -> None:
    assert gl_decision([0.5, 0.75], 50.0) == Decision(False, 2, "", {"GL": 50.0})  # GL = 100 x (0.75 / 0.5 - 1)
    assert gl_decision([0.5, 0.75], 5.0) == Decision(True, 2, "GL_5: generalization loss 50.00% > 5%", {"GL": 50.0})


def test_pq_at_its_first_strip_end_at_exactly_alpha_and_with_no_progress() -> None:
    # epoch 2 = k: the first strip end is evaluated; GL = 50, P_2 = 1000 x (1.25 / (2 x 0.5) - 1) = 250, PQ = 0.2
    assert pq_decision([0.5, 0.75], [0.75, 0.5], 0.2, 2) == Decision(False, 2, "", {"GL": 50.0, "P": 250.0, "PQ": 0.2})
    assert pq_decision([0.5, 0.75], [0.75, 0.5], 0.1, 2) == Decision(
        True, 2, "PQ_0.1: GL 50.00% / P_2 250.00 = 0.200 > 0.1", {"GL": 50.0, "P": 250.0, "PQ": 0.2})
    assert pq_decision([0.5, 0.75, 0.75], [0.75, 0.5, 0.5], 0.1, 2) == Decision(False, 3)  # not a strip end
    assert pq_decision([0.5], [0.75], 0.1, 2) == Decision(False, 1)
    # a flat training error (P = 0): any generalization loss is an infinite quotient, none is zero
    assert pq_decision([0.5, 0.75], [0.5, 0.5], 1e6, 2).values == {"GL": 50.0, "P": 0.0, "PQ": math.inf}
    assert pq_decision([0.4, 0.402], [0.5, 0.5], 1e6, 2).values["PQ"] == math.inf  # GL 0.5: small, still > 0
    assert pq_decision([0.5, 0.5], [0.5, 0.5], 0.5, 2) == Decision(False, 2, "", {"GL": 0.0, "P": 0.0, "PQ": 0.0})


def test_up_at_its_first_possible_epoch_with_strips_of_one() -> None:
    rising = [0.1, 0.2, 0.3]  # k = 1, s = 2: two rises need three strip ends, epoch 3 is the first chance
    assert up_decision(rising, 1, 2) == Decision(
        True, 3, "UP_2: validation error rose at the end of 2 successive strips of 1 epochs (0.1 -> 0.2 -> 0.3)",
        {"rises": 2.0})
    assert up_decision(rising[:2], 1, 2) == Decision(False, 2)
    assert up_decision([0.3, 0.2, 0.25], 1, 2) == Decision(False, 3, "", {"rises": 1.0})


def test_patience_counts_from_the_first_epoch_and_a_tie_is_no_improvement() -> None:
    assert patience_decision([0.5, 0.5], 1, 0.0, "min") == Decision(
        True, 2, "patience 1: no improvement of more than 0 since epoch 1", {"best_epoch": 1.0, "waited": 1.0})
    assert patience_decision([0.5, 0.75, 0.75], 2, 0.0, "min") == Decision(
        True, 3, "patience 2: no improvement of more than 0 since epoch 1", {"best_epoch": 1.0, "waited": 2.0})
    assert patience_decision([0.5, 0.25], 1, 0.0, "min") == Decision(False, 2, "", {"best_epoch": 2.0, "waited": 0.0})


def test_min_delta_is_in_the_metrics_own_units_both_ways() -> None:
    # 1.0 -> 0.99 is an improvement of 0.01, less than min_delta 0.015: none (scaling the values would make it one)
    assert patience_decision([1.0, 0.99], 1, 0.015, "min").stop
    assert patience_decision([0.5, 0.51], 1, 0.015, "max").stop
    assert not patience_decision([0.5, 0.52], 1, 0.015, "max").stop
    assert plateau_decision([1.0, 0.99], 1, 1, 0.015, "min").stop
    assert not plateau_decision([1.0, 0.98], 1, 1, 0.015, "min").stop


def test_plateau_with_strips_of_one_says_why() -> None:
    assert plateau_decision([0.5, 0.5, 0.5], 1, 2) == Decision(
        True, 3, "plateau: no improvement of more than 0 at the end of 2 successive strips of 1 epochs "
                 "(0.5 -> 0.5 -> 0.5)", {"stalled": 2.0})
    assert plateau_decision([0.5, 0.5], 1, 2) == Decision(False, 2)
    assert plateau_decision([0.5, 0.25, 0.25], 1, 2) == Decision(False, 3, "", {"stalled": 1.0})


def test_mode_auto_is_max_for_accuracies_and_min_otherwise() -> None:
    assert [mode_of(metric, "auto") for metric in ("val_acc", "val_top5", "val_error", "val_loss")] == [
        "max", "max", "min", "min"]
    assert mode_of("val_acc", "min") == "min" and mode_of("val_loss", "max") == "max"


def history(accuracies: list[float], train: list[float] | None = None) -> list[dict]:
    train = train or accuracies
    return [{"epoch": i + 1, "val_acc": a, "train_acc": t, "val_loss": 1 - a, "train_loss": 1 - t}
            for i, (a, t) in enumerate(zip(accuracies, train))]


def test_decide_without_a_criterion_or_without_values() -> None:
    # 30 epochs of rising validation error, on which UP_5 (strips of 5) would fire: no criterion, no decision
    falling = history([0.9 - 0.01 * t for t in range(30)])
    assert decide(StopConfig(criterion="up"), falling).stop
    assert decide(StopConfig(), falling) == Decision(False, 30)
    assert decide(StopConfig(criterion="patience", patience=1), [{"epoch": 1, "val_acc": None}]) == Decision(False, 1)


def test_decide_passes_the_metrics_mode_to_patience_and_plateau() -> None:
    rising = history([0.5, 0.75, 0.875])
    for criterion in ("patience", "plateau"):
        base = {"criterion": criterion, "patience": 1, "strip": 1, "strips": 1}
        assert not decide(StopConfig(**base, metric="val_acc"), rising).stop  # auto: higher accuracy is better
        assert decide(StopConfig(**base, metric="val_acc", mode="min"), rising).stop  # as told: lower is better
        assert not decide(StopConfig(**base, metric="val_loss"), rising).stop  # auto: lower loss is better


def test_decide_uses_prechelts_middle_alphas_by_default() -> None:
    # errors 0.5 then 0.52: GL 4 (not > GL_5's 5); then 0.53: GL 6
    assert not decide(StopConfig(criterion="gl"), history([0.5, 0.48])).stop
    assert decide(StopConfig(criterion="gl"), history([0.5, 0.47])).stop
    assert decide(StopConfig(criterion="gl", alpha=7.0), history([0.5, 0.47])) == Decision(
        False, 2, "", {"GL": pytest.approx(6.0)})
    # PQ_0.5 from the history: validation errors 0.5, 0.75 (GL 50), training errors 0.5, 0.25 (P_2 500): PQ 0.1
    pq = decide(StopConfig(criterion="pq", strip=2), history([0.5, 0.25], train=[0.5, 0.75]))
    assert pq == Decision(False, 2, "", {"GL": 50.0, "P": 500.0, "PQ": 0.1})
    assert decide(StopConfig(criterion="pq", strip=2, alpha=0.05), history([0.5, 0.25], train=[0.5, 0.75])).stop
    # on the losses: val_loss 0.5 -> 0.75, train_loss 0.5 -> 0.25 (1 - acc)
    by_loss = decide(StopConfig(criterion="pq", strip=2, metric="val_loss"), history([0.5, 0.25], train=[0.5, 0.75]))
    assert by_loss.values == {"GL": 50.0, "P": 500.0, "PQ": 0.1}


def test_check_refuses_what_cannot_work_and_allows_the_rest() -> None:
    check(StopConfig(), has_validation=False)  # no criterion: nothing to check
    with pytest.raises(ConfigError) as refused:
        check(StopConfig(criterion="patience"), has_validation=False)
    assert str(refused.value) == ("stop.criterion=patience needs a validation split; set data.val_fraction > 0 "
                                  "(or stop.criterion=none)")
    for criterion in ("gl", "pq", "up"):
        with pytest.raises(ConfigError, match=f"stop.criterion={criterion} works on an error"):
            check(StopConfig(criterion=criterion, metric="val_acc"), has_validation=True)
        check(StopConfig(criterion=criterion, metric="val_loss"), has_validation=True)
        check(StopConfig(criterion=criterion, metric="val_error"), has_validation=True)
    check(StopConfig(criterion="patience", metric="val_acc"), has_validation=True)
    check(StopConfig(criterion="plateau", metric="val_top5"), has_validation=True)


def trainer(accuracies: list[float], validation: bool = True) -> SimpleNamespace:
    """What EarlyStopping reads on the trainer (its validation loader, history, best epoch) and the one call
    it makes (`request_stop`), recorded in `requests`."""
    best = 1 + accuracies.index(max(accuracies)) if accuracies else None
    view = SimpleNamespace(val_batches=object() if validation else None, requests=[],
                           state=SimpleNamespace(history=history(accuracies), best_epoch=best))
    view.request_stop = lambda reason, early_stop=None: view.requests.append((reason, early_stop))
    return view


def test_the_callback_checks_its_criterion_at_the_start_and_asks_nothing() -> None:
    quiet = trainer([])
    EarlyStopping(StopConfig()).on_fit_start(quiet)
    EarlyStopping(StopConfig(criterion="patience", metric="val_acc")).on_fit_start(quiet)
    assert quiet.requests == []
    with pytest.raises(ConfigError, match="needs a validation split"):
        EarlyStopping(StopConfig(criterion="up")).on_fit_start(trainer([], validation=False))
    # armed, not fired: what run.json holds for a run whose criterion never fired (Trainer._early_stop_record)
    assert EarlyStopRecord("patience", "val_acc").to_dict() == {"criterion": "patience", "fired": False,
                                                                "metric": "val_acc", "counted": "epochs"}


def test_the_callback_stops_the_trainer_with_the_decision() -> None:
    config = StopConfig(criterion="patience", metric="val_acc", patience=2)
    going = trainer([0.5, 0.75, 0.5])
    EarlyStopping(config).on_epoch_end(going, {})
    assert going.requests == []
    stopping = trainer([0.5, 0.75, 0.5, 0.5])
    EarlyStopping(config).on_epoch_end(stopping, {})
    why = "patience 2: no improvement of more than 0 since epoch 2"
    [(reason, record)] = stopping.requests
    assert reason == f"early stop after epoch 4: {why}"
    assert record.to_dict() == {
        "criterion": "patience", "fired": True, "epoch": 4, "why": why, "values": {"best_epoch": 2.0, "waited": 2.0},
        "metric": "val_acc", "counted": "epochs", "best_epoch": 2, "restored_best": True}
    kept = trainer([0.5, 0.75, 0.5, 0.5])
    EarlyStopping(StopConfig(criterion="patience", metric="val_acc", patience=2, restore_best=False)).on_epoch_end(
        kept, {})
    assert kept.requests[0][1].restored_best is False
