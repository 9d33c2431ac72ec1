"""The checks before a run is believed: each verdict on hand-made numbers, the cheap checks leaving the
model and the random streams as they were, and the overfit-one-batch test passing and failing."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cnnlab.api import make_config
from cnnlab.data import ImageSet
from cnnlab.train.build import make_model, splits_of
from cnnlab.train.checks import (
    balance_check,
    cheap_checks,
    initial_loss_check,
    input_check,
    label_check,
    overfit_one_batch,
)
from cnnlab.train.runtime import Runtime, resolve_runtime

LN10 = math.log(10)
CPU = Runtime(torch.device("cpu"), None, False)


def _logits(rows: int = 32, classes: int = 10, scale: float = 0.1) -> torch.Tensor:
    return torch.randn(rows, classes, generator=torch.Generator().manual_seed(0)) * scale


def test_initial_loss_near_ln_c_is_ok_and_far_off_warns_with_causes() -> None:
    assert initial_loss_check(LN10 * 1.02, 10, _logits()).status == "ok"
    assert initial_loss_check(LN10 * 1.99, 10, _logits()).status == "ok"  # the thresholds: 2 x and 0.5 x ln C
    high = initial_loss_check(LN10 * 2.01, 10, _logits())
    assert high.status == "warning" and "weight init" in high.summary and "normalisation" in high.summary
    low = initial_loss_check(LN10 * 0.3, 10, _logits())
    assert low.status == "warning" and "label leaks into the input" in low.summary
    assert high.details["ratio"] == pytest.approx(2.01)
    assert initial_loss_check(LN10 * 0.51, 10, _logits()).status == "ok"
    assert initial_loss_check(float("nan"), 10, _logits()).status == "failed"
    # weights loaded from a trained model: far below ln C is expected, not a warning
    assert initial_loss_check(LN10 * 0.1, 10, _logits(), from_weights=True).status == "ok"


def test_a_final_softmax_or_relu_is_named_even_when_the_loss_looks_right() -> None:
    probabilities = torch.softmax(_logits(), dim=1)
    softmax = initial_loss_check(LN10, 10, probabilities)  # a double softmax sits at ln C: the ratio alone misses it
    assert softmax.status == "warning" and "softmax" in softmax.summary
    relu = initial_loss_check(LN10 * 1.05, 10, _logits().relu())
    assert relu.status == "warning" and "ReLU" in relu.summary


def test_labels_out_of_range_fail_with_their_count() -> None:
    images = torch.zeros(4, 1, 2, 2, dtype=torch.uint8)
    good = ImageSet(images, torch.tensor([0, 1, 2, 2]))
    bad = ImageSet(images, torch.tensor([0, 3, 7, -1]))
    assert label_check({"train": good, "val": None, "test": good}, 3).status == "ok"
    result = label_check({"train": good, "val": None, "test": bad}, 3)
    assert result.status == "failed"
    assert result.details["out_of_range"] == {"test": {"count": 3, "min": -1, "max": 7}}


def test_balance_warns_on_an_empty_class_and_an_order_of_magnitude() -> None:
    def split(counts: list[int]) -> ImageSet:
        labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
        return ImageSet(torch.zeros(len(labels), 1, 1, 1, dtype=torch.uint8), labels)

    classes = ("a", "b", "c")
    even = balance_check({"train": split([20, 18, 22]), "test": split([5, 5, 5])}, classes)
    assert even.status == "ok" and even.details["train"]["ratio"] == pytest.approx(22 / 18)
    skewed = balance_check({"train": split([40, 4, 3]), "test": split([5, 5, 5])}, classes)
    assert skewed.status == "warning" and "from 3 to 40 images (13 x)" in skewed.summary
    empty = balance_check({"train": split([20, 20, 0]), "test": split([5, 5, 5])}, classes)
    assert empty.status == "warning" and "1 class(es) have no train images (c)" in empty.summary
    assert empty.details["train"]["empty"] == ["c"]


@pytest.mark.parametrize("normalize,mean,std,low,high,status", [
    ("standard", [0.01], [0.99], -1.0, 3.0, "ok"),
    ("standard", [0.6], [1.0], -1.0, 3.0, "warning"),  # normalised twice, or with another set's statistics
    ("standard", [0.0], [0.2], -0.3, 0.3, "warning"),
    ("standard", [0.0], [0.0], 0.0, 0.0, "warning"),  # constant inputs
    ("centered", [0.0], [0.3], -0.5, 0.5, "ok"),
    ("centered", [0.2], [0.3], -0.5, 0.9, "warning"),
    ("unit", [0.4], [0.3], 0.0, 1.0, "ok"),
    ("unit", [100.0], [60.0], 0.0, 255.0, "warning"),  # not normalised at all
    ("imagenet", [-0.4, 0.1, 0.3], [1.1, 0.9, 1.2], -2.1, 2.6, "ok"),
    ("standard", [float("nan")], [1.0], -1.0, 1.0, "failed"),
])
def test_input_statistics_against_the_normalisation(normalize, mean, std, low, high, status) -> None:
    assert input_check(normalize, mean, std, low, high, 256).status == status


def test_cheap_checks_on_digits_leave_model_and_random_streams_untouched() -> None:
    config = make_config(None, ["data=digits", "model=convnet", "model.batch_norm=true", "model.dropout=0.5",
                                "device=cpu"])
    splits = splits_of(config)
    runtime = resolve_runtime(config)
    torch.manual_seed(0)
    model = make_model(config.model, splits.spec, runtime)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    checks = {c.name: c for c in cheap_checks(model, splits, runtime, config)}
    assert [c.status for c in checks.values()] == ["ok"] * 5, [c.summary for c in checks.values()]
    assert set(checks) == {"labels", "initial_loss", "balance", "inputs", "leakage"}
    assert checks["initial_loss"].details["ratio"] == pytest.approx(1.0, abs=0.1)
    assert checks["inputs"].details["mean"][0] == pytest.approx(0.0, abs=0.1)  # 'standard' over the train split
    assert checks["inputs"].details["std"][0] == pytest.approx(1.0, abs=0.1)
    assert checks["balance"].details["test"]["min"] >= 30  # digits: ~36 test images of each digit
    for key, value in model.state_dict().items():  # batch-norm running statistics included
        assert torch.equal(value, before[key]), key
    assert torch.equal(torch.get_rng_state(), rng)  # dropout drew from a forked generator


def test_overfit_one_batch_passes_with_a_working_lr_and_fails_with_a_useless_one() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(32, 1, 6, 6, generator=generator)
    labels = torch.arange(32) % 4

    def attempt(lr: float):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(36, 64), nn.ReLU(), nn.Linear(64, 4))
        return overfit_one_batch(model, torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9), images, labels,
                                 CPU, steps=150)

    learnt = attempt(0.1)
    assert learnt.status == "ok" and learnt.details["accuracy"] == 1.0 and learnt.details["steps"] < 150
    stuck = attempt(1e-7)
    assert stuck.status == "failed" and stuck.details["steps"] == 150 and stuck.details["accuracy"] < 0.5
    assert "learning rate too low or too high" in stuck.summary
