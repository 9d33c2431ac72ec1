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
from cnnlab.train.lr_find import (
    DEFAULT_RULE,
    RULES,
    exponential_rates,
    range_test,
    smooth,
    stop_index,
    suggest,
    valley_index,
)
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


def test_each_rule_reads_the_curve_and_the_default_rule_is_the_suggestion() -> None:
    rates, loss = _curve()
    hint = suggest(rates, loss)
    assert hint.minimum_lr == pytest.approx(0.1, rel=0.3)  # where the rise begins
    assert hint.candidates["minimum/10"] == pytest.approx(float(f"{hint.minimum_lr / 10:.3g}"))
    assert hint.steepest_lr == pytest.approx(10**-2.5, rel=0.01)  # the logistic's centre, not the rise after the minimum
    # the valley: the whole falling part (a smooth curve falls at every point up to its minimum), read 1/3 + 1/6 of
    # the way along as fastai does, after the first tenth of the points and before the last five
    skip, lowest = len(loss) // 10, int(np.argmin(loss))
    along = (lowest - skip - (-1)) / 3  # fastai's start is one before the run's first point
    assert hint.candidates["valley"] == pytest.approx(float(f"{rates[skip - 1 + int(along) + int(along / 2)]:.3g}"))
    assert set(hint.candidates) == set(RULES) and hint.rule == DEFAULT_RULE
    assert hint.lr == hint.candidates[DEFAULT_RULE] and DEFAULT_RULE not in hint.alternatives
    assert hint.falls and hint.why is None
    other = suggest(rates, loss, rule="steepest")
    assert other.lr == other.candidates["steepest"] and "minimum/10" in other.alternatives
    with pytest.raises(ConfigError, match="valley, steepest, minimum/10"):
        suggest(rates, loss, rule="middle")


def test_valley_is_fastais_longest_falling_run_read_a_half_way_along() -> None:
    # by hand, as fastai v2.5's `valley`: the longest decreasing subsequence ends at index 8 (nine points, the 5.0
    # after it does not fall); start = 8 - 9 = -1, a third of (8 - -1) is 3, so the index is -1 + 3 + int(1.5) = 3
    assert valley_index(np.array([3.0, 2.9, 2.8, 2.7, 2.6, 2.5, 2.4, 2.3, 2.2, 5.0])) == 3
    # a bump is stepped over: 3.0 2.9 [3.5] 2.8 ... 2.4 falls over seven points to index 7: start 7 - 7 = 0, a
    # third of 7 is 2.33, so the index is 0 + 2 + int(1.17) = 3 (fastai's reading lands on the bump itself)
    assert valley_index(np.array([3.0, 2.9, 3.5, 2.8, 2.7, 2.6, 2.5, 2.4, 6.0])) == 3


def test_steepest_point_is_looked_for_before_the_minimum_only() -> None:
    rates, loss = _curve()
    loss = loss.copy()
    loss[-5:] = np.linspace(6.0, 1.2, 5)  # after the rise, a plunge far steeper than the real descent (but above
    hint = suggest(rates, loss)  # the minimum): noise of a diverging run, not where to train
    assert hint.steepest_lr == pytest.approx(10**-2.5, rel=0.01)
    assert hint.minimum_lr < 1.0


def test_no_rule_suggests_a_rate_at_or_past_the_divergence() -> None:
    rates, loss = _curve()
    cut = int(np.argmin(loss)) + 3  # the test stopped three points after the minimum
    hint = suggest(rates[:cut], loss[:cut], diverged_lr=float(rates[cut]))
    assert hint.diverged_lr == rates[cut] and all(lr < rates[cut] for lr in hint.candidates.values())
    assert hint.lr is not None


def test_a_test_that_diverges_before_the_loss_falls_gives_no_suggestion_and_says_why() -> None:
    rates = exponential_rates(1.0, 1e4, 20)
    rising = np.array([2.3, 2.4, 2.9, 4.0, 6.0])  # up from the first step: every rate was too high
    hint = suggest(rates[:4], rising[:4], diverged_lr=float(rates[4]))
    assert hint.lr is None and not hint.falls
    assert hint.why.startswith(f"the loss diverged at lr {rates[4]:.3g} before it fell")
    assert "lower --start" in hint.why
    nan = suggest(rates[:3], np.array([float("nan")] * 3), diverged_lr=float(rates[0]))
    assert nan.lr is None and nan.candidates == {} and "diverged at once" in nan.why


def test_a_flat_curve_is_said_to_mean_little() -> None:
    rates = exponential_rates(1e-7, 10, 50)
    flat = suggest(rates, np.full(50, 2.3) + np.linspace(0, 0.01, 50))
    assert not flat.falls and flat.lr is not None  # it reached --end without diverging: a weak suggestion, said so


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
