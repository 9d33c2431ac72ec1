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
  seed-to-seed variance. Seeds added until decided: the group-sequential version of the same test
  (evaluate/sequential.py), whose repeated p-value and interval keep alpha over every look.
- One seed: McNemar's interval is kept beside the row, but its word is `1 seed`: on an under-trained net the
  seed-to-seed spread (3.9 points on digits at 38%) dwarfs what McNemar's test sees, and simulated null rows
  were called better/worse more than half the time (experiments/calibration.py); one seed cannot say which
  configuration is better, only that these two trained networks differ.
- Several rows of one table: Holm's step-down correction (Holm 1979) of the p-values, which controls the
  family-wise error rate without assuming the rows are independent.
- A verdict word: `equivalent` when the whole (1 - alpha) interval of Δ lies inside ±min_effect: two one-sided
  tests (Schuirmann 1987), each at alpha / 2, which is exactly that interval's inclusion, so the interval shown
  is the test made; else `better` / `worse` when the Holm-adjusted p-value is below alpha, else `within noise`.
  A spread of zero over the seeds (every seed moved by the same count of images) gives no interval at all: t is
  undefined there, and a zero-width "95% interval" would be false certainty.
- At chance: the Wilson interval of the accuracy contains 1 / C or lies below it (no better than a guess).
- Still learning: the validation accuracy over the last quarter of the epochs (at least four) rises by the
  Mann-Kendall trend test (Mann 1945; S = the sum of sign(y_j - y_i) over i < j, one-sided; robust to a single
  noisy epoch, unlike comparing the last two values) with a positive Theil-Sen slope. Its p-value is the exact
  permutation distribution of S (scipy.stats.permutation_test: every order up to 7 epochs, 9,999 random orders
  beyond), which counts ties as they are: a plateau is not a trend (the normal approximation gave a 4-epoch
  window with ties p 0.036, below the 1/24 = 0.042 that a strictly rising 4-epoch curve reaches exactly).
- Ranking: the order of the rows changed when some pair is strictly ordered one way at half the budget and the
  other way at the end; ties at either point are no change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .sequential import normal_scale, t_two_sided


def _scipy_stats() -> ModuleType:
    """scipy.stats, imported on first use: importing it costs ~1.3 s of CPU (measured on a 2-core EPYC), which
    every `cnnlab` command would pay at start-up, though only tables, verdicts and eval use it."""
    from scipy import stats

    return stats


VERDICTS = ("better", "worse", "equivalent", "within noise", "1 seed")
ONE_SEED = "1 seed"
SPREAD_ROUNDING = 1e-12  # a spread this small (relative to the mean, at least 1) is rounding, not a spread


@dataclass(frozen=True)
class Comparison:
    """Δ (row minus reference, as a fraction of 1) with its interval and p-value, and how it was computed."""

    delta: float
    low: float | None  # None: no interval can be estimated (every seed moved by the same amount)
    high: float | None
    p_value: float
    method: str  # 'paired t (n seeds)', 'group-sequential t (n seeds)' or 'McNemar exact'
    seeds: int  # seeds shared by the row and its reference
    discordant: tuple[int, int] | None = None  # McNemar's (row right & reference wrong, the reverse)
    confidence: float = 0.95  # the interval's coverage (simultaneous over the looks for a sequential design)


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


@dataclass(frozen=True)
class Paired:
    """Paired comparisons of many rows at once (any leading shape): each array has the shape of the rows."""

    seeds: np.ndarray  # shared seeds per row
    delta: np.ndarray
    low: np.ndarray  # NaN: no interval (fewer than two seeds, or no spread)
    high: np.ndarray
    p_value: np.ndarray  # NaN: no test (fewer than two seeds); 1 with no spread


def _mean_and_spread(differences: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the first `count` seeds (two passes: a spread of zero stays exactly zero)."""
    head = differences[..., :count]
    mean = head.mean(axis=-1)
    spread = np.sqrt(((head - mean[..., None]) ** 2).sum(axis=-1) / (count - 1) / count)
    return mean, spread


def paired_arrays(differences: np.ndarray, alpha: float = 0.05, design: Any = None) -> Paired:
    """The paired t test of per-seed differences `differences[..., seed]` (row minus reference; the seeds both
    rows finished first, NaN after them), vectorised over rows: the one code path of a study's table and of
    the simulations that calibrate it (experiments/calibration.py). With a sequential `design`
    (evaluate/sequential.py), the repeated p-value over the looks so far and the repeated confidence interval."""
    data = np.asarray(differences, dtype=float)
    seeds = np.count_nonzero(~np.isnan(data), axis=-1)
    data = np.nan_to_num(data, nan=0.0)
    shape = seeds.shape
    delta = np.divide(data.sum(axis=-1), seeds, out=np.full(shape, np.nan), where=seeds > 0)
    low, high, p_value = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    largest = np.zeros(shape)  # the design's statistic, largest over the looks so far
    for count in range(2, data.shape[-1] + 1):
        mean, spread = _mean_and_spread(data, count)
        here = seeds == count
        looked = seeds >= count
        flat = spread <= SPREAD_ROUNDING * np.maximum(1.0, np.abs(mean))
        t = np.divide(mean, spread, out=np.zeros(shape), where=~flat)
        p_here = np.where(flat, 1.0, t_two_sided(t, count - 1))
        if design is not None and count >= design.first_look:
            scaled = design.scaled(normal_scale(p_here), np.full(shape, count))
            largest = np.where(looked, np.maximum(largest, scaled), largest)
        level = alpha if design is None else float(design.nominal_level(np.array(count), alpha))
        half = _scipy_stats().t.ppf(1 - level / 2, count - 1) * spread
        low = np.where(here & ~flat, mean - half, low)
        high = np.where(here & ~flat, mean + half, high)
        p_value = np.where(here, p_here, p_value)
    if design is not None:
        p_value = np.where(seeds >= 2, design.p_value(largest), np.nan)
    return Paired(seeds, delta, low, high, p_value)


def paired_seeds(row: Sequence[float], reference: Sequence[float], alpha: float = 0.05,
                 design: Any = None) -> Comparison:
    """The paired t interval and test of the per-seed differences row[i] - reference[i] (two or more seeds, in the
    order they were run: a sequential design reads its earlier looks off the first ones)."""
    differences = np.asarray(row, dtype=float) - np.asarray(reference, dtype=float)
    n = len(differences)
    if n < 2:
        raise ValueError("a paired interval over seeds needs at least two seeds")
    found = paired_arrays(differences, alpha, design)
    low, high = float(found.low), float(found.high)
    kind = "paired t" if design is None else "group-sequential t"
    confidence = 1 - alpha
    return Comparison(float(found.delta), None if math.isnan(low) else low, None if math.isnan(high) else high,
                      float(found.p_value), f"{kind} ({n} seeds)", n, confidence=confidence)


def holm_array(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values along the last axis (NaN entries are not in the family, stay NaN)."""
    p = np.asarray(p_values, dtype=float)
    missing = np.isnan(p)
    family = np.count_nonzero(~missing, axis=-1)[..., None]
    order = np.argsort(np.where(missing, np.inf, p), axis=-1, kind="stable")
    ranked = np.take_along_axis(np.where(missing, np.inf, p), order, axis=-1)
    rank = np.arange(p.shape[-1])
    scaled = np.minimum(1.0, np.maximum(family - rank, 1) * ranked)
    adjusted_sorted = np.maximum.accumulate(scaled, axis=-1)
    adjusted = np.empty_like(adjusted_sorted)
    np.put_along_axis(adjusted, order, adjusted_sorted, axis=-1)
    return np.where(missing, np.nan, adjusted)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None entries are left out of the family and stay None)."""
    adjusted = holm_array(np.array([np.nan if p is None else p for p in p_values], dtype=float))
    return [None if p is None else float(a) for p, a in zip(p_values, adjusted)]


def verdict_words(delta: np.ndarray, low: np.ndarray, high: np.ndarray, adjusted_p: np.ndarray, seeds: np.ndarray,
                  min_effect: float, alpha: float = 0.05) -> np.ndarray:
    """The verdict word of many rows at once (see `verdict`); NaN bounds mean no interval."""
    delta, low, high = (np.asarray(a, dtype=float) for a in (delta, low, high))
    inside = (-min_effect < low) & (high < min_effect)  # NaN compares False: no interval, never equivalent
    significant = np.asarray(adjusted_p, dtype=float) < alpha
    seeds = np.asarray(seeds)
    return np.select([seeds < 2, inside, significant & (delta > 0), significant & (delta < 0)],
                     [ONE_SEED, "equivalent", "better", "worse"], "within noise")


def verdict(comparison: Comparison, adjusted_p: float, min_effect: float, alpha: float = 0.05) -> str:
    """One word for a Δ: equivalent (its interval lies inside ±min_effect), better / worse (significant after
    Holm's correction), within noise, or `1 seed` (a single seed, McNemar's comparison included: no word about
    the configurations). `min_effect` is a fraction of 1 (0.005 = half a point)."""
    low = np.nan if comparison.low is None else comparison.low
    high = np.nan if comparison.high is None else comparison.high
    return str(verdict_words(np.array(comparison.delta), np.array(low), np.array(high), np.array(adjusted_p),
                             np.array(comparison.seeds), min_effect, alpha))


def at_chance(correct: int, count: int, num_classes: int, confidence: float = 0.95) -> bool:
    """True when the accuracy is no better than a guess: its Wilson interval reaches down to 1 / num_classes or
    lies below it. Below chance is not learning either: an untrained net whose guesses follow the images and not
    the labels scores 9% as easily as 11% (EQ2425's LeakyReLU column on Fashion-MNIST: 8.96% over 30,000 test
    images, interval [8.6%, 9.3%])."""
    low, _ = wilson_interval(correct, count, confidence)
    return low <= 1.0 / num_classes


def _mann_kendall(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mann-Kendall's S of each series along `axis`: the sum of sign(y_j - y_i) over i < j (ties count 0)."""
    series = np.moveaxis(np.asarray(values, dtype=float), axis, -1)
    upper = np.triu_indices(series.shape[-1], 1)
    return np.sign(series[..., upper[1]] - series[..., upper[0]]).sum(axis=-1)


def still_learning(curve: Sequence[float | None], alpha: float = 0.05) -> bool | None:
    """Is the validation accuracy still rising over the last quarter of the epochs? None when there are too
    few epochs to test a trend (fewer than four in the window of max(4, ceil(n / 4)) last epochs)."""
    values = [v for v in curve if v is not None and math.isfinite(v)]
    window = max(4, math.ceil(len(values) / 4))
    if len(values) < window:
        return None
    tail = np.asarray(values[-window:], dtype=float)
    test = _scipy_stats().permutation_test((tail,), _mann_kendall, permutation_type="pairings", vectorized=True,
                                           alternative="greater", n_resamples=9999, random_state=0)
    slope = _scipy_stats().theilslopes(tail, np.arange(window)).slope
    return bool(test.pvalue < alpha and slope > 0)


def ranking_agreement(halfway: Sequence[float], final: Sequence[float]) -> tuple[bool, float]:
    """(did the order of the rows change, Kendall's tau between the two orders) for the rows' validation
    accuracy at half the budget and at the end. A change is a pair strictly ordered one way at half the budget
    and strictly the other way at the end: a tie at either point is no change."""
    if len(halfway) < 2:
        return False, 1.0
    half, end = np.asarray(halfway, dtype=float), np.asarray(final, dtype=float)
    swapped = np.sign(half[:, None] - half[None, :]) * np.sign(end[:, None] - end[None, :]) < 0
    tau = _scipy_stats().kendalltau(half, end).statistic
    return bool(swapped.any()), float(tau) if math.isfinite(tau) else 1.0
