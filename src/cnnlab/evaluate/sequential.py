"""Seeds added until decided, without testing again at the full alpha: a group-sequential paired t test.

`cnnlab study run --until-decided` looks at a row after its planned seeds and again after every added seed, up to
`--max-seeds` N. Testing each look at the full alpha is optional stopping: simulated through our own code under
the null, a row was called better/worse 10% of the time with 3 -> 5 seeds and 16% with 3 -> 10, for a claimed 5%.
A group-sequential design fixes that by choosing, before any data, a boundary for every possible look such that
the chance of ever crossing it under the null is alpha.

- The looks: a row is looked at when it has n = 2, 3, ..., N seeds shared with its reference (two is the least a
  paired t needs; a look at every n, so a row whose seed failed is still at a planned look).
- The boundary shape: Wang & Tsiatis (1987, "Approximately optimal one-parameter boundaries for group sequential
  trials", Biometrics 43:193) scale a constant c by the information fraction t = n / N: cross at look n when
  |Z_n| >= c * t^(shape - 1/2). shape 0 is O'Brien & Fleming (1979, Biometrics 35:549): strict early looks,
  nearly the fixed-design test at the last; shape 0.5 is Pocock (1977, Biometrika 64:191): one nominal level at
  every look. docs/verdicts.md compares their power and cost, measured by experiments/calibration.py; the default
  is the one that table chose.
- Unknown variance, few seeds: the per-look statistic is the paired t test's two-sided p-value (scipy) put on the
  normal scale, Z_n = Phi^-1(1 - p_n / 2). With 1 to 9 degrees of freedom the normal-theory boundaries
  (multivariate normal integrals) are too lenient (5.5-6.1% for a nominal 5%, measured), so c is not taken from
  them: the sequence (t_2, ..., t_N) of the paired t statistics is pivotal under the null (it does not depend on
  the unknown spread), and its null distribution is simulated here once per design (fixed seed, SIMULATIONS
  paths; Jennison & Turnbull 2000, "Group sequential methods with applications to clinical trials", 3.8 and
  chapter 19, recommend exact computation for small samples).
- What a row reports: the repeated p-value (Jennison & Turnbull chapter 9), the null chance that the largest
  scaled statistic over all N looks reaches the largest one this row has shown so far; Holm's correction takes
  it like any p-value. Its interval is the repeated confidence interval (Jennison & Turnbull 1989, JRSS B 51:305)
  at its current look: the t interval at the look's nominal level, which covers the true difference at every
  look at once with probability 1 - alpha, so `equivalent` (the interval inside +-min_effect) keeps its
  guarantee however the row came to stop.
The Monte-Carlo p-value (1 + exceedances) / (1 + SIMULATIONS) is never zero; its relative error at 0.05 / 9 (the
strictest level Holm uses in a 9-row table) is about 3%.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from types import ModuleType

import numpy as np

SIMULATIONS = 200_000
SHAPES = {"obrien-fleming": 0.0, "pocock": 0.5}
_SEED = 20261207  # the simulation's seed: every process, machine and run computes the same boundaries


def _scipy_stats() -> ModuleType:
    from scipy import stats

    return stats


@dataclass(frozen=True)
class Design:
    """A group-sequential paired design: looks at n = first_look, ..., max_seeds shared seeds."""

    max_seeds: int
    boundary: str = "obrien-fleming"  # a key of SHAPES
    first_look: int = 2

    def __post_init__(self) -> None:
        if self.boundary not in SHAPES:
            raise ValueError(f"boundary must be one of {', '.join(SHAPES)}, not '{self.boundary}'")
        if not 2 <= self.first_look <= self.max_seeds:
            raise ValueError(f"a sequential design needs 2 <= first look <= max seeds, got {self.first_look}, "
                             f"{self.max_seeds}")

    @property
    def looks(self) -> range:
        return range(self.first_look, self.max_seeds + 1)

    def scaled(self, z: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        """The statistic the boundary is constant on: Z_n * t^(1/2 - shape), t = n / N."""
        return np.multiply(z, (np.asarray(seeds) / self.max_seeds) ** (0.5 - SHAPES[self.boundary]))

    def p_value(self, largest: np.ndarray) -> np.ndarray:
        """The repeated p-value of rows whose largest scaled statistic so far is `largest` (NaN stays NaN)."""
        null = null_maxima(self)
        beyond = len(null) - np.searchsorted(null, np.nan_to_num(largest))  # NaN: 0, and NaN again below
        return np.where(np.isnan(largest), np.nan, (1 + beyond) / (1 + len(null)))

    def critical(self, alpha: float) -> float:
        """c: the null chance that the scaled statistic ever reaches c over the N looks is alpha."""
        null = null_maxima(self)
        allowed = math.floor(alpha * (1 + len(null))) - 1  # simulated values at or above c that p_value allows
        return float(null[min(max(len(null) - allowed, 0), len(null) - 1)])  # the smallest such c

    def nominal_level(self, seeds: np.ndarray, alpha: float) -> np.ndarray:
        """The two-sided level of the paired t test that is the boundary at a look with `seeds` seeds."""
        z = self.critical(alpha) * (np.asarray(seeds) / self.max_seeds) ** (SHAPES[self.boundary] - 0.5)
        return 2 * _scipy_stats().norm.sf(z)

    def describe(self, alpha: float) -> str:
        name = {"obrien-fleming": "O'Brien-Fleming", "pocock": "Pocock"}[self.boundary]
        return (f"group-sequential paired t ({name} boundary over looks at {self.first_look}-{self.max_seeds} seeds, "
                f"alpha {alpha:g} spent over all of them)")


def normal_scale(p_values: np.ndarray) -> np.ndarray:
    """Z with the same two-sided p: Phi^-1(1 - p / 2), computed as -Phi^-1(p / 2) so that a tiny p keeps its digits
    (p = 0 -> inf, p = 1 -> 0)."""
    from scipy import special

    return -special.ndtri(np.divide(p_values, 2))


def t_two_sided(t: np.ndarray, degrees: int | np.ndarray) -> np.ndarray:
    """The two-sided p-value of Student's t statistics: 2 P(T_df <= -|t|) (scipy.special.stdtr, what
    scipy.stats.t.sf computes, without the distribution object's overhead over millions of draws)."""
    from scipy import special

    return np.asarray(2 * special.stdtr(degrees, -np.abs(t)), dtype=float)


@functools.lru_cache(maxsize=32)
def null_maxima(design: Design) -> np.ndarray:
    """The largest scaled statistic over all looks of SIMULATIONS null paths, sorted (pivotal: unit spread)."""
    rng = np.random.default_rng([_SEED, design.max_seeds, design.first_look])
    out = np.empty(SIMULATIONS)
    chunk = max(1000, 4_000_000 // design.max_seeds)
    for start in range(0, SIMULATIONS, chunk):
        draws = rng.standard_normal((min(chunk, SIMULATIONS - start), design.max_seeds))
        largest = np.zeros(len(draws))
        for n in design.looks:
            head = draws[:, :n]
            t = head.mean(axis=1) / (head.std(axis=1, ddof=1) / math.sqrt(n))
            z = normal_scale(t_two_sided(t, n - 1))
            largest = np.maximum(largest, design.scaled(z, np.full(len(z), n)))
        out[start:start + len(draws)] = largest
    out.sort()
    return out
