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
