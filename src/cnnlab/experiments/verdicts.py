"""A verdict on every row of a table: is its difference to its reference row real, and can its number be
believed at this budget? The statistics are in evaluate/stats.py (and docs/verdicts.md says how to read them);
this module decides which runs are compared with which.

- A row's reference is the study's baseline, or the row its `compare_to:` names (the report file's cumulative
  columns compare to the column they build on), or, in a greedy stage, that stage's `keep`.
- Two or more seeds that both rows finished: the paired t interval over those seeds (same seed, same split).
- One shared seed: McNemar's exact test on the two runs' per-image test results (RUN/predictions.safetensors),
  when both scored the same images; the table then says seed-to-seed variance is not covered.
- Holm's correction over the rows of one table; a row that diverged or failed says so instead of a word.
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

from .. import html
from ..errors import CnnlabError
from ..evaluate import stats
from ..runs.predictions import read_predictions
from ..train.status import Status

SCORED = (str(Status.COMPLETED), str(Status.STOPPED_EARLY))
# the metrics McNemar can test, and the split of the per-image results it reads: top-1 of the scored weights
PAIRED_METRICS = {"test_acc": "test", "scored_val_acc": "val"}
ONE_SEED_NOTE = "one seed: McNemar's exact test on the test images; seed-to-seed variance is not covered"


@dataclass(frozen=True)
class VerdictOptions:
    alpha: float = 0.05
    min_effect: float = 0.005  # a fraction of 1: half a point of accuracy


@dataclass(frozen=True)
class RowVerdict:
    reference: str | None  # the row this one is compared with (None: this is a reference itself)
    word: str  # better | worse | equivalent | within noise | diverged | failed | reference | '-'
    comparison: stats.Comparison | None = None
    adjusted_p: float | None = None
    at_chance: bool | None = None
    still_learning: bool | None = None
    note: str = ""  # why there is no word, or how it was reached

    def _repr_html_(self) -> str:  # a notebook shows a verdict as a table
        checks = ", ".join(word for word, on in (("at chance", self.at_chance), ("still learning", self.still_learning))
                           if on)
        found = self.comparison
        delta = None if found is None else \
            f"{100 * found.delta:+.2f} [{100 * found.low:+.2f}, {100 * found.high:+.2f}] points ({found.method})"
        return html.fields({"verdict": self.word, "against": self.reference, "Δ [95% CI]": delta,
                            "adjusted p": self.adjusted_p, "checks": checks or None, "note": self.note or None},
                           "verdict")


def _usable(members: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [m for m in members if m["status"] in SCORED]


def compare_rows(row: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]], metric: str,
                 alpha: float = 0.05) -> tuple[stats.Comparison | None, str]:
    """The comparison of two rows' runs (None with the reason when there is none to make)."""
    mine = {m["seed"]: m for m in _usable(row) if m.get(metric) is not None}
    theirs = {m["seed"]: m for m in _usable(reference) if m.get(metric) is not None}
    shared = sorted(set(mine) & set(theirs))
    if len(shared) >= 2:
        return stats.paired_seeds([mine[s][metric] for s in shared], [theirs[s][metric] for s in shared], alpha), ""
    if not shared:
        return None, "no seed finished by both rows"
    if metric not in PAIRED_METRICS:
        return None, f"one seed: no per-image test for {metric}"
    seed = shared[0]
    split = PAIRED_METRICS[metric]
    try:
        ours, other = (read_predictions(Path(m["path"])).get(split) for m in (mine[seed], theirs[seed]))
    except CnnlabError as exc:
        return None, str(exc).splitlines()[0]
    if ours is None or other is None:
        return None, "one seed and no per-image results (a run from an older cnnlab: evaluate it again)"
    if not ours.same_images(other):
        return None, f"the two runs were scored on different {split} images"
    return stats.mcnemar(ours.correct, other.correct, alpha), ONE_SEED_NOTE.replace("test", split)


def judge(groups: Mapping[str, Sequence[Mapping[str, Any]]], references: Mapping[str, str | None], metric: str,
          options: VerdictOptions = VerdictOptions()) -> dict[str, RowVerdict]:
    """A verdict for every row of `groups` (row label -> its runs), against `references[label]`."""
    compared: dict[str, tuple[stats.Comparison | None, str]] = {}
    for name, members in groups.items():
        reference = references.get(name)
        if reference is not None and reference in groups and _usable(members):
            compared[name] = compare_rows(members, groups[reference], metric, options.alpha)
    labels = list(compared)
    adjusted = dict(zip(labels, stats.holm([c.p_value if c else None for c, _ in compared.values()])))
    out = {}
    for name, members in groups.items():
        checks: dict[str, Any] = {"at_chance": row_at_chance(members),
                                  "still_learning": row_still_learning(members, options.alpha)}
        reference = references.get(name)
        comparison, note = compared.get(name, (None, ""))
        if reference is None or reference not in groups:
            out[name] = RowVerdict(None, "reference", **checks)
        elif not _usable(members):
            out[name] = RowVerdict(reference, _failure_word(members), **checks)
        elif comparison is None:
            out[name] = RowVerdict(reference, "-", note=note or "the reference has no finished run", **checks)
        else:
            p_value = adjusted[name]
            assert p_value is not None, "a compared row has its Holm-adjusted p"
            word = stats.verdict(comparison, p_value, options.min_effect, options.alpha)
            out[name] = RowVerdict(reference, word, comparison, p_value, note=note, **checks)
    return out


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
