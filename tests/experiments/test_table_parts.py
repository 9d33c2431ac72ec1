"""`study table`'s parts by hand (experiments/table.py): one run's numbers read from its directory (run.json and
metrics.csv as cnnlab writes them), rows grouped and aggregated over seeds, each cell's format, the CSV and
Markdown files, and the epoch an error curve crosses a line. The study runs end to end in test_study.py."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cnnlab.experiments.table import (
    _cell,
    _statuses,
    aggregate,
    crossings,
    delta_cell,
    first_crossing,
    formatted,
    grouped,
    label,
    markdown,
    references,
    run_row,
    study_rows,
    write_tables,
)
from cnnlab.runs import RunRecord, Status
from tests.experiments.test_verdicts import _run


def a_run(directory: Path, name: str, status: Status = Status.COMPLETED, curve: list[tuple] | None = None,
          **record) -> Path:
    """A finished run's directory as the table reads it: config.yaml, run.json and metrics.csv."""
    path = directory / name
    path.mkdir(parents=True)
    (path / "config.yaml").write_text("seed: 0\n")
    RunRecord(status=status, **record).save(path / "run.json")
    if curve is not None:
        with open(path / "metrics.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["epoch", "train_acc", "val_acc"])
            writer.writerows([(i + 1, *values) for i, values in enumerate(curve)])
    return path


def test_run_row_reads_a_runs_directory(tmp_path: Path) -> None:
    path = a_run(tmp_path, "r", curve=[(0.4, 0.3), (0.6, 0.55), (0.7, 0.5)], best_epoch=2, epochs_completed=3,
                 train_seconds=12.5, images_per_second=800.0, parameters=1234,
                 test={"acc": 0.52, "top5": 0.9, "loss": 1.3, "count": 359}, data={"classes": ["a", "b", "c"]})
    row = run_row(path, {"name": "r", "variation": "v", "seed": 4, "grid": {"optim.lr": 0.1}})
    assert {k: row[k] for k in ("run", "variation", "seed", "grid", "status", "test_acc", "test_top5", "test_loss",
                                "test_count", "best_val_acc", "best_epoch", "epochs", "train_seconds",
                                "images_per_second", "parameters", "num_classes", "val_curve", "curve_kind")} == {
        "run": "r", "variation": "v", "seed": 4, "grid": {"optim.lr": 0.1}, "status": "completed", "test_acc": 0.52,
        "test_top5": 0.9, "test_loss": 1.3, "test_count": 359, "best_val_acc": 0.55, "best_epoch": 2, "epochs": 3,
        "train_seconds": 12.5, "images_per_second": 800.0, "parameters": 1234, "num_classes": 3,
        "val_curve": [0.3, 0.55, 0.5], "curve_kind": "validation"}
    assert row["path"] == str(path)


def test_run_row_without_validation_reads_the_training_curve_and_a_missing_run_is_not_run(tmp_path: Path) -> None:
    path = a_run(tmp_path, "whole", curve=[(0.4, ""), (0.6, "")], epochs_completed=2)
    row = run_row(path, {"name": "whole", "variation": "v", "seed": 0})
    assert row["val_curve"] == [0.4, 0.6] and row["curve_kind"] == "training" and row["best_val_acc"] is None
    assert row["grid"] == {} and row["test_acc"] is None and row["num_classes"] is None
    missing = run_row(tmp_path / "nothing", {"name": "nothing", "variation": "v", "seed": 0})
    assert (missing["status"], missing["epochs"], missing["train_seconds"], missing["val_curve"]) == (
        "not run", None, None, [])


def test_rows_are_labelled_grouped_and_referenced_by_variation_and_grid_point() -> None:
    assert label({"variation": "adam", "grid": {"optim.lr": 0.1, "train.batch_size": 64}}) == "adam lr=0.1 batch_size=64"
    assert label({"variation": "adam", "grid": {}}) == "adam"
    rows = [_run("adam", 0, 0.5, grid={"optim.lr": 0.1}), _run("first", 0, 0.4, grid={"optim.lr": 0.1}),
            _run("adam", 1, 0.6, grid={"optim.lr": 0.1}), _run("first", 0, 0.3, grid={"optim.lr": 0.01})]
    groups = grouped(rows)
    assert list(groups) == ["adam lr=0.1", "first lr=0.1", "first lr=0.01"] and len(groups["adam lr=0.1"]) == 2
    # no 'baseline' variation: the first one listed is the reference, at the same grid point where it has one
    assert references(groups) == {"adam lr=0.1": None, "first lr=0.1": "adam lr=0.1", "first lr=0.01": "adam lr=0.1"}
    assert references(groups, {"adam": "first"}) == {"adam lr=0.1": "first lr=0.1", "first lr=0.1": "adam lr=0.1",
                                                     "first lr=0.01": "adam lr=0.1"}
    assert references({}) == {}


def test_aggregate_takes_mean_and_spread_over_the_finished_seeds_only() -> None:
    rows = [_run("baseline", 0, 0.50), _run("baseline", 1, 0.60), _run("baseline", 2, None, status="diverged"),
            _run("wide", 0, 0.70)]
    rows[0]["best_epoch"], rows[1]["best_epoch"] = 3, 5
    table = {entry["variation"]: entry for entry in aggregate(rows)}
    base = table["baseline"]
    assert base["runs"] == 3 and base["status"] == "2 completed, 1 diverged"
    assert base["test_acc"] == pytest.approx(0.55) and base["test_acc_std"] == pytest.approx(0.0707106781)
    assert base["best_epoch"] == 4 and base["best_epoch_std"] == pytest.approx(1.4142135623)
    assert base["parameters"] is None and base["parameters_std"] is None
    wide = table["wide"]
    assert wide["status"] == "completed" and wide["test_acc_std"] is None  # one seed: no spread
    assert wide["delta_test_acc"] == pytest.approx(0.70 - 0.55)  # no seed in common: the difference of the means
    assert base["delta_test_acc"] == 0 and wide["reference"] == "baseline"
    assert _statuses([{"status": "completed"}]) == "completed"


def test_cells_print_each_kind_of_number() -> None:
    assert [_cell(0.5512, None, "pct"), _cell(0.5512, 0.0123, "pct"), _cell(None, 0.1, "pct")] == [
        "55.12%", "55.12% ± 1.23", "-"]
    assert [_cell(1234.4, None, "int"), _cell(12.345, None, "float"), _cell(12.345, 0.456, "float"),
            _cell(4567.8, 12.0, "float"), _cell(0.0, None, "float")] == ["1,234", "12.3", "12.3 ± 0.46",
                                                                         "4,568 ± 12", "0"]
    assert delta_cell({"delta_test_acc": 0.0123}, "test_acc") == "+1.23"
    assert delta_cell({"delta_test_acc": -0.0123, "delta_low": -0.03, "delta_high": 0.005}, "test_acc") == (
        "-1.23 [-3.00, +0.50]")
    assert delta_cell({"delta_test_top5": 0.01}, "test_top5") == "+1.00"
    assert delta_cell({"delta_train_seconds": 12.345, "delta_low": None}, "train_seconds") == "+12.3"
    assert delta_cell({}, "test_acc") == "-" and delta_cell({"delta_test_acc": None}, "test_acc") == "-"


def test_formatted_rows_and_the_files_written(tmp_path: Path) -> None:
    rows = [_run("baseline", 0, 0.5), _run("baseline", 1, 0.6), _run("wide", 0, 0.7), _run("wide", 1, 0.8)]
    table = aggregate(rows)
    headers, cells = formatted(table)
    assert headers == ["variation", "runs", "status", "top-1", "top-5", "best val", "best ep.", "train s", "img/s",
                       "params", "Δ top-1 [95% CI]", "verdict", "checks"]
    assert cells[0][:4] == ["baseline", "2", "2 completed", "55.00% ± 7.07"] and cells[0][-3:] == [
        "+0.00", "reference", ""]
    assert cells[1][3] == "75.00% ± 7.07" and cells[1][-3].startswith("+20.00 [") and cells[1][-2] == "within noise"
    assert formatted(table, "best_val_acc")[0][-3] == "Δ best val [95% CI]"
    assert markdown(["a", "b"], [["1", "2"]]) == "| a | b |\n|---|---|\n| 1 | 2 |\n"
    csv_path, md_path = write_tables(table, tmp_path, notes=["first note", "second"])
    assert md_path.read_text() == markdown(headers, cells) + "\n- first note\n- second\n"
    with open(csv_path, newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [r["variation"] for r in written] == ["baseline", "wide"] and float(written[1]["test_acc"]) == 0.75
    assert list(written[0])[:3] == ["variation", "runs", "status"]
    write_tables(table, tmp_path)
    assert md_path.read_text() == markdown(headers, cells)  # no notes: no trailing list
    empty_csv, _ = write_tables([], tmp_path / "none")
    assert empty_csv.read_text().strip() == "variation"


def test_first_crossing_edges() -> None:
    assert first_crossing([0.5, 0.25], 0.25) == 2.0  # reaching the line exactly is crossing it
    assert first_crossing([0.5, 0.4, 0.4, 0.2], 0.3) == pytest.approx(3.5)
    assert first_crossing([0.5, 0.1], 0.25) == pytest.approx(1 + 0.25 / 0.4)
    assert first_crossing([0.3, 0.2], 0.25) == pytest.approx(1.5)
    assert first_crossing([None, 0.2], 0.25) == 2.0  # nothing before it to interpolate from
    assert first_crossing([], 0.25) is None


def test_crossings_average_each_variations_seeds(tmp_path: Path) -> None:
    from cnnlab.experiments.study import load_study, write_plan

    (tmp_path / "s.yaml").write_text("name: s\nbase: {model: lenet5, data: digits}\nvariations: {wide: {epochs: 2}}\n"
                                     "seeds: [0, 1]\n")
    study = load_study(tmp_path / "s.yaml")
    write_plan(study, tmp_path)
    names = {(spec.variation, spec.seed): spec.name for spec in study.runs}
    a_run(tmp_path, names["baseline", 0], curve=[(0.5, ""), (0.7, ""), (0.9, "")])
    a_run(tmp_path, names["baseline", 1], curve=[(0.5, ""), (0.8, "")])  # shorter: the mean stops with it
    a_run(tmp_path, names["wide", 0], curve=[(0.1, ""), (0.2, "")])
    # baseline's mean error: 0.5, 0.25 -> crosses 0.3 at 1 + (0.5 - 0.3) / (0.5 - 0.25) = 1.8; wide never does
    assert crossings(tmp_path, 0.3) == pytest.approx({"baseline": 1.8, "wide": None})
    assert [row["status"] for row in study_rows(tmp_path)] == ["completed", "completed", "completed", "not run"]
