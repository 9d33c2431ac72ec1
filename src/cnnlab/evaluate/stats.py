"""The statistics behind a verdict: is a difference in accuracy real, and does a run's number mean anything?

Every function here is pure (numbers in, numbers out) and every distribution comes from scipy.stats; the
only thing written by hand is Holm's step-down correction, which scipy does not have.

- One accuracy: the Wilson score interval (Wilson 1927), via `scipy.stats.binomtest(...).proportion_ci`.
  It keeps its coverage near 95% at small n and near 0% / 100%, where the normal (Wald) interval fails.
- Two models on the same images, one seed each: McNemar's exact test (McNemar 1947; recommended by
  Dietterich 1998, "Approximate statistical tests for comparing supervised classification learning
  algorithms", for a single train/test split). Only the discordant images carry information: b = images
  the row gets right and the reference wrong, c = the reverse; under "no difference" b ~ Binomial(b + c, 1/2).
  The interval for the difference in accuracy Δ = (b - c) / n is the exact (Clopper-Pearson) interval of
  p = b / (b + c), mapped through Δ = (2p - 1)(b + c) / n: conditional on the discordant count, as the test
  is, so the interval and the test agree. It says nothing about seed-to-seed variance (Bouthillier et al.
  2021, "Accounting for variance in machine learning benchmarks": a second seed can move accuracy by more
  than many published gains).
- Two models over several paired seeds (same seed -> same split, same initialisation stream): the paired
  t interval of the per-seed differences (Student's t with n - 1 degrees of freedom), which does cover
  seed-to-seed variance.
- Several rows of one table: Holm's step-down correction (Holm 1979) of the p-values, which controls the
  family-wise error rate without assuming the rows are independent.
- A verdict word: `equivalent` when the whole (1 - alpha) interval of Δ lies inside ±min_effect (a two
  one-sided tests reading: the difference is known to be smaller than what matters), else `better` /
  `worse` when the Holm-adjusted p-value is below alpha, else `within noise`.
- At chance: the Wilson interval of the accuracy contains 1 / C or lies below it (no better than a guess).
- Still learning: the validation accuracy over the last quarter of the epochs rises by Kendall's tau
  against the epoch number (the Mann-Kendall trend test, one-sided; robust to a single noisy epoch,
  unlike comparing the last two values) with a positive Theil-Sen slope.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np


def _scipy_stats() -> ModuleType:
    """scipy.stats, imported on first use: importing it costs ~1.3 s of CPU (measured on a 2-core EPYC), which
    every `cnnlab` command would pay at start-up, though only tables, verdicts and eval use it."""
    from scipy import stats

    return stats


VERDICTS = ("better", "worse", "equivalent", "within noise")


@dataclass(frozen=True)
class Comparison:
    """Δ (row minus reference, as a fraction of 1) with its interval and p-value, and how it was computed."""

    delta: float
    low: float
    high: float
    p_value: float
    method: str  # 'paired t (n seeds)' or 'McNemar exact'
    seeds: int  # seeds shared by the row and its reference
    discordant: tuple[int, int] | None = None  # McNemar's (row right & reference wrong, the reverse)


def wilson_interval(correct: int, count: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of an accuracy of `correct` out of `count` (both ends as fractions)."""
    if count <= 0:
        return (0.0, 1.0)
    test = _scipy_stats().binomtest(int(correct), int(count))
    interval = test.proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def discordant_counts(row_correct: np.ndarray, reference_correct: np.ndarray) -> tuple[int, int]:
    """(images the row gets right and the reference wrong, images the reference gets right and the row wrong)."""
    row = np.asarray(row_correct, dtype=bool)
    reference = np.asarray(reference_correct, dtype=bool)
    if row.shape != reference.shape:
        raise ValueError(f"per-image results of different lengths ({row.shape} vs {reference.shape})")
    return int(np.count_nonzero(row & ~reference)), int(np.count_nonzero(~row & reference))


def mcnemar(row_correct: np.ndarray, reference_correct: np.ndarray, alpha: float = 0.05) -> Comparison:
    """McNemar's exact test of two models' per-image correctness on the same images, with Δ's interval."""
    better, worse = discordant_counts(row_correct, reference_correct)
    count = len(np.asarray(row_correct))
    discordant = better + worse
    if discordant == 0:  # the two models agree on every image: no evidence of any difference, Δ is exactly 0
        return Comparison(0.0, 0.0, 0.0, 1.0, "McNemar exact", 1, (better, worse))
    test = _scipy_stats().binomtest(better, discordant, 0.5)
    interval = test.proportion_ci(confidence_level=1 - alpha, method="exact")
    scale = discordant / count
    return Comparison(
        delta=(better - worse) / count, low=(2 * float(interval.low) - 1) * scale,
        high=(2 * float(interval.high) - 1) * scale, p_value=float(test.pvalue), method="McNemar exact",
        seeds=1, discordant=(better, worse),
    )


def paired_seeds(row: Sequence[float], reference: Sequence[float], alpha: float = 0.05) -> Comparison:
    """The paired t interval and test of the per-seed differences row[i] - reference[i] (two or more seeds)."""
    differences = np.asarray(row, dtype=float) - np.asarray(reference, dtype=float)
    n = len(differences)
    if n < 2:
        raise ValueError("a paired interval over seeds needs at least two seeds")
    mean = float(differences.mean())
    spread = float(_scipy_stats().sem(differences))
    method = f"paired t ({n} seeds)"
    # every seed moved by exactly the same amount: t is undefined, and a spread of zero over a few seeds is luck,
    # not certainty: no test passes. "Exactly" up to rounding: 0.7 - 0.5 and 0.8 - 0.6 differ in their last bit,
    # and t over that 1e-17 spread would call any such shift certain
    if spread <= 1e-12 * max(1.0, abs(mean)):
        return Comparison(mean, mean, mean, 1.0, method, n)
    low, high = _scipy_stats().t.interval(1 - alpha, n - 1, loc=mean, scale=spread)
    p_value = float(_scipy_stats().ttest_1samp(differences, 0.0).pvalue)
    return Comparison(mean, float(low), float(high), p_value, method, n)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None entries are left out of the family and stay None)."""
    present = [(p, i) for i, p in enumerate(p_values) if p is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(sorted(present)):
        running = max(running, min(1.0, (len(present) - rank) * p))
        adjusted[index] = running
    return adjusted


def verdict(comparison: Comparison, adjusted_p: float, min_effect: float, alpha: float = 0.05) -> str:
    """One word for a Δ: equivalent (its interval lies inside ±min_effect), better / worse (significant after
    Holm's correction), or within noise. `min_effect` is a fraction of 1 (0.005 = half a point)."""
    if -min_effect < comparison.low and comparison.high < min_effect:
        return "equivalent"
    if adjusted_p < alpha:
        return "better" if comparison.delta > 0 else "worse"
    return "within noise"


def at_chance(correct: int, count: int, num_classes: int, confidence: float = 0.95) -> bool:
    """True when the accuracy is no better than a guess: its Wilson interval reaches down to 1 / num_classes or
    lies below it. Below chance is not learning either: an untrained net whose guesses follow the images and not
    the labels scores 9% as easily as 11% (EQ2425's LeakyReLU column on Fashion-MNIST: 8.96% over 30,000 test
    images, interval [8.6%, 9.3%])."""
    low, _ = wilson_interval(correct, count, confidence)
    return low <= 1.0 / num_classes


def still_learning(curve: Sequence[float | None], alpha: float = 0.05) -> bool | None:
    """Is the validation accuracy still rising over the last quarter of the epochs? None when there are too
    few epochs to test a trend (fewer than four in the window of max(4, ceil(n / 4)) last epochs)."""
    values = [v for v in curve if v is not None and math.isfinite(v)]
    window = max(4, math.ceil(len(values) / 4))
    if len(values) < window:
        return None
    tail = values[-window:]
    epochs = np.arange(window)
    tau = _scipy_stats().kendalltau(epochs, tail, alternative="greater")
    slope = _scipy_stats().theilslopes(tail, epochs).slope
    return bool(tau.pvalue < alpha and slope > 0)


def ranking_agreement(halfway: Sequence[float], final: Sequence[float]) -> tuple[bool, float]:
    """(did the order of the rows change, Kendall's tau between the two orders) for the rows' validation
    accuracy at half the budget and at the end."""
    order_half = np.argsort(-np.asarray(halfway, dtype=float), kind="stable")
    order_final = np.argsort(-np.asarray(final, dtype=float), kind="stable")
    if len(halfway) < 2:
        return False, 1.0
    tau = _scipy_stats().kendalltau(halfway, final).statistic
    return bool((order_half != order_final).any()), float(tau) if math.isfinite(tau) else 1.0
