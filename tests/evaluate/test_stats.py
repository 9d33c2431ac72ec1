"""The verdict statistics on hand-computed cases: each number below is worked out in the comment beside it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnlab.evaluate import stats


def test_wilson_interval_is_the_score_formula():
    # Wilson 1927: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), p = 8/10, z = 1.959964
    z, n, p = 1.959963984540054, 10, 0.8
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = stats.wilson_interval(8, 10)
    assert low == pytest.approx((centre - half) / (1 + z * z / n), abs=1e-9)
    assert high == pytest.approx((centre + half) / (1 + z * z / n), abs=1e-9)
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)


def test_mcnemar_counts_the_discordant_cells_the_right_way_round():
    # 20 images: 10 only the row gets right, 2 only the reference, 5 both, 3 neither
    row = np.array([1] * 10 + [0] * 2 + [1] * 5 + [0] * 3, dtype=bool)
    reference = np.array([0] * 10 + [1] * 2 + [1] * 5 + [0] * 3, dtype=bool)
    assert stats.discordant_counts(row, reference) == (10, 2)
    result = stats.mcnemar(row, reference)
    # exact two-sided: 2 * P(X <= 2 | n = 12, 1/2) = 2 * (1 + 12 + 66) / 4096
    assert result.p_value == pytest.approx(2 * 79 / 4096)
    assert result.delta == pytest.approx(8 / 20)
    assert result.low < result.delta < result.high and result.low > 0
    swapped = stats.mcnemar(reference, row)
    assert swapped.delta == pytest.approx(-8 / 20) and swapped.discordant == (2, 10)
    assert swapped.high < 0 and swapped.low == pytest.approx(-result.high) and swapped.high == pytest.approx(-result.low)


def test_mcnemar_of_identical_predictions_is_exactly_zero():
    same = np.array([1, 0, 1, 1], dtype=bool)
    result = stats.mcnemar(same, same)
    assert (result.delta, result.low, result.high, result.p_value) == (0.0, 0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="different lengths"):
        stats.mcnemar(same, same[:3])


def test_mcnemar_interval_is_the_clopper_pearson_interval_mapped_to_delta():
    # b = 3, c = 1 of n = 100: Clopper-Pearson 95% of 3/4 is [0.194120, 0.993690] (beta quantiles)
    row = np.zeros(100, dtype=bool)
    reference = np.zeros(100, dtype=bool)
    row[:3] = True
    reference[3] = True
    result = stats.mcnemar(row, reference)
    assert result.low == pytest.approx((2 * 0.194120 - 1) * 4 / 100, abs=1e-5)
    assert result.high == pytest.approx((2 * 0.993690 - 1) * 4 / 100, abs=1e-5)


def test_paired_t_interval_over_three_seeds():
    # differences 0.02, 0.02, 0.01: mean 1/60, sd 0.0057735, sem 0.0033333, t(0.975, 2) = 4.302653
    result = stats.paired_seeds([0.80, 0.82, 0.81], [0.78, 0.80, 0.80])
    assert result.delta == pytest.approx(1 / 60)
    assert result.low == pytest.approx(1 / 60 - 4.302653 * 0.0033333, abs=1e-6)
    assert result.high == pytest.approx(1 / 60 + 4.302653 * 0.0033333, abs=1e-6)
    assert result.seeds == 3 and result.method == "paired t (3 seeds)"
    # t = (1/60) / (0.0057735 / sqrt 3) = 5.0 with 2 df: two-sided p = 0.037750
    assert result.p_value == pytest.approx(0.037750, abs=1e-5)
    with pytest.raises(ValueError):
        stats.paired_seeds([0.8], [0.7])


def test_paired_seeds_with_no_spread_has_no_interval_at_all():
    # every seed moved by the same amount: no zero-width "95% interval" (false certainty), and no test passes
    same = stats.paired_seeds([0.5, 0.6], [0.5, 0.6])
    assert (same.delta, same.low, same.high, same.p_value) == (0.0, None, None, 1.0)
    assert stats.verdict(same, same.p_value, min_effect=0.005) == "within noise"  # never 'equivalent' either
    shifted = stats.paired_seeds([0.6, 0.7], [0.5, 0.6])  # t undefined: never significant, so never 'better'
    assert shifted.p_value == 1.0 and shifted.low is None and shifted.high is None
    assert stats.verdict(shifted, shifted.p_value, min_effect=0.005) == "within noise"


def test_holm_step_down():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01 = 0.03, 2 x 0.03 = 0.06, max(0.06, 1 x 0.04) = 0.06
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([None, 0.5, None, 0.2]) == [None, pytest.approx(0.5), None, pytest.approx(0.4)]
    assert stats.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])


@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_never_lowers_a_p_value_and_keeps_the_order(p_values):
    adjusted = stats.holm(p_values)
    assert all(a >= p - 1e-15 and a <= 1.0 for a, p in zip(adjusted, p_values))
    order = np.argsort(p_values, kind="stable")
    assert all(adjusted[order[i]] <= adjusted[order[i + 1]] for i in range(len(order) - 1))


def _comparison(delta, low, high):
    return stats.Comparison(delta, low, high, 0.0, "test", 3)


def test_one_seed_never_gets_a_word_about_the_configurations():
    # McNemar's exact test on one seed: whatever its p, the word is '1 seed' (calibration: 40% of null rows were
    # called better/worse by McNemar's words on an under-trained net)
    found = stats.Comparison(0.05, 0.03, 0.07, 1e-9, "McNemar exact", 1, (60, 10))
    assert stats.verdict(found, 1e-9, min_effect=0.5) == "1 seed"
    assert stats.verdict(stats.Comparison(0.0, -0.001, 0.001, 1.0, "McNemar exact", 1), 1.0, 0.005) == "1 seed"
    words = stats.verdict_words(np.array([0.1, 0.1]), np.array([0.05, 0.05]), np.array([0.15, 0.15]),
                                np.array([0.001, 0.001]), np.array([1, 2]), 0.005)
    assert words.tolist() == ["1 seed", "better"]


def test_verdict_words():
    assert stats.verdict(_comparison(0.001, -0.002, 0.004), 0.001, min_effect=0.005) == "equivalent"
    assert stats.verdict(_comparison(0.02, 0.01, 0.03), 0.01, min_effect=0.005) == "better"
    assert stats.verdict(_comparison(-0.02, -0.03, -0.01), 0.01, min_effect=0.005) == "worse"
    assert stats.verdict(_comparison(0.02, -0.01, 0.05), 0.30, min_effect=0.005) == "within noise"
    # significant before correction but not after it: noise
    assert stats.verdict(_comparison(0.02, 0.001, 0.04), 0.08, min_effect=0.005) == "within noise"
    # an interval touching the margin is not inside it
    assert stats.verdict(_comparison(0.0, -0.005, 0.004), 1.0, min_effect=0.005) == "within noise"


def test_at_chance():
    assert stats.at_chance(105, 1000, 10)  # 10.5% of ten classes: interval [8.8%, 12.5%] holds 10%
    assert not stats.at_chance(150, 1000, 10)
    assert stats.at_chance(50, 1000, 10)  # below chance: no better than a guess, learned nothing either
    assert stats.at_chance(896, 10000, 10)  # interval [8.4%, 9.6%]: below 10%
    assert not stats.at_chance(1105, 10000, 10)  # interval [10.5%, 11.7%]: above it, barely
    assert stats.at_chance(1, 4, 2)


def test_still_learning_is_the_exact_mann_kendall_test_so_a_plateau_is_not_a_trend():
    # a strictly rising 4-epoch window: S = 6 is the largest of 4! = 24 orders, p = 1/24 = 0.042 < 0.05
    assert stats.still_learning([0.1, 0.2, 0.3, 0.4]) is True
    # a tie inside a rise: S = 5, reached only by the 2 of 24 orders that keep it sorted, p = 1/12 = 0.083; the
    # tie-corrected normal approximation gave 0.035, below the 0.042 of a strictly rising 4-epoch curve
    assert stats.still_learning([0.5, 0.6, 0.6, 0.7]) is False
    assert stats.still_learning([0.5, 0.6, 0.6, 0.7], alpha=0.09) is True
    # one step up then a plateau: S = 3, reached by 6 of the 24 orders, p = 0.25
    assert stats.still_learning([0.5, 0.6, 0.6, 0.6]) is False
    assert stats.still_learning([0.5, 0.5, 0.6, 0.6]) is False
    assert stats.still_learning([0.5, 0.6, 0.6, 0.6], alpha=0.26) is True  # p is exactly 0.25
    assert stats.still_learning([0.5, 0.6, 0.6, 0.6], alpha=0.25) is False  # strictly below alpha


def test_still_learning_reads_a_trend_not_one_epoch():
    rising = [0.1 * i for i in range(1, 21)]
    assert stats.still_learning(rising) is True
    plateau = [0.5, 0.6, 0.7, 0.8] + [0.9, 0.91, 0.89, 0.9, 0.905, 0.895, 0.9, 0.91]
    assert stats.still_learning(plateau) is False
    falling_then_one_jump = [0.9, 0.88, 0.87, 0.86, 0.95]
    assert stats.still_learning(falling_then_one_jump) is False
    assert stats.still_learning([0.1, 0.2, 0.3]) is None
    assert stats.still_learning([None, 0.1, 0.2, 0.3, 0.4]) is True


def test_ranking_agreement_ignores_ties():
    # two rows tied at half the budget and ordered at the end (or the reverse) did not change places
    assert stats.ranking_agreement([0.5, 0.5], [0.6, 0.7])[0] is False
    assert stats.ranking_agreement([0.5, 0.6], [0.7, 0.7])[0] is False
    assert stats.ranking_agreement([0.5, 0.6, 0.6], [0.5, 0.7, 0.6])[0] is False  # a tie broken, not reversed
    assert stats.ranking_agreement([0.5, 0.6, 0.6], [0.8, 0.7, 0.6])[0] is True  # rows 1 and 2 swapped


def test_ranking_agreement():
    changed, tau = stats.ranking_agreement([0.5, 0.6, 0.7], [0.8, 0.7, 0.6])
    assert changed and tau == pytest.approx(-1.0)
    same, tau = stats.ranking_agreement([0.5, 0.6, 0.7], [0.6, 0.7, 0.9])
    assert not same and tau == pytest.approx(1.0)
    assert stats.ranking_agreement([0.5], [0.6]) == (False, 1.0)
