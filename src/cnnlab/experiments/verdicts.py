"""A verdict on every row of a table: is its difference to its reference row real, and can its number be
believed at this budget? The statistics are in evaluate/stats.py (and docs/verdicts.md says how to read them);
this module decides which runs are compared with which.

- A row's reference is the study's baseline, or the row its `compare_to:` names (the report file's cumulative
  columns compare to the column they build on), or, in a greedy stage, that stage's `keep`.
- Two or more seeds that both rows finished: the paired t interval over those seeds (same seed, same split); a
  study whose seeds were added until decided: its group-sequential version (evaluate/sequential.py).
- One shared seed: the word `1 seed`, never better/worse/equivalent: calibrated by simulation, McNemar's words
  called a null row better or worse 14 times in 24 on an under-trained net. McNemar's exact test on the two
  runs' per-image test results (RUN/predictions.safetensors) is kept beside it: it is about the two trained
  networks, not the two configurations. A predictions file that does not belong to its run makes the row
  `unreadable`, never a number.
- Holm's correction over the rows of one table; a row that diverged or failed says so instead of a word.
- `decide` is the one decision: the tables call it on one study, experiments/calibration.py on thousands of
  simulated ones (docs/verdicts.md: its false-positive rate and power).
- Checks: `at chance` (the test accuracy's Wilson interval reaches 1/C or below), `still learning` (validation accuracy
  still rising over the last quarter of the epochs, in any seed), and one line when the rows' ranking by
  validation accuracy at half the budget differs from the final one. A study without a validation split
  (the report file trains on all its images) reads its training accuracy instead, and says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import html
from ..errors import CnnlabError
from ..evaluate import stats
from ..runs.predictions import read_predictions
from ..train.status import Status

SCORED = (str(Status.COMPLETED), str(Status.STOPPED_EARLY))
# the metrics McNemar can test, and the split of the per-image results it reads: top-1 of the scored weights
PAIRED_METRICS = {"test_acc": "test", "scored_val_acc": "val"}
ONE_SEED_NOTE = ("one seed: no verdict on the configurations (seed-to-seed variance is not measured); the interval "
                 "is McNemar's exact test on the test images, about these two trained networks")
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class VerdictOptions:
    alpha: float = 0.05
    min_effect: float = 0.005  # a fraction of 1: half a point of accuracy

    @property
    def confidence(self) -> str:
        """The interval's coverage as a header says it: '95%' at alpha 0.05, '80%' at 0.2."""
        return f"{100 * (1 - self.alpha):g}%"


@dataclass(frozen=True)
class RowVerdict:
    reference: str | None  # the row this one is compared with (None: this is a reference itself)
    word: str  # better | worse | equivalent | within noise | 1 seed | identical | diverged | failed | unreadable |
    # reference | '-'
    comparison: stats.Comparison | None = None
    adjusted_p: float | None = None
    at_chance: bool | None = None
    still_learning: bool | None = None
    note: str = ""  # why there is no word, or how it was reached
    seeds: int | None = None  # seeds shared with the reference (those the comparison used)
    planned: int | None = None  # the row's runs: more than `seeds` when some failed, diverged or are not run yet

    @property
    def cell(self) -> str:
        """The verdict as a table prints it: the word, and how many of the row's seeds it rests on when not all."""
        if self.seeds is not None and self.planned is not None and 0 < self.seeds < self.planned:
            return f"{self.word} ({self.seeds} of {self.planned} seeds)"
        return self.word

    def _repr_html_(self) -> str:  # a notebook shows a verdict as a table
        checks = ", ".join(word for word, on in (("at chance", self.at_chance), ("still learning", self.still_learning))
                           if on)
        found = self.comparison
        delta = None if found is None else f"{100 * found.delta:+.2f} {interval_text(found, 100, '+.2f')} points " \
            f"({found.method})"
        confidence = f"{100 * found.confidence:g}%" if found is not None else "95%"
        return html.fields({"verdict": self.cell, "against": self.reference, f"Δ [{confidence} CI]": delta,
                            "adjusted p": self.adjusted_p, "checks": checks or None, "note": self.note or None},
                           "verdict")


def interval_text(comparison: stats.Comparison, scale: float, form: str) -> str:
    """'[low, high]', or '[no spread]' when every seed moved by the same amount (no interval can be estimated)."""
    if comparison.low is None or comparison.high is None:
        return "[no spread]"
    return f"[{scale * comparison.low:{form}}, {scale * comparison.high:{form}}]"


@dataclass(frozen=True)
class Decided:
    """Many rows' verdicts at once (any leading shape, rows last): the one decision the tables, `--until-decided`
    and the calibration simulations (experiments/calibration.py) all make."""

    paired: stats.Paired
    adjusted_p: np.ndarray  # Holm over the rows of each table (NaN: not in the family)
    words: np.ndarray


def decide(differences: np.ndarray, options: VerdictOptions = VerdictOptions(), design: Any = None) -> Decided:
    """`differences[..., row, seed]`: each row minus its reference, at the seeds both finished (NaN after them).
    The paired (or group-sequential) t test per row, Holm's correction over the rows, and the word."""
    paired = stats.paired_arrays(differences, options.alpha, design)
    adjusted = stats.holm_array(paired.p_value)
    words = stats.verdict_words(paired.delta, paired.low, paired.high, adjusted, paired.seeds, options.min_effect,
                                options.alpha)
    return Decided(paired, adjusted, words)


def _usable(members: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [m for m in members if m["status"] in SCORED]


def shared_differences(row: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]],
                       metric: str) -> tuple[list[float], list[Any]]:
    """The per-seed differences row - reference at the seeds both finished, in the row's run order (the order
    the seeds were run: a sequential design reads its earlier looks off the first ones), and those seeds."""
    theirs = {m["seed"]: m[metric] for m in _usable(reference) if m.get(metric) is not None}
    pairs = [(m["seed"], m[metric] - theirs[m["seed"]]) for m in _usable(row)
             if m.get(metric) is not None and m["seed"] in theirs]
    return [difference for _, difference in pairs], [seed for seed, _ in pairs]


def one_seed_comparison(row: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]], seed: Any,
                        metric: str, alpha: float) -> tuple[stats.Comparison | None, str, bool]:
    """McNemar's exact test of the two runs at `seed` on their per-image results, kept beside a `1 seed` row:
    (comparison or None, note, whether a file was refused)."""
    if metric not in PAIRED_METRICS:
        return None, f"one seed: no per-image test for {metric}", False
    split = PAIRED_METRICS[metric]
    mine, theirs = ({m["seed"]: m for m in _usable(members)}[seed] for members in (row, reference))
    try:
        ours, other = (read_predictions(Path(m["path"])).get(split) for m in (mine, theirs))
    except CnnlabError as exc:
        return None, str(exc).splitlines()[0], True
    if ours is None or other is None:
        return None, "one seed and no per-image results (a run from an older cnnlab: evaluate it again)", False
    if not ours.same_images(other):
        return None, f"the two runs were scored on different {split} images", False
    note = ONE_SEED_NOTE.replace("test images", f"{split} images")
    return stats.mcnemar(ours.correct, other.correct, alpha), note, False


def judge(groups: Mapping[str, Sequence[Mapping[str, Any]]], references: Mapping[str, str | None], metric: str,
          options: VerdictOptions = VerdictOptions(), design: Any = None) -> dict[str, RowVerdict]:
    """A verdict for every row of `groups` (row label -> its runs), against `references[label]`; `design`: the
    study's group-sequential design (evaluate/sequential.py) when its seeds were added until decided."""
    compared = [name for name, members in groups.items()
                if references.get(name) in groups and references.get(name) != name and _usable(members)]
    shared = {name: shared_differences(groups[name], groups[references[name] or ""], metric) for name in compared}
    if design is not None:  # seeds run beyond the design's last look (added by hand) are not part of its test
        shared = {name: (d[:design.max_seeds], s[:design.max_seeds]) for name, (d, s) in shared.items()}
    identical = {name for name in compared if _identical(groups[name], groups[references[name] or ""], shared[name],
                                                          metric)}
    tested = [name for name in compared if name not in identical]  # identical rows are no test: not in Holm's family
    width = max([len(shared[name][1]) for name in tested] + [1])
    table = np.full((len(tested), width), np.nan)
    for index, name in enumerate(tested):
        table[index, :len(shared[name][0])] = shared[name][0]
    decided = decide(table, options, design)
    one_seed = {name: one_seed_comparison(groups[name], groups[references[name] or ""], shared[name][1][0], metric,
                                          options.alpha)
                for name in tested if len(shared[name][1]) == 1}
    mcnemar_holm = dict(zip(one_seed, stats.holm([c.p_value if c else None for c, _, _ in one_seed.values()])))
    out = {}
    for name, members in groups.items():
        checks: dict[str, Any] = {"at_chance": row_at_chance(members),
                                  "still_learning": row_still_learning(members, options.alpha)}
        reference = references.get(name)
        if reference is None or reference not in groups or reference == name:
            out[name] = RowVerdict(None, "reference", **checks)
        elif not _usable(members):
            out[name] = RowVerdict(reference, _failure_word(members), **checks)
        elif not shared[name][1]:
            out[name] = RowVerdict(reference, "-", note="no seed finished by both rows", **checks)
        elif name in identical:
            out[name] = RowVerdict(reference, IDENTICAL, note=IDENTICAL_NOTE, seeds=len(shared[name][1]),
                                   planned=len(members), **checks)
        elif name in one_seed:
            comparison, note, refused = one_seed[name]
            out[name] = RowVerdict(reference, UNREADABLE if refused else stats.ONE_SEED, comparison,
                                   mcnemar_holm[name], note=note, seeds=1, planned=len(members), **checks)
        else:
            index = tested.index(name)
            comparison = _comparison(decided, index, options, design)
            out[name] = RowVerdict(reference, str(decided.words[index]), comparison,
                                   float(decided.adjusted_p[index]), seeds=comparison.seeds, planned=len(members),
                                   note="" if comparison.low is not None else NO_SPREAD_NOTE, **checks)
    return out


IDENTICAL = "identical"
IDENTICAL_NOTE = ("the same predictions as its reference on every image at every seed (the same runs, or a change "
                  "that changed nothing the network computes): nothing to compare")


def _identical(row: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]],
               shared: tuple[list[float], list[Any]], metric: str) -> bool:
    differences, seeds = shared
    if not seeds:
        return False
    return same_runs(row, reference, seeds) or (not any(differences) and
                                                same_predictions(row, reference, seeds, metric))


def same_runs(row: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]], seeds: Sequence[Any]) -> bool:
    """Whether the row's runs at `seeds` are its reference's own run directories (a greedy alternative equal to
    keep shares its runs)."""
    paths = [{m["seed"]: m.get("path") for m in _usable(members)} for members in (row, reference)]
    return all(paths[0].get(seed) and paths[0].get(seed) == paths[1].get(seed) for seed in seeds)


def same_predictions(row: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]], seeds: Sequence[Any],
                     metric: str) -> bool:
    """Whether the two rows predicted the same class for every image at every one of `seeds` (read only when every
    difference is exactly zero): a variation that changes nothing the network computes."""
    split = PAIRED_METRICS.get(metric)
    if split is None:
        return False
    mine, theirs = ({m["seed"]: m for m in _usable(members)} for members in (row, reference))
    try:
        for seed in seeds:
            ours, other = (read_predictions(Path(m[seed]["path"])).get(split) for m in (mine, theirs))
            if ours is None or other is None or not ours.same_images(other) or \
                    not np.array_equal(ours.predicted, other.predicted):
                return False
    except (CnnlabError, KeyError):
        return False
    return True


NO_SPREAD_NOTE = ("every seed moved by the same amount: no spread, so no interval can be estimated and no test "
                  "passes; more seeds (or a larger test set) will give one")


def _comparison(decided: Decided, index: int, options: VerdictOptions, design: Any) -> stats.Comparison:
    paired = decided.paired
    seeds = int(paired.seeds[index])
    low, high = float(paired.low[index]), float(paired.high[index])
    kind = "paired t" if design is None else "group-sequential t"
    return stats.Comparison(float(paired.delta[index]), None if math.isnan(low) else low,
                            None if math.isnan(high) else high, float(paired.p_value[index]), f"{kind} ({seeds} seeds)",
                            seeds, confidence=1 - options.alpha)


def _failure_word(members: Sequence[Mapping[str, Any]]) -> str:
    statuses = {m["status"] for m in members}
    for word in (str(Status.DIVERGED), str(Status.FAILED)):
        if word in statuses:
            return word
    return "-"


def row_at_chance(members: Sequence[Mapping[str, Any]]) -> bool | None:
    """Whether the row's pooled test accuracy (all its finished seeds) is no better than a guess."""
    usable = [m for m in _usable(members) if m.get("test_acc") is not None and m.get("test_count")]
    classes = {m.get("num_classes") for m in usable}
    if not usable or len(classes) != 1 or not classes.pop():
        return None
    correct = sum(round(m["test_acc"] * m["test_count"]) for m in usable)
    return stats.at_chance(correct, sum(m["test_count"] for m in usable), usable[0]["num_classes"])


def row_still_learning(members: Sequence[Mapping[str, Any]], alpha: float = 0.05) -> bool | None:
    """Whether any of the row's finished seeds still had a rising validation accuracy at its end."""
    answers = [stats.still_learning(m.get("val_curve") or [], alpha) for m in _usable(members)]
    known = [a for a in answers if a is not None]
    return any(known) if known else None


def ranking_note(groups: Mapping[str, Sequence[Mapping[str, Any]]]) -> str | None:
    """One line when the rows' order by validation accuracy at half the budget differs from the final one."""
    halfway, final = [], []
    kinds = {m.get("curve_kind", "validation") for members in groups.values() for m in _usable(members)}
    kind = "validation" if "validation" in kinds else "training"
    for members in groups.values():
        curves = [m["val_curve"] for m in _usable(members) if m.get("val_curve")]
        curves = [c for c in curves if all(v is not None for v in c)]
        if not curves:
            continue
        length = min(map(len, curves))
        if length < 2:
            return None
        halfway.append(statistics.fmean(c[math.ceil(length / 2) - 1] for c in curves))
        final.append(statistics.fmean(c[length - 1] for c in curves))
    if len(final) < 2:
        return None
    changed, tau = stats.ranking_agreement(halfway, final)
    if not changed:
        return None
    return (f"the ranking changed in the last half of training (Kendall's tau {tau:+.2f} between the {kind} "
            "ranking at half the epochs and at the end); a longer budget may change it again")
