"""The verdict statistics at their edges: each case below is one that mutation testing (docs/mutation.md) showed
the hand-computed cases of test_stats.py could not tell apart from a wrong implementation: a confidence level
not passed on, a boundary taken as < instead of <=, a window a fifth instead of a quarter, a default order."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from cnnlab.evaluate import stats

Z90 = 1.6448536269514722  # the 95th percentile of the standard normal: a two-sided 90% interval


def wilson(correct: int, count: int, z: float) -> tuple[float, float]:
    """Wilson 1927 by its formula: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    p, n = correct / count, count
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def test_wilson_interval_of_one_image_and_at_another_confidence() -> None:
    z95 = 1.959963984540054
    # one image, right: [1 / (1 + z²), 1], a real interval, not the (0, 1) of no images at all
    assert stats.wilson_interval(1, 1) == pytest.approx((1 / (1 + z95 * z95), 1.0), abs=1e-9)
    assert stats.wilson_interval(8, 10, confidence=0.90) == pytest.approx(wilson(8, 10, Z90), abs=1e-9)
    assert stats.wilson_interval(3, 0) == (0.0, 1.0) and stats.wilson_interval(0, -1) == (0.0, 1.0)


def test_discordant_counts_read_any_truthy_per_image_results() -> None:
    # per-image correctness read back as floats (a CSV, a numpy file): 1.0 right, 0.0 wrong
    assert stats.discordant_counts(np.array([1.0, 0.0, 1.0, 1.0]), np.array([0.0, 1.0, 1.0, 0.0])) == (2, 1)
    assert stats.discordant_counts([True, False], np.array([0.0, 1.0])) == (1, 1)


def test_mcnemar_says_what_it_is_in_every_case() -> None:
    same = np.array([1, 0, 1, 1], dtype=bool)
    agree = stats.mcnemar(same, same)
    assert (agree.method, agree.seeds, agree.discordant) == ("McNemar exact", 1, (0, 0))
    row, reference = np.zeros(100, dtype=bool), np.zeros(100, dtype=bool)
    row[:3], reference[3] = True, True
    result = stats.mcnemar(row, reference)
    assert (result.method, result.seeds, result.discordant) == ("McNemar exact", 1, (3, 1))


def test_mcnemar_interval_at_another_alpha_is_clopper_pearson_at_that_level() -> None:
    row, reference = np.zeros(100, dtype=bool), np.zeros(100, dtype=bool)
    row[:3], reference[3] = True, True
    # b = 3, c = 1: the 90% Clopper-Pearson interval of 3/4 is the beta quantiles at 5% and 95%
    low, high = scipy_stats.beta.ppf(0.05, 3, 2), scipy_stats.beta.ppf(0.95, 4, 1)
    result = stats.mcnemar(row, reference, alpha=0.10)
    assert result.low == pytest.approx((2 * low - 1) * 4 / 100, abs=1e-9)
    assert result.high == pytest.approx((2 * high - 1) * 4 / 100, abs=1e-9)
    wide = stats.mcnemar(row, reference)
    assert wide.low < result.low and result.high < wide.high


def test_paired_seeds_says_how_many_seeds_and_why_it_refuses_one() -> None:
    shifted = stats.paired_seeds([0.6, 0.7], [0.5, 0.6])  # no spread: the early return
    assert shifted.method == "paired t (2 seeds)" and shifted.seeds == 2
    with pytest.raises(ValueError, match="^a paired interval over seeds needs at least two seeds$"):
        stats.paired_seeds([0.8], [0.7])
    # alpha reaches the interval: 90% with t(0.95, 2) = 2.919986 (differences 0.02, 0.02, 0.01, sem 0.0033333)
    result = stats.paired_seeds([0.80, 0.82, 0.81], [0.78, 0.80, 0.80], alpha=0.10)
    assert result.low == pytest.approx(1 / 60 - 2.919986 * 0.0033333, abs=1e-6)


def test_the_same_shift_on_every_seed_is_no_evidence_even_through_rounding() -> None:
    # 0.7 - 0.5 and 0.8 - 0.6 are 0.19999999999999996 and 0.20000000000000007: a spread of 1e-16, not a real one
    shifted = stats.paired_seeds([0.7, 0.8], [0.5, 0.6])
    assert shifted.p_value == 1.0 and shifted.low is None and shifted.high is None
    assert shifted.delta == pytest.approx(0.2)
    assert stats.verdict(shifted, shifted.p_value, min_effect=0.005) == "within noise"
    real = stats.paired_seeds([0.7, 0.8], [0.5, 0.6 + 1e-6])  # a spread of a millionth is a spread
    assert real.p_value < 0.01 and real.low < real.high
    # the rounding allowance is 1e-12 of the shift's size, at least 1e-12: a standard error of 1.5e-12 on a
    # shift of 0.1 is a spread, one of 5e-12 on a shift of 10 is rounding
    assert stats.paired_seeds([0.1, 0.1 + 3e-12], [0.0, 0.0]).p_value < 1e-6
    assert stats.paired_seeds([10.0, 10.0 + 1e-11], [0.0, 0.0]).p_value == 1.0


def test_verdict_boundaries_are_strict() -> None:
    touching_high = stats.Comparison(0.0, -0.004, 0.005, 0.5, "t", 3)
    assert stats.verdict(touching_high, 1.0, min_effect=0.005) == "within noise"  # inside means strictly inside
    significant = stats.Comparison(0.02, 0.01, 0.03, 0.05, "t", 3)
    assert stats.verdict(significant, 0.05, min_effect=0.005) == "within noise"  # p == alpha is not below it
    assert stats.verdict(significant, 0.05, min_effect=0.005, alpha=0.06) == "better"


def test_at_chance_at_its_edges_and_confidence() -> None:
    # every one of 50 images right, one class: a guess is always right (1/C = 1), so no accuracy beats it
    assert stats.at_chance(50, 50, 1) is True
    # at confidence 0 the interval is the point 1/10 itself: its lower end *is* chance, which is at chance
    assert stats.wilson_interval(1, 10, 0.0) == (0.1, 0.1) and stats.at_chance(1, 10, 10, confidence=0.0) is True
    # 13 of 100 with ten classes: the 95% interval [7.8%, 21.0%] holds 10%, the 50% interval [11.1%, 15.2%] not
    assert stats.at_chance(13, 100, 10) is True
    assert stats.at_chance(13, 100, 10, confidence=0.5) is False


def test_still_learning_window_is_a_quarter_of_the_epochs() -> None:
    # 20 epochs: the window is the last 5 (a quarter); 0.95 then 0.90..0.93 is no trend over those five
    # (tau 0.2), though the last four alone rise perfectly (p = 1/24 < 0.05)
    curve = [0.5] * 15 + [0.95, 0.90, 0.91, 0.92, 0.93]
    assert stats.still_learning(curve) is False
    assert stats.still_learning(curve[-4:]) is True


def test_still_learning_needs_a_rising_slope_and_p_below_alpha() -> None:
    # 32 epochs, window 8: six equal values then two higher ones. Kendall's tau is significant (p = 0.023) but
    # the Theil-Sen slope (the median of the pairwise slopes, most of them 0) is 0: not still rising
    tail = [0.5] * 6 + [0.6, 0.6]
    assert scipy_stats.kendalltau(np.arange(8), tail, alternative="greater").pvalue < 0.05
    assert stats.still_learning([0.1] * 24 + tail) is False
    # four epochs rising perfectly: p is exactly 1/24, so significant below 0.05, not at alpha = 1/24
    assert stats.still_learning([0.1, 0.2, 0.3, 0.4]) is True
    assert stats.still_learning([0.1, 0.2, 0.3, 0.4], alpha=1 / 24) is False


def test_still_learning_reads_alpha() -> None:
    # 24 epochs, window 6, three inversions in it: one-sided p = 49/720 = 0.068, between 0.05 and 0.10
    curve = [0.1] * 18 + [0.3, 0.1, 0.2, 0.5, 0.4, 0.6]
    assert stats.still_learning(curve) is False and stats.still_learning(curve, alpha=0.10) is True


def _same_ranking_as(order: np.ndarray) -> list[float]:
    """Distinct values whose descending order is `order`."""
    values = np.empty(len(order))
    values[order] = 1.0 - np.arange(len(order)) / 100
    return values.tolist()


def test_ranking_agreement_keeps_tied_rows_in_table_order() -> None:
    # 24 rows tied in pairs: ties keep the table's order (a stable sort), so a final ranking in that order has not
    # changed; an unstable sort (numpy's default beyond 16 elements) would report a change that is not there
    tied = [0.7, 0.7, 0.6, 0.6] * 6
    in_table_order = np.argsort(-np.asarray(tied), kind="stable")
    assert stats.ranking_agreement(tied, _same_ranking_as(in_table_order))[0] is False
    assert stats.ranking_agreement(_same_ranking_as(in_table_order), tied)[0] is False


def test_ranking_agreement_of_an_undefined_tau_is_one() -> None:
    changed, tau = stats.ranking_agreement([0.5, 0.5], [0.6, 0.7])  # Kendall's tau of a constant is undefined
    assert changed is False and tau == 1.0  # and a tie at half the budget is no change of order
