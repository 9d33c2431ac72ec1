"""Verdicts calibrated like an instrument: thousands of simulated studies through the decision code itself.

A verdict word is a measurement, so it is checked the way an instrument is: on inputs whose truth is known. Each
simulated study draws every run's accuracy, pushes the numbers through the functions a real table and
`--until-decided` call (experiments/verdicts.py `decide`, experiments/decided.py `wants_seed`,
experiments/greedy.py `choose`: no copy of them), and counts the words:
- under the null (every row the same configuration as its reference: an A/A study), how often a row is called
  better or worse: at most alpha is the promise;
- under known effects (every row 1, 2, 5 points better), how often it is called better: the power, what the
  validity costs;
- at an effect of exactly the equivalence margin, how often a row is called equivalent: at most alpha / 2 (the
  margin's one-sided test).

How a run's accuracy is drawn (a model of what seeds do, checked against measured studies in docs/verdicts.md):
the run's true accuracy is the configuration's, plus a seed effect shared by every run of that seed (the same seed
gives the same split and initialisation stream: what pairing cancels), plus a part of its own; its measured
accuracy is a binomial count over the test images, so ties, zero spreads and the test set's own noise are in it.
One seed per row: each run's per-image results are drawn too (the images' difficulty shared, the networks'
mistakes partly their own), and McNemar's exact test on them is what the tables used to call better/worse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..evaluate import stats
from ..evaluate.sequential import Design
from .decided import wants_seed
from .greedy import choose, judged_stage
from .verdicts import VerdictOptions, decide

WORDS = ("better", "worse", "equivalent", "within noise", stats.ONE_SEED)


@dataclass(frozen=True)
class Setting:
    """One kind of study to simulate. Accuracies and spreads are fractions of 1 (0.02 = two points)."""

    rows: int = 3  # rows compared with one shared reference (or a greedy stage's alternatives besides keep)
    seeds: int = 3  # the planned seeds
    max_seeds: int | None = None  # --until-decided up to this many seeds; None: the planned seeds only
    seed_sd: float = 0.02  # spread of a run's true accuracy over seeds
    shared: float = 0.5  # the part of that variance every run of the same seed shares
    effect: float = 0.0  # every row's true difference to its reference (0: the null)
    accuracy: float = 0.8  # the reference's true accuracy
    test_images: int = 10_000
    studies: int = 10_000
    boundary: str = "obrien-fleming"  # the sequential design's boundary (evaluate/sequential.py); 'none': the rule
    # this replaced, the fixed-seed test at every look
    stages: int = 0  # a greedy search of this many stages (rows + 1 alternatives each, keep first); 0: one table
    require: str = "best"  # greedy: {require: better}
    keep: str = "retrain"  # greedy: keep trained again on each stage's seeds (retrain) or the winner's runs (reuse)
    alpha: float = 0.05
    min_effect: float = 0.005
    old_rule: bool = False  # one seed: also count what McNemar's words said (a per-image draw per run: slow)

    @property
    def options(self) -> VerdictOptions:
        return VerdictOptions(self.alpha, self.min_effect)

    def describe(self) -> str:
        kind = (f"greedy {self.stages} stages, require {self.require}, keep {self.keep}" if self.stages else
                f"until decided {self.seeds}->{self.max_seeds}" if self.max_seeds else f"fixed {self.seeds} seeds")
        return (f"{kind}, {self.rows} rows, seed sd {100 * self.seed_sd:g} pt, effect {100 * self.effect:+g} pt, "
                f"{self.test_images} images")


@dataclass(frozen=True)
class Outcome:
    setting: Setting
    words: dict[str, float]  # the share of rows given each word
    any_claim: float  # the share of tables (a greedy search: of stages) with a row called better or worse
    seeds_used: float  # mean seeds per row at the end
    old_rule: float | None = None  # one seed: the share of rows McNemar's words called better or worse

    @property
    def claims(self) -> float:
        """The share of rows called better or worse."""
        return self.words["better"] + self.words["worse"]

    def bound(self, rate: float) -> float:
        """`rate` plus three Monte-Carlo standard errors over the simulated studies (rows within a study are
        correlated, so a study counts once)."""
        return rate + 3 * math.sqrt(rate * (1 - rate) / self.setting.studies)


def _seed_effects(setting: Setting, rng: np.random.Generator) -> np.ndarray:
    """What every run of one seed shares [study, 1, seed]."""
    seeds = setting.max_seeds or setting.seeds
    return rng.standard_normal((setting.studies, 1, seeds)) * setting.seed_sd * math.sqrt(setting.shared)


def _accuracies(setting: Setting, rng: np.random.Generator, configurations: int, effects: np.ndarray,
                shared: np.ndarray | None = None) -> np.ndarray:
    """Measured accuracies [study, configuration, seed] for `configurations` configurations whose true differences
    to the first are `effects` (one per configuration, the first 0), at seeds whose shared effects are `shared`
    (new seeds when None)."""
    seeds = setting.max_seeds or setting.seeds
    shape = (setting.studies, configurations, seeds)
    shared = _seed_effects(setting, rng) if shared is None else shared
    own = rng.standard_normal(shape) * setting.seed_sd * math.sqrt(1 - setting.shared)
    true = np.clip(setting.accuracy + effects[None, :, None] + shared + own, 0.0, 1.0)
    return rng.binomial(setting.test_images, true) / setting.test_images


def simulate(setting: Setting, seed: int = 0) -> Outcome:
    """Simulate `setting.studies` studies and count the verdict words their rows get."""
    rng = np.random.default_rng([seed, setting.rows, setting.seeds, setting.max_seeds or 0, setting.stages])
    if setting.stages:
        return _greedy(setting, rng)
    effects = np.array([0.0] + [setting.effect] * setting.rows)
    accuracies = _accuracies(setting, rng, setting.rows + 1, effects)
    differences = accuracies[:, 1:, :] - accuracies[:, :1, :]
    if setting.max_seeds is None:
        words = decide(differences, setting.options).words
        seeds = np.full(words.shape, setting.seeds)
    else:
        words, seeds = _until_decided(setting, differences)
    old = _mcnemar_words(setting, rng, accuracies) if setting.old_rule and setting.seeds == 1 else None
    return _outcome(setting, words, seeds, old)


def _until_decided(setting: Setting, differences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`--until-decided`: look, give each open row one more seed (its reference gets it too: the reference's runs
    are drawn for every seed already), look again, until no row of the study wants one. Returns the final words
    and seeds per row. A study whose rows are all decided is left as it is (it gets no more runs)."""
    assert setting.max_seeds is not None
    design = None if setting.boundary == "none" else Design(max(setting.max_seeds, setting.seeds, 2), setting.boundary)
    seeds = np.full(differences.shape[:2], setting.seeds)
    words = np.empty(differences.shape[:2], dtype=object)
    columns = np.arange(differences.shape[-1])
    active = np.ones(len(differences), dtype=bool)
    while active.any():
        seen = np.where(columns[None, None, :] < seeds[active][..., None], differences[active], np.nan)
        decided = decide(seen, setting.options, design)
        more = wants_seed(decided.words, seeds[active], setting.max_seeds)
        words[active] = decided.words
        seeds[active] += more
        active[active] = more.any(axis=-1)
    return words, seeds


def _greedy(setting: Setting, rng: np.random.Generator) -> Outcome:
    """A greedy search under the null: every alternative of every stage has the same true accuracy. Each stage's
    alternatives are judged against `keep` with `decide` (no word when `judged_stage` says keep's runs are reused
    from an earlier stage), and `choose` picks the winner, which is the next stage's keep: trained again on the next
    stage's seeds (keep retrain), or its very runs carried forward (keep reuse, the same seeds every stage)."""
    studies, alternatives = setting.studies, setting.rows
    shared = _seed_effects(setting, rng)
    keep = _accuracies(setting, rng, 1, np.zeros(1), shared)[:, 0, :]
    names = ["keep", *(f"alt{i}" for i in range(alternatives))]
    words = []
    for stage in range(setting.stages):
        if setting.keep == "retrain":
            shared = _seed_effects(setting, rng)
            keep = _accuracies(setting, rng, 1, np.zeros(1), shared)[:, 0, :] if stage else keep
        fresh = _accuracies(setting, rng, alternatives, np.full(alternatives, setting.effect), shared)
        decided = decide(fresh - keep[:, None, :], setting.options)
        reused = setting.keep == "reuse" and stage > 0
        judged = judged_stage({"keep@earlier" if reused else f"keep@{stage}"}, {"keep@earlier"})
        stage_words = decided.words if judged else np.full(decided.words.shape, "-")
        words.append(stage_words)
        values = np.concatenate([keep[:, None, :], fresh], axis=1)
        means = values.mean(axis=-1)
        winners = np.empty(studies, dtype=int)
        for study in range(studies):
            rows = {name: {"val_acc": float(means[study, i]),
                           **({"verdict": str(stage_words[study, i - 1])} if i else {})}
                    for i, name in enumerate(names)}
            winners[study] = names.index(choose(rows, setting.require) or "keep")
        keep = values[np.arange(studies), winners]
    return _outcome(setting, np.stack(words, axis=1), np.full((studies, 1), setting.seeds), None)


def _mcnemar_words(setting: Setting, rng: np.random.Generator, accuracies: np.ndarray) -> float:
    """The old one-seed rule (McNemar's exact test, Holm over the rows, better/worse below alpha) on per-image
    results drawn for each run: the share of rows it called better or worse. Image i is answered right by a network
    of true accuracy a when u_i + e < a, u_i the image's difficulty (shared) and e the network's own noise; the
    accuracies are the runs' drawn ones."""
    studies = min(setting.studies, 2_000)  # a per-image draw and an exact test per row: 2,000 studies suffice here
    images = setting.test_images
    claims = 0
    for study in range(studies):
        difficulty = rng.random(images)
        own = rng.standard_normal((accuracies.shape[1], images)) * 0.15
        score = difficulty[None, :] + own
        cut = np.quantile(score, accuracies[study, :, 0], axis=1).diagonal()
        correct = score < cut[:, None]
        found = [stats.mcnemar(correct[row], correct[0], setting.alpha) for row in range(1, correct.shape[0])]
        adjusted = stats.holm([c.p_value for c in found])
        claims += sum(1 for p in adjusted if p is not None and p < setting.alpha)
    return claims / (studies * setting.rows)


def _outcome(setting: Setting, words: np.ndarray, seeds: np.ndarray, old: float | None) -> Outcome:
    shares = {word: float(np.mean(words == word)) for word in WORDS}
    claims = np.isin(words, ("better", "worse")).any(axis=-1)
    return Outcome(setting, shares, float(claims.mean()), float(np.mean(seeds)), old)
