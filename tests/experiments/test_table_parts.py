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
from cnnlab.experiments.verdicts import VerdictOptions
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
    # what a reader takes away comes first: the row, what it is compared with, Δ and the verdict (issue 33)
    assert headers == ["variation", "vs", "Δ top-1 [95% CI]", "verdict", "checks", "runs", "status", "top-1", "top-5",
                       "best val", "best ep.", "train s", "img/s", "params"]
    assert cells[0][:8] == ["baseline", "", "+0.00", "reference", "", "2", "2 completed", "55.00% ± 7.07"]
    assert cells[1][:4] == ["wide", "baseline", cells[1][2], "within noise"] and cells[1][2].startswith("+20.00 [")
    assert cells[1][7] == "75.00% ± 7.07"
    assert formatted(table, "best_val_acc")[0][2] == "Δ best val [95% CI]"
    # the header prints the confidence the interval has: 80% at alpha 0.2
    from cnnlab.experiments.verdicts import VerdictOptions

    assert formatted(aggregate(rows, options=VerdictOptions(alpha=0.2)))[0][2] == "Δ top-1 [80% CI]"
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


def test_a_folder_without_config_yaml_is_not_a_run_yet(tmp_path: Path) -> None:
    path = a_run(tmp_path, "half", test={"acc": 0.9, "count": 10}, images_per_second=500.0, epochs_completed=2)
    (path / "config.yaml").unlink()  # a run being created: run.json is not its yet
    row = run_row(path, {"name": "half", "variation": "v", "seed": 0})
    assert (row["status"], row["test_acc"], row["epochs"], row["images_per_second"]) == ("not run", None, None, None)
    missing = run_row(tmp_path / "nothing", {"name": "nothing", "variation": "v", "seed": 0})
    assert missing["images_per_second"] is None and missing["train_seconds"] is None


def test_labels_of_one_part_keys_and_references_at_their_edges() -> None:
    assert label({"variation": "lucky", "grid": {"seed": 3, "optim.lr": 0.1}}) == "lucky seed=3 lr=0.1"
    one = [{"variation": "adam", "seed": 0}, {"variation": "baseline", "seed": 0}, {"variation": "sgd", "seed": 0}]
    for row in one:
        row["grid"] = {}
    groups = grouped(one)
    # 'baseline' is the reference wherever it is listed; rows without a grid compare at no grid point
    assert references(groups) == {"adam": "baseline", "baseline": None, "sgd": "baseline"}
    bare = {"adam": [{"variation": "adam"}], "sgd": [{"variation": "sgd"}]}  # rows that never had a grid
    assert references(bare) == {"adam": None, "sgd": "adam"}


def test_aggregate_uses_the_options_and_leaves_a_row_without_numbers_without_a_delta() -> None:
    from cnnlab.experiments.verdicts import VerdictOptions

    rows = [_run("baseline", s, a) for s, a in enumerate([0.50, 0.52, 0.51])]
    rows += [_run("row", s, a) for s, a in enumerate([0.51, 0.54, 0.515])]  # p = 0.12 (test_verdicts_edges)
    rows += [_run("hot", s, None, status="diverged") for s in range(3)]
    default = {e["variation"]: e for e in aggregate(rows)}
    loose = {e["variation"]: e for e in aggregate(rows, options=VerdictOptions(alpha=0.2))}
    assert default["row"]["verdict"] == "within noise" and loose["row"]["verdict"] == "better"
    assert default["hot"]["delta_test_acc"] is None and default["hot"]["verdict"] == "diverged"


def predicted_run(directory: Path, name: str, right: int, count: int = 40) -> Path:
    """A finished run with per-image test results: the first `right` of `count` images correct."""
    import torch

    from cnnlab.runs.predictions import write_predictions

    labels = torch.arange(count) % 4
    predicted = labels.clone()
    predicted[right:] = (labels[right:] + 1) % 4
    path = a_run(directory, name, test={"acc": right / count, "count": count}, data={"classes": ["a", "b", "c", "d"]})
    write_predictions(path, {"test": {"predicted": predicted, "label": labels}})
    return path


def test_judge_runs_compares_each_run_with_the_reference_image_by_image(tmp_path: Path) -> None:
    from cnnlab.evaluate import stats
    from cnnlab.experiments.table import judge_runs

    runs = {"sgd": predicted_run(tmp_path, "sgd", 20), "adam": predicted_run(tmp_path, "adam", 36), "lost": None}
    verdicts = judge_runs(runs, "sgd")
    right = lambda n: [i < n for i in range(40)]  # noqa: E731
    expected = stats.mcnemar(right(36), right(20))  # 16 images only adam gets right, none the reverse
    adam = verdicts["adam"]
    assert adam["reference"] == "sgd" and adam["method"] == "McNemar exact" and adam["discordant"] == [16, 0]
    # one run a row: McNemar's interval and p are kept, but one seed says nothing about the configurations
    assert adam["delta_test_acc"] == pytest.approx(0.4) and adam["verdict"] == "1 seed"
    assert (adam["delta_low"], adam["delta_high"], adam["p_holm"]) == pytest.approx(
        (expected.low, expected.high, expected.p_value))
    assert verdicts["sgd"]["verdict"] == "reference" and verdicts["sgd"]["delta_test_acc"] == 0.0
    assert verdicts["lost"]["verdict"] == "-" and verdicts["lost"]["delta_test_acc"] is None
    loose = judge_runs(runs, "sgd", options=VerdictOptions(min_effect=0.5))
    assert loose["adam"]["verdict"] == "1 seed"  # (+40 points, inside ±50: still one seed)
    assert judge_runs(runs, "sgd", metric="test_top5")["adam"]["verdict"] == "-"  # no top-5 recorded


def test_verdict_fields_and_the_notes_under_a_table() -> None:
    from cnnlab.evaluate.stats import Comparison
    from cnnlab.experiments.table import table_notes, verdict_fields
    from cnnlab.experiments.verdicts import RowVerdict

    comparison = Comparison(0.1, 0.05, 0.15, 0.01, "McNemar exact", 1, (12, 2))
    verdict = RowVerdict("base", "better", comparison, 0.02, at_chance=True, still_learning=True, note="one seed")
    assert verdict_fields(verdict) == {
        "reference": "base", "verdict": "better", "verdict_cell": "better", "checks": "at chance, still learning",
        "delta_low": 0.05, "delta_high": 0.15, "p_holm": 0.02, "method": "McNemar exact", "seeds_compared": None,
        "discordant": [12, 2], "verdict_note": "one seed"}
    assert verdict_fields(RowVerdict(None, "reference")) == {
        "reference": None, "verdict": "reference", "verdict_cell": "reference", "checks": "", "delta_low": None,
        "delta_high": None, "p_holm": None, "method": None, "seeds_compared": None, "discordant": None,
        "verdict_note": ""}
    # a row whose seeds partly failed says so in its cell
    partly = RowVerdict("base", "within noise", comparison, 0.3, seeds=2, planned=3)
    assert verdict_fields(partly)["verdict_cell"] == "within noise (2 of 3 seeds)"
    table = [{"variation": "a", "verdict_note": "one seed"}, {"variation": "b", "verdict_note": ""},
             {"variation": "c", "verdict_note": "one seed"}, {"variation": "d", "verdict_note": "older run"}]
    swapped = [_run("a", 0, 0.5, curve=[0.1, 0.5, 0.6, 0.9]), _run("b", 0, 0.5, curve=[0.2, 0.6, 0.7, 0.8])]
    notes = table_notes(swapped, table, VerdictOptions(alpha=0.05, min_effect=0.005))
    assert notes[:3] == [
        "verdict: Δ against the row in 'vs' (paired t over the seeds both rows finished, 95% interval); better/worse "
        "at alpha 0.05 after Holm's correction over the rows, equivalent when the interval lies inside ±0.5 points; "
        "one seed gives no verdict ('1 seed')",
        "a, c: one seed", "d: older run"]
    assert len(notes) == 4 and notes[3].startswith("the ranking changed")
    # the confidence the table used, not always 95%
    assert "80% interval" in table_notes(swapped, table, VerdictOptions(alpha=0.2))[0]
    assert len(table_notes(swapped[:1], table[1:2], VerdictOptions())) == 1


def test_more_cells_headers_and_files(tmp_path: Path) -> None:
    assert [_cell(12.4, None, "int"), _cell(12.4, 1.0, "int"), _cell(1000.0, None, "float"),
            _cell(999.4, None, "float")] == ["12", "12", "1,000", "999"]
    assert delta_cell({"delta_train_seconds": 12345.6}, "train_seconds") == "+1.23e+04"
    rows = [_run("baseline", 0, 0.5), _run("wide", 0, 0.7)]
    table = aggregate(rows)
    assert formatted(table, "test_loss")[0][2] == "Δ test_loss [95% CI]"
    bare = [{"variation": "x", "runs": 1, "status": "not run", **{k: None for k in (
        "test_acc", "test_top5", "best_val_acc", "best_epoch", "train_seconds", "images_per_second", "parameters")}}]
    assert formatted(bare)[1][0][1:5] == ["", "-", "-", ""]  # no reference, no Δ, no verdict, no checks
    csv_path, md_path = write_tables(table, tmp_path, metric="best_val_acc")
    assert (csv_path, md_path) == (tmp_path / "table.csv", tmp_path / "table.md")
    assert "Δ best val [95% CI]" in md_path.read_text().splitlines()[0]


def test_build_table_reads_the_metric_compare_to_and_reference_from_the_plan(tmp_path: Path) -> None:
    from cnnlab.experiments.study import load_study, write_plan
    from cnnlab.experiments.table import build_table

    (tmp_path / "s.yaml").write_text(
        "name: s\nbase: {model: lenet5, data: digits}\nmetric: best_val_acc\nvariations:\n  wide: {epochs: 2}\n"
        "  wider: {epochs: 3}\ncompare_to: {wider: wide}\nreference: {source: the paper, top1: {wide: 12.5}}\n")
    study = load_study(tmp_path / "s.yaml")
    write_plan(study, tmp_path)
    for spec, curve in zip(study.runs, ([("", 0.5)], [("", 0.75)], [("", 0.5), ("", 0.875)])):
        a_run(tmp_path, spec.name, curve=curve, test={"acc": 0.5, "count": 100})
    table, notes = build_table(tmp_path)
    by_name = {entry["variation"]: entry for entry in table}
    assert by_name["wider"]["reference"] == "wide" and by_name["wide"]["reference"] == "baseline"
    assert by_name["wider"]["delta_best_val_acc"] == pytest.approx(0.125)  # the plan's metric, against compare_to
    assert by_name["wide"]["report_top1"] == 12.5 and by_name["baseline"]["report_top1"] is None
    assert notes[0].startswith("verdict: Δ against the row in 'vs' (paired t over the seeds both rows finished")
    assert notes[-1].startswith("report columns: the paper")  # the plan's reference names its source
    # an older plan.json without a metric: top-1 on test
    import json

    plan = json.loads((tmp_path / "plan.json").read_text())
    del plan["metric"], plan["digest"]  # (nor its digest, which plans have carried since)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    table, _ = build_table(tmp_path)
    assert all("delta_test_acc" in entry and "delta_best_val_acc" not in entry for entry in table)


def test_build_table_passes_the_verdict_options_on(tmp_path: Path) -> None:
    from cnnlab.experiments.study import load_study, write_plan
    from cnnlab.experiments.table import build_table

    (tmp_path / "s.yaml").write_text("name: s\nbase: {model: lenet5, data: digits}\nvariations: {wide: {epochs: 2}}\n"
                                     "seeds: [0, 1]\n")
    study = load_study(tmp_path / "s.yaml")
    write_plan(study, tmp_path)
    accuracy = {("baseline", 0): 0.50, ("baseline", 1): 0.60, ("wide", 0): 0.52, ("wide", 1): 0.63}
    for spec in study.runs:  # wide gains 2 and 3 points: t = 5 with one degree of freedom, p = 0.126
        a_run(tmp_path, spec.name, test={"acc": accuracy[spec.variation, spec.seed], "count": 1000})
    default = {entry["variation"]: entry for entry in build_table(tmp_path)[0]}
    loose = {entry["variation"]: entry for entry in build_table(tmp_path, VerdictOptions(alpha=0.2))[0]}
    assert default["wide"]["verdict"] == "within noise" and loose["wide"]["verdict"] == "better"


def test_the_checks_column_shows_what_was_found() -> None:
    rows = [_run("baseline", 0, 0.5), _run("guess", 0, 0.104, count=1000, classes=10)]
    headers, cells = formatted(aggregate(rows))
    assert cells[1][headers.index("checks")] == "at chance" and cells[0][headers.index("checks")] == ""


def test_an_unreadable_run_is_one_note_naming_it_and_why() -> None:
    from cnnlab.experiments.table import UNREADABLE, problems

    rows = [{"run": "good"}, {"run": "bad", "problem": "run.json: 'test' must be an object"}, {"run": "empty",
                                                                                              "problem": ""}]
    assert problems(rows) == [f"run bad is {UNREADABLE}: run.json: 'test' must be an object"]


def test_one_seed_rows_count_what_mcnemars_words_would_have_said() -> None:
    from cnnlab.experiments.table import table_notes

    table = [{"variation": "a", "verdict": "1 seed", "p_holm": 0.01, "verdict_note": ""},
             {"variation": "b", "verdict": "1 seed", "p_holm": 0.2, "verdict_note": ""},
             {"variation": "c", "verdict": "1 seed", "p_holm": 0.05, "verdict_note": ""},  # not below alpha
             {"variation": "d", "verdict": "within noise", "p_holm": 0.001, "verdict_note": ""}]
    notes = table_notes([], table, VerdictOptions())
    assert ("McNemar's exact test, after Holm, finds 1 of the 3 one-seed rows' networks different from their "
            "reference's on these images: a; that is about the trained networks, not the configurations (another "
            "seed may reverse it)") in notes
    assert "for a verdict over seeds: cnnlab study run STUDY.yaml --seeds 0,1,2 (or --until-decided)" in notes
    assert not any("McNemar" in note for note in table_notes([], table[3:], VerdictOptions()))


def test_a_table_of_some_seeds_reads_only_their_runs(tmp_path: Path) -> None:
    import json

    from cnnlab.errors import ConfigError
    from cnnlab.experiments.table import build_table

    runs = [{"name": f"{v}__seed{s}", "variation": v, "seed": s, "grid": {}} for v in ("baseline", "row")
            for s in range(3)]
    (tmp_path / "plan.json").write_text(json.dumps({"name": "s", "runs": runs}))
    for v, accs in (("baseline", (0.5, 0.6, 0.55)), ("row", (0.7, 0.72, 0.71))):
        for seed, acc in enumerate(accs):
            a_run(tmp_path, f"{v}__seed{seed}", test={"acc": acc, "count": 1000})
    whole, _ = build_table(tmp_path)
    assert whole[1]["runs"] == 3 and whole[1]["method"] == "paired t (3 seeds)"
    some, _ = build_table(tmp_path, seeds=[0, 2])
    assert some[1]["runs"] == 2 and some[1]["method"] == "paired t (2 seeds)"
    assert some[1]["test_acc"] == pytest.approx(0.705)
    with pytest.raises(ConfigError, match="has no run of seeds 7: its seeds are 0, 1, 2"):
        build_table(tmp_path, seeds=[7])


def test_a_baseline_cnnlab_added_is_said_once(tmp_path: Path) -> None:
    import json

    from cnnlab.experiments.study import load_study, write_plan
    from cnnlab.experiments.table import build_table

    (tmp_path / "s.yaml").write_text("name: s\nbase: {model: lenet5, data: digits}\nvariations: {wide: {epochs: 2}}\n")
    study = load_study(tmp_path / "s.yaml")
    write_plan(study, tmp_path)
    assert json.loads((tmp_path / "plan.json").read_text())["implicit_baseline"] is True
    said = [note for note in build_table(tmp_path)[1] if "cnnlab added it as the reference" in note]
    assert said == ["'baseline' is the study's base config unchanged: cnnlab added it as the reference because "
                    "every variation of the file changes something"]
    (tmp_path / "t.yaml").write_text("name: t\nbase: {model: lenet5, data: digits}\nvariations: {baseline: {}, "
                                     "wide: {epochs: 2}}\n")
    written = tmp_path / "written"
    written.mkdir()
    write_plan(load_study(tmp_path / "t.yaml"), written)
    assert not any("cnnlab added it" in note for note in build_table(written)[1])


def test_the_forest_plot_draws_a_line_per_compared_row(tmp_path: Path) -> None:
    from PIL import Image

    from cnnlab.viz.study import plot_forest

    rows = [_run("baseline", s, a) for s, a in enumerate([0.50, 0.52, 0.51])]
    rows += [_run("wide", s, a) for s, a in enumerate([0.60, 0.63, 0.61])]
    rows += [_run("same", s, a) for s, a in enumerate([0.501, 0.521, 0.509])]
    table = aggregate(rows)
    few = plot_forest(table, tmp_path / "forest.png", min_effect=0.005, title="t")
    many = plot_forest(table + [{**table[1], "variation": f"w{i}"} for i in range(6)], tmp_path / "more.png")
    with Image.open(few) as small, Image.open(many) as large:
        assert small.format == "PNG" and large.size[1] > small.size[1]  # a row more, the figure taller
