"""The learning-rate range test: the pure parts (ramp, smoothing, stop rule, suggestion) on hand-made curves,
and the test itself leaving the model and optimizer as it found them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.data import DeviceBatches, ImageSet
from cnnlab.errors import ConfigError
from cnnlab.train.lr_find import exponential_rates, range_test, smooth, stop_index, suggest
from cnnlab.train.runtime import Runtime


def test_the_ramp_is_exponential_from_start_to_end() -> None:
    rates = exponential_rates(1e-7, 10.0, 9)
    assert rates[0] == pytest.approx(1e-7) and rates[-1] == pytest.approx(10.0)
    assert np.allclose(rates[1:] / rates[:-1], 10.0)  # eight decades in eight equal steps
    for start, end, steps in ((1.0, 0.1, 10), (0.0, 1.0, 10), (1e-3, 1.0, 1)):
        with pytest.raises(ConfigError):
            exponential_rates(start, end, steps)


def test_smoothing_is_bias_corrected() -> None:
    assert smooth([3.0] * 5).tolist() == pytest.approx([3.0] * 5)  # uncorrected it would start at 0.06
    # by hand: avg1 = 0.02 * 1 -> 0.02 / (1 - 0.98) = 1; avg2 = 0.98 * 0.02 + 0.02 * 2 = 0.0596 -> / 0.0396
    assert smooth([1.0, 2.0]).tolist() == pytest.approx([1.0, 0.0596 / 0.0396])
    assert math.isnan(smooth([1.0, float("nan"), 1.0])[2])  # NaN stays NaN: the stop rule sees it


def test_stop_rule_is_four_times_the_minimum_so_far_or_nan() -> None:
    assert stop_index(np.array([3.0, 2.0, 1.0, 3.9, 4.0])) is None  # 4.0 is not above 4 x 1.0
    assert stop_index(np.array([3.0, 2.0, 1.0, 3.9, 4.1, 1.0])) == 4
    assert stop_index(np.array([50.0, 60.0])) is None  # the first point sets the minimum, it cannot diverge
    assert stop_index(np.array([2.0, 1.9, float("nan")])) == 2
    assert stop_index(np.array([2.0, float("inf")])) == 1


def _curve() -> tuple[np.ndarray, np.ndarray]:
    """A flat start at 2.3, the steepest fall at lr 10^-2.5 (a logistic step in log lr), the minimum at lr 1e-1,
    then a rise: what a real range test looks like, without its noise."""
    x = np.linspace(-6, 1, 71)  # log10(lr), 0.1 apart
    loss = 2.3 - 1.5 / (1 + np.exp(-(x + 2.5) / 0.25)) + np.where(x > -1, 3 * (x + 1) ** 2, 0.0)
    return 10.0**x, loss


def test_suggestion_is_the_minimum_over_ten_and_the_steepest_point_is_reported() -> None:
    rates, loss = _curve()
    hint = suggest(rates, loss)
    assert hint.minimum_lr == pytest.approx(0.1, rel=0.3)  # where the rise begins
    assert hint.lr == pytest.approx(float(f"{hint.minimum_lr / 10:.3g}")) and hint.lr != hint.steepest_lr
    assert hint.steepest_lr == pytest.approx(10**-2.5, rel=0.01)  # the logistic's centre, not the rise after the minimum
    assert hint.falls


def test_steepest_point_is_looked_for_before_the_minimum_only() -> None:
    rates, loss = _curve()
    loss = loss.copy()
    loss[-5:] = np.linspace(6.0, 1.2, 5)  # after the rise, a plunge far steeper than the real descent (but above
    hint = suggest(rates, loss)  # the minimum): noise of a diverging run, not where to train
    assert hint.steepest_lr == pytest.approx(10**-2.5, rel=0.01)
    assert hint.minimum_lr < 1.0


def test_a_flat_curve_is_said_to_mean_little() -> None:
    rates = exponential_rates(1e-7, 10, 50)
    assert not suggest(rates, np.full(50, 2.3) + np.linspace(0, 0.01, 50)).falls
    with pytest.raises(ConfigError, match="diverged at once"):
        suggest(rates[:3], np.array([float("nan")] * 3))


def _batches() -> DeviceBatches:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8, generator=generator)
    labels = torch.arange(64) % 4
    return DeviceBatches(ImageSet(images, labels), (0.5,), (0.25,), 16, shuffle=True, drop_last=True)


def test_range_test_leaves_model_optimizer_and_random_streams_as_they_were() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batches = _batches()
    for images, labels in batches.batches():  # a model mid-training: momentum buffers, moved BN statistics
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    momentum = {i: s["momentum_buffer"].clone() for i, s in optimizer.state_dict()["state"].items()}
    rng = torch.get_rng_state()
    result = range_test(model, optimizer, batches, Runtime(torch.device("cpu"), None, False),
                        exponential_rates(1e-4, 100.0, 30))
    assert len(result.losses) >= 10 and len(set(result.losses)) > 5  # it did train, with growing rates
    assert result.rates[:3] == pytest.approx(exponential_rates(1e-4, 100.0, 30)[:3].tolist())
    after = model.state_dict()
    for key, value in weights.items():
        assert torch.equal(after[key], value), key
    for index, buffer in momentum.items():
        assert torch.equal(optimizer.state_dict()["state"][index]["momentum_buffer"], buffer)
    assert optimizer.param_groups[0]["lr"] == 0.05
    assert torch.equal(torch.get_rng_state(), rng)
