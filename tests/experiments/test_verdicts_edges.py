"""Which runs a verdict compares, with which settings, and what a row without a verdict says: the cases mutation
testing (docs/mutation.md) showed test_verdicts.py could not tell apart from a wrong experiments/verdicts.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnlab.evaluate import stats
from cnnlab.evaluate.sequential import Design
from cnnlab.experiments.verdicts import (
    ONE_SEED_NOTE,
    RowVerdict,
    VerdictOptions,
    judge,
    ranking_note,
    row_at_chance,
    row_still_learning,
)
from cnnlab.runs.predictions import write_predictions
from tests.experiments.test_verdicts import _run

# 24 epochs, the last six with three inversions: Kendall's one-sided p = 49/720 = 0.068 (tests/evaluate/test_stats_edges)
TREND_AT_7_PERCENT = [0.1] * 18 + [0.3, 0.1, 0.2, 0.5, 0.4, 0.6]


def seeds(variation: str, accuracies: dict[int, float], **keywords) -> list[dict]:
    return [_run(variation, seed, acc, **keywords) for seed, acc in accuracies.items()]


def _against(row: list[dict], reference: list[dict], metric: str = "test_acc", **options) -> RowVerdict:
    """The verdict of `row` against `reference` in a table of the two (judge, the tables' one path)."""
    return judge({"base": reference, "row": row}, {"row": "base"}, metric, VerdictOptions(**options))["row"]


def test_only_the_seeds_both_rows_finished_are_paired_and_two_are_enough() -> None:
    row = seeds("row", {0: 0.60, 1: 0.63, 2: 0.61})
    reference = seeds("base", {1: 0.50, 2: 0.52, 3: 0.40})
    verdict = _against(row, reference)
    expected = stats.paired_seeds([0.63, 0.61], [0.50, 0.52])  # seeds 1 and 2 only
    assert verdict.comparison == expected and verdict.comparison.method == "paired t (2 seeds)"
    assert verdict.note == "" and verdict.cell == "within noise (2 of 3 seeds)"
    apart = _against(seeds("row", {5: 0.6}), reference)
    assert (apart.word, apart.comparison, apart.note) == ("-", None, "no seed finished by both rows")
    for run in reference:
        run["best_val_acc"] = 0.55
    one = seeds("row", {1: 0.6})
    one[0]["best_val_acc"] = 0.65
    best_val = _against(one, reference, "best_val_acc")
    assert (best_val.word, best_val.comparison) == ("1 seed", None)
    assert best_val.note == "one seed: no per-image test for best_val_acc"


def test_alpha_reaches_the_interval_by_default_and_when_given() -> None:
    row, reference = seeds("row", {0: 0.80, 1: 0.82, 2: 0.81}), seeds("base", {0: 0.78, 1: 0.80, 2: 0.80})
    default = stats.paired_seeds([0.80, 0.82, 0.81], [0.78, 0.80, 0.80])
    assert _against(row, reference).comparison == default
    at_ten = stats.paired_seeds([0.80, 0.82, 0.81], [0.78, 0.80, 0.80], alpha=0.10)
    assert _against(row, reference, alpha=0.10).comparison == at_ten != default
    assert at_ten.confidence == pytest.approx(0.90)
    sequential = judge({"base": reference, "row": row}, {"row": "base"}, "test_acc", VerdictOptions(),
                       Design(5))["row"].comparison
    assert sequential == stats.paired_seeds([0.80, 0.82, 0.81], [0.78, 0.80, 0.80], design=Design(5))
    assert sequential.method == "group-sequential t (3 seeds)"


def _predictions(tmp_path: Path, name: str, predicted: torch.Tensor, labels: torch.Tensor) -> str:
    (tmp_path / name).mkdir()
    write_predictions(tmp_path / name, {"test": {"predicted": predicted, "label": labels}})
    return str(tmp_path / name)


def test_one_seed_mcnemar_at_the_options_alpha_and_the_reasons_when_it_cannot(tmp_path: Path) -> None:
    labels = torch.arange(40) % 4
    wrong = labels.clone()
    wrong[:10] = (labels[:10] + 1) % 4
    row = [_run("row", 0, 1.0, path=_predictions(tmp_path, "row", labels.clone(), labels), count=40, classes=4)]
    base = [_run("base", 0, 0.75, path=_predictions(tmp_path, "base", wrong, labels), count=40, classes=4)]
    verdict = _against(row, base, alpha=0.10)
    assert verdict.note == ONE_SEED_NOTE and verdict.word == "1 seed"
    assert verdict.comparison == stats.mcnemar(labels == labels, wrong == labels, alpha=0.10)
    assert verdict.comparison != stats.mcnemar(labels == labels, wrong == labels)
    # scored on other images (the labels differ image by image)
    flipped = [_run("flipped", 0, 0.7, path=_predictions(tmp_path, "flipped", labels.flip(0), labels.flip(0)),
                    count=40, classes=4)]
    other = _against(row, flipped)
    assert (other.comparison, other.note) == (None, "the two runs were scored on different test images")
    # one of the two runs has no per-image results (an older run)
    older = [_run("old", 0, 0.7, path=str(tmp_path / "old"), count=40, classes=4)]
    (tmp_path / "old").mkdir()
    for pair in ((row, older), (older, row)):
        found = _against(*pair)
        assert (found.word, found.comparison, found.note) == (
            "1 seed", None, "one seed and no per-image results (a run from an older cnnlab: evaluate it again)")
    # a damaged predictions file: the row is unreadable, the error's first line the reason
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "predictions.safetensors").write_bytes(b"not a safetensors file")
    broken = [_run("broken", 0, 0.7, path=str(tmp_path / "broken"), count=40, classes=4)]
    found = _against(row, broken)
    assert found.word == "unreadable" and found.comparison is None
    assert found.note.startswith(f"'{tmp_path / 'broken' / 'predictions.safetensors'}' is not a readable "
                                 "predictions file")


def test_judge_uses_the_options_min_effect_and_alpha_with_holms_p() -> None:
    reference = seeds("base", {0: 0.50, 1: 0.52, 2: 0.51})
    row = seeds("row", {0: 0.51, 1: 0.54, 2: 0.515})  # +1.17 points, t = 2.65, p = 0.12, 95% [-0.7, +3.1]
    groups = {"base": reference, "row": row}
    comparison = stats.paired_seeds([0.51, 0.54, 0.515], [0.50, 0.52, 0.51])
    assert judge(groups, {"row": "base"}, "test_acc")["row"].word == "within noise"
    assert judge(groups, {"row": "base"}, "test_acc", VerdictOptions(min_effect=0.05))["row"].word == "equivalent"
    loose = judge(groups, {"row": "base"}, "test_acc", VerdictOptions(alpha=0.2))["row"]
    assert comparison.p_value < 0.2 and loose.word == "better" and loose.adjusted_p == comparison.p_value


def test_a_reference_the_table_does_not_have_makes_the_row_a_reference() -> None:
    groups = {"row": seeds("row", {0: 0.6})}
    verdict = judge(groups, {"row": "gone"}, "test_acc")["row"]
    assert verdict.reference is None and verdict.word == "reference"


def test_every_kind_of_row_keeps_its_reference_and_its_checks() -> None:
    base = seeds("base", {0: 0.50, 1: 0.52, 2: 0.51}, curve=TREND_AT_7_PERCENT)
    groups = {
        "base": base,
        "row": seeds("row", {0: 0.104, 1: 0.10, 2: 0.098}, curve=TREND_AT_7_PERCENT),  # at chance
        "hot": [_run("hot", 0, None, status="diverged")],
        "stopped": [_run("stopped", 0, None, status="interrupted")],
        "orphan": seeds("orphan", {7: 0.104}, curve=TREND_AT_7_PERCENT),  # no seed in common with base
    }
    options = VerdictOptions(alpha=0.10)
    verdicts = judge(groups, {name: "base" for name in groups if name != "base"}, "test_acc", options)
    assert (verdicts["base"].word, verdicts["base"].at_chance, verdicts["base"].still_learning) == (
        "reference", False, True)
    assert (verdicts["row"].reference, verdicts["row"].at_chance, verdicts["row"].still_learning) == ("base", True, True)
    assert verdicts["row"].word == "worse"
    assert (verdicts["hot"].reference, verdicts["hot"].word) == ("base", "diverged")
    assert (verdicts["stopped"].reference, verdicts["stopped"].word) == ("base", "-")
    orphan = verdicts["orphan"]
    assert (orphan.reference, orphan.word, orphan.note) == ("base", "-", "no seed finished by both rows")
    assert (orphan.at_chance, orphan.still_learning) == (True, True)
    # at the default alpha the same curves are no longer 'still learning'
    assert judge(groups, {"row": "base"}, "test_acc")["row"].still_learning is False


def test_row_checks_leave_out_runs_without_a_score_and_rows_of_mixed_class_counts() -> None:
    unscored = _run("x", 1, 0.5, count=1000, classes=10)
    unscored["test_acc"] = None  # finished, but its test split was not scored
    assert row_at_chance([_run("x", 0, 0.104, count=1000, classes=10), unscored]) is True
    assert row_at_chance([_run("x", 0, 0.104, classes=10), _run("x", 1, 0.104, classes=100)]) is None
    assert row_at_chance([_run("x", 0, 0.104, classes=None)]) is None
    assert row_still_learning([_run("x", 0, 0.5, curve=TREND_AT_7_PERCENT)]) is False  # alpha 0.05 by default
    assert row_still_learning([_run("x", 0, 0.5, curve=TREND_AT_7_PERCENT)], alpha=0.10) is True


def _swapped(kind: str | None, length: int = 4) -> dict[str, list[dict]]:
    runs = {"a": _run("a", 0, 0.5, curve=[0.1, 0.5, 0.6, 0.9][-length:]),
            "b": _run("b", 0, 0.5, curve=[0.2, 0.6, 0.7, 0.8][-length:])}
    for run in runs.values():
        if kind is not None:
            run["curve_kind"] = kind
    return {name: [run] for name, run in runs.items()}


def test_ranking_note_names_the_curve_it_read() -> None:
    assert "between the validation ranking" in ranking_note(_swapped(None))  # older rows have no curve_kind
    assert "between the validation ranking" in ranking_note(_swapped("validation"))
    assert "between the training ranking" in ranking_note(_swapped("training"))


def test_ranking_note_skips_rows_without_curves_and_reads_two_epochs() -> None:
    groups = {"hot": [_run("hot", 0, None, status="diverged")], **_swapped(None)}
    assert ranking_note(groups) is not None  # the diverged row first does not end the reading
    assert ranking_note(_swapped(None, length=2)) is not None  # halfway is epoch 1 of 2: 0.6 < 0.7, end 0.9 > 0.8
    assert ranking_note(_swapped(None, length=1)) is None


def test_ranking_note_halfway_is_epoch_ceil_half() -> None:
    # six epochs: halfway is epoch 3 (b ahead), the end has a ahead; at epoch 2 a was ahead as at the end
    groups = {"a": [_run("a", 0, 0.5, curve=[0.0, 0.5, 0.1, 0.2, 0.3, 0.9])],
              "b": [_run("b", 0, 0.5, curve=[0.0, 0.1, 0.5, 0.5, 0.6, 0.8])]}
    assert ranking_note(groups) is not None
    groups["b"][0]["val_curve"][2] = 0.05  # epoch 3: a ahead too: no change
    assert ranking_note(groups) is None


def test_identical_rows_are_said_and_left_out_of_holms_family(tmp_path: Path) -> None:
    # 'same' shares its reference's runs (a greedy alternative equal to keep): 'identical', and no test, so the
    # other row's Holm-adjusted p is its own p (a family of one)
    base = [dict(r, path=str(tmp_path / f"b{r['seed']}")) for r in seeds("base", {0: 0.50, 1: 0.52, 2: 0.51})]
    same = [dict(r, variation="same") for r in base]
    row = seeds("row", {0: 0.55, 1: 0.58, 2: 0.56})
    verdicts = judge({"base": base, "same": same, "row": row}, {"same": "base", "row": "base"}, "test_acc")
    assert verdicts["same"].word == "identical" and verdicts["same"].comparison is None
    alone = stats.paired_seeds([0.55, 0.58, 0.56], [0.50, 0.52, 0.51])
    assert verdicts["row"].adjusted_p == alone.p_value
    # a row with no seed in common with its reference is not identical, whatever its runs
    apart = seeds("apart", {5: 0.5})
    assert judge({"base": base, "apart": apart}, {"apart": "base"}, "test_acc")["apart"].word == "-"


def test_the_same_predictions_at_every_seed_make_a_row_identical_and_nothing_else_does(tmp_path: Path) -> None:
    labels = torch.arange(40) % 4
    predicted = labels.clone()
    predicted[:10] = (labels[:10] + 1) % 4
    other = labels.clone()
    other[30:] = (labels[30:] + 1) % 4  # as many right (30 of 40), on other images

    def row(name: str, guesses: torch.Tensor, images: torch.Tensor = labels) -> list[dict]:
        return [_run(name, 0, 0.75, path=_predictions(tmp_path, name, guesses, images), count=40, classes=4),
                _run(name, 1, 0.75, path=_predictions(tmp_path, f"{name}1", guesses, images), count=40, classes=4)]

    base = row("base", predicted)
    assert _against(row("same", predicted.clone()), base).word == "identical"
    different = _against(row("shuffled", other), base)  # the same accuracy at every seed, other predictions
    assert different.word == "within noise" and different.comparison.high is None  # no spread, said as none
    assert different.note.startswith("every seed moved by the same amount")
    elsewhere = _against(row("elsewhere", predicted.flip(0), labels.flip(0)), base)  # other images, same count
    assert elsewhere.word == "within noise"
    (tmp_path / "old").mkdir()
    (tmp_path / "old1").mkdir()
    older = [_run("old", s, 0.75, path=str(tmp_path / f"old{'1' if s else ''}"), count=40, classes=4) for s in (0, 1)]
    assert _against(older, base).word == "within noise"  # no per-image results: nothing says they are the same


def test_a_one_seed_note_names_the_split_it_read(tmp_path: Path) -> None:
    labels = torch.arange(40) % 4
    wrong = labels.clone()
    wrong[:10] = (labels[:10] + 1) % 4
    paths = {}
    for name, guesses in (("row", labels.clone()), ("base", wrong)):
        (tmp_path / name).mkdir()
        write_predictions(tmp_path / name, {"val": {"predicted": guesses, "label": labels}})
        paths[name] = str(tmp_path / name)
    members = {name: [{"seed": 0, "status": "completed", "scored_val_acc": acc, "path": paths[name]}]
               for name, acc in (("row", 1.0), ("base", 0.75))}
    verdict = judge(members, {"row": "base"}, "scored_val_acc")["row"]
    assert verdict.word == "1 seed" and verdict.note == ONE_SEED_NOTE.replace("test images", "val images")
