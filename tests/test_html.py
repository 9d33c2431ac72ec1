"""The HTML tables a notebook shows (`_repr_html_`): what they hold, every cell escaped."""

from __future__ import annotations

from pathlib import Path

from cnnlab.api import StudyTable
from cnnlab.evaluate.stats import Comparison
from cnnlab.experiments.verdicts import RowVerdict
from cnnlab.runs import RunRecord, Status, TrainResult


def test_a_run_record_and_a_result_show_their_scores() -> None:
    record = RunRecord(status=Status.COMPLETED, reason="trained 3 epochs", best_epoch=3, epochs_completed=3,
                       test={"acc": 0.9136, "top5": 0.9972, "loss": 0.29281, "count": 359}, images_per_second=1810.4)
    shown = record._repr_html_()
    assert "<td>test top-1</td><td>91.36%</td>" in shown and "<td>test loss</td><td>0.2928</td>" in shown
    assert "<td>img/s</td><td>1,810</td>" in shown and "<td>status</td><td>completed</td>" in shown
    result = TrainResult(Path("runs/x"), record)._repr_html_()
    assert "<td>run directory</td><td>runs/x</td>" in result and "91.36%" in result


def test_a_study_table_shows_its_rows_and_notes_escaped(tmp_path: Path) -> None:
    table = StudyTable(["variation", "verdict"], [["<b>lr</b>", "better"]], tmp_path / "table.csv",
                       tmp_path / "table.md", ["note: alpha 0.05 & Holm"])
    shown = table._repr_html_()
    assert "<th>verdict</th>" in shown and "<td>&lt;b&gt;lr&lt;/b&gt;</td><td>better</td>" in shown
    assert "note: alpha 0.05 &amp; Holm" in shown


def test_a_verdict_shows_its_interval_and_checks() -> None:
    verdict = RowVerdict("baseline", "within noise", Comparison(0.012, -0.004, 0.028, 0.2, "paired t (3 seeds)", 3),
                         0.4, at_chance=False, still_learning=True)
    shown = verdict._repr_html_()
    assert "<td>within noise</td>" in shown and "+1.20 [-0.40, +2.80] points (paired t (3 seeds))" in shown
    assert "<td>checks</td><td>still learning</td>" in shown


def test_a_verdict_shows_everything_it_knows_and_nothing_it_does_not() -> None:
    comparison = Comparison(0.012, -0.004, 0.028, 0.2, "paired t (3 seeds)", 3, confidence=0.8)
    shown = RowVerdict("baseline", "better", comparison, 0.0123, at_chance=True, still_learning=True,
                       note="a & b", seeds=2, planned=3)._repr_html_()
    assert shown.startswith('<table class="cnnlab-table"><caption>verdict</caption>')
    assert "<td>verdict</td><td>better (2 of 3 seeds)</td>" in shown and "<td>against</td><td>baseline</td>" in shown
    assert "<td>Δ [80% CI]</td><td>+1.20 [-0.40, +2.80] points (paired t (3 seeds))</td>" in shown  # its confidence
    assert "<td>adjusted p</td><td>0.0123</td>" in shown and "<td>note</td><td>a &amp; b</td>" in shown
    assert "<td>checks</td><td>at chance, still learning</td>" in shown
    bare = RowVerdict(None, "reference")._repr_html_()  # nothing known: no empty rows
    assert "<td>verdict</td><td>reference</td>" in bare and all(
        f"<td>{name}</td>" not in bare for name in ("against", "Δ [95% CI]", "adjusted p", "checks", "note"))
    flat = RowVerdict("b", "within noise", Comparison(0.01, None, None, 1.0, "paired t (2 seeds)", 2), 1.0)
    assert "+1.00 [no spread] points (paired t (2 seeds))" in flat._repr_html_()


def test_interval_text_gives_the_bounds_or_says_there_are_none() -> None:
    from cnnlab.experiments.verdicts import interval_text

    assert interval_text(Comparison(0.0, -0.0123, 0.0456, 1.0, "t", 2), 100, "+.2f") == "[-1.23, +4.56]"
    assert interval_text(Comparison(0.0, -0.5, 2.0, 1.0, "t", 2), 1, "+.3g") == "[-0.5, +2]"
    assert interval_text(Comparison(0.0, None, 0.1, 1.0, "t", 2), 100, "+.2f") == "[no spread]"
    assert interval_text(Comparison(0.0, 0.1, None, 1.0, "t", 2), 100, "+.2f") == "[no spread]"
