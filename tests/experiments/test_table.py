"""`study table`'s published-number columns (experiments/table.py add_reference and formatted): the study
file's `reference:` printed beside each row, by variation, whatever its grid point, in the reference's units."""

from __future__ import annotations

from pathlib import Path

from cnnlab.cli import main
from cnnlab.experiments.study import load_study, write_plan
from cnnlab.experiments.table import add_reference, formatted

STUDY = """\
name: referenced
base: {model: lenet5, data: {name: digits, train_limit: 64}, epochs: 1, batch_size: 32}
variations:
  wide: {model.activation: tanh}
grid: {optim.lr: [0.1, 0.01]}
reference:
  source: a paper's table 2
  top1: {baseline: 33.59, wide: 0.0}
  seconds: {baseline: 5108}
"""


def entry(variation: str) -> dict:
    """A table row as aggregate() makes it, with nothing measured yet."""
    row = {"variation": variation, "runs": 1, "status": "not run"}
    for key in ("test_acc", "test_top5", "best_val_acc", "best_epoch", "train_seconds", "images_per_second",
                "parameters"):
        row[key] = row[f"{key}_std"] = None
    return row


def test_the_reference_columns_follow_the_variation_whatever_the_grid_point() -> None:
    table = [entry("baseline lr=0.1"), entry("baseline lr=0.01"), entry("wide lr=0.1"), entry("other")]
    add_reference(table, {"source": "x", "top1": {"baseline": 33.59, "wide": 0.0}, "seconds": {"baseline": 5108.4}})
    assert [(e["report_top1"], e["report_seconds"]) for e in table] == [
        (33.59, 5108.4), (33.59, 5108.4), (0.0, None), (None, None)]
    headers, rows = formatted(table)
    assert headers[-2:] == ["report top-1", "report s"] and headers[-3] == "params"
    assert [row[-2:] for row in rows] == [["33.59%", "5,108"], ["33.59%", "5,108"], ["0.00%", "-"], ["-", "-"]]
    assert all(len(row) == len(headers) for row in rows)


def test_only_the_reference_columns_a_study_gives_are_shown() -> None:
    table = add_reference([entry("baseline"), entry("wide")], {"source": "x", "top1": {"wide": 41.05}})
    headers, rows = formatted(table)
    assert headers[-1] == "report top-1" and "report s" not in headers
    assert [row[-1] for row in rows] == ["-", "41.05%"] and all(len(row) == len(headers) for row in rows)
    plain = [entry("baseline")]
    assert add_reference(plain, None) == [entry("baseline")] and add_reference(plain, {}) == [entry("baseline")]
    headers, rows = formatted(plain)
    assert headers[-1] == "params" and len(rows[0]) == len(headers)


def test_study_table_prints_the_study_files_reference_beside_each_row(tmp_path: Path, capsys) -> None:
    """A planned study (plan.json as `study run` writes it) tabulated before any run finished: the published
    numbers are there from the start, ours are '-'."""
    (tmp_path / "referenced.yaml").write_text(STUDY)
    study = load_study(tmp_path / "referenced.yaml")
    out = tmp_path / "out"
    out.mkdir()
    write_plan(study, out)
    assert main(["study", "table", str(out)]) == 0
    lines = (out / "table.md").read_text().splitlines()
    headers = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert headers[-2:] == ["report top-1", "report s"]
    cells = {row[0]: row for row in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:6])}
    assert list(cells) == ["baseline lr=0.1", "baseline lr=0.01", "wide lr=0.1", "wide lr=0.01"]
    assert cells["baseline lr=0.01"][-2:] == ["33.59%", "5,108"] and cells["wide lr=0.1"][-2:] == ["0.00%", "-"]
    assert cells["wide lr=0.1"][headers.index("top-1")] == "-"  # ours: nothing ran yet
    printed = capsys.readouterr().out
    assert "report top-1" in printed and "33.59%" in printed
