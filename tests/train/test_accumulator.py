"""train/accumulator.py: the epoch's sums on the device. The non-finite flag is read off the float64 loss
sum (a NaN/Inf step loss poisons it for good), so every NaN/Inf pattern must still be seen, the sums must
equal float64 arithmetic exactly, and an interrupted epoch's saved sums (flag included) must come back."""

from __future__ import annotations

import math

import pytest
import torch

from cnnlab.train.accumulator import Accumulator

LABELS = torch.tensor([0, 1, 2, 1])
LOGITS = torch.eye(3)[[0, 1, 1, 1]] * 5  # predicted 0, 1, 1, 1: three of four correct


def filled(losses: list[float]) -> Accumulator:
    acc = Accumulator(torch.device("cpu"), len(losses))
    for index, loss in enumerate(losses):
        acc.add(index, torch.tensor(loss, dtype=torch.float32), LOGITS, LABELS)
    return acc


@pytest.mark.parametrize("losses", [
    [2.3, math.nan, 1.0], [math.inf, 1.0], [1.0, -math.inf], [math.inf, -math.inf], [1.0, 2.0, math.nan],
    [math.nan],
])
def test_any_nonfinite_step_loss_is_seen_however_the_epoch_goes_on(losses: list[float]) -> None:
    acc = filled(losses)
    assert acc.read()[2] is True and bool(acc.nonfinite)
    assert bool(acc.tensors()["partial.nonfinite"])


def test_finite_losses_sum_exactly_as_float64_and_large_ones_do_not_overflow() -> None:
    losses = [2.302585, 1e-7, 0.6931472, 3.0e38, 3.0e38]  # near float32's largest: x4 and summed, still finite
    acc = filled(losses)
    expected = sum(float(torch.tensor(v, dtype=torch.float32)) * 4 for v in losses)
    assert acc.loss_sum.item() == expected and acc.read()[2] is False
    assert acc.read()[0] == pytest.approx(expected / 20) and acc.read()[1] == 15 / 20
    assert acc.step_losses.tolist() == [float(torch.tensor(v, dtype=torch.float32)) for v in losses]


def test_saved_sums_and_flag_come_back_on_resume() -> None:
    for losses in ([1.5, 0.5], [1.5, math.nan]):
        saved = filled(losses)
        resumed = Accumulator(torch.device("cpu"), 2)
        resumed.load({k: v.clone() for k, v in saved.tensors().items()}, {"seconds": 1.0, "count": saved.count})
        assert resumed.read()[2] is saved.read()[2] and resumed.count == 8
        if not saved.read()[2]:
            assert resumed.read() == saved.read()
    flagged = filled([1.0])  # a checkpoint whose flag says NaN though its sum is finite: the flag wins
    tensors = {**flagged.tensors(), "partial.nonfinite": torch.tensor(True)}
    resumed = Accumulator(torch.device("cpu"), 1)
    resumed.load(tensors, {"seconds": 0.0, "count": 4})
    assert resumed.read()[2] is True
