"""A study file's `reference:` (experiments/reference.py) in every kind of table: any column (top-5 error
included, stated as an error), by variation or by row label, in labelled blocks; a greedy file's reference
as a column of the greedy table; the tuned table's per-point rows; and a reference that names no row, or a
percentage out of range, refused with the file and line. Tables are made from plan.json, greedy.json and
tune.json as the study commands write them (nothing trains here)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cnnlab import api
from cnnlab.cli import main
from cnnlab.errors import ConfigError
from cnnlab.experiments.study import load_study, write_plan

COMPARE = """\
name: published
base: {model: lenet5, data: {name: digits, train_limit: 64}, epochs: 1, batch_size: 32}
variations:
  wide: {model.activation: relu}
grid: {optim.lr: [0.1, 0.01]}
reference:
  - label: 2010 test
    source: a paper's table 1
    top1_error: {baseline: 37.5, "wide lr=0.01": 40.7}
    top5_error: {baseline: 17.0}
  - label: 2012
    source: the line under it
    top5_error: {wide: 18.2}
"""

GREEDY = """\
name: greedy_published
mode: greedy
base: {model: lenet5, data: {name: digits, train_limit: 64}, epochs: 1, batch_size: 32}
stages:
  - activation: {keep: {}, relu: {model.activation: relu}}
  - batch: {keep: {}, small: {batch_size: 16}}
reference:
  source: a report's appendix
  top1: {keep: 33.59, "batch:small": 41.05, final: 44.0}
  seconds: {relu: 5108}
"""


def planned(tmp_path: Path, text: str) -> Path:
    """The study directory `study run` starts from: plan.json (and study.yaml), nothing trained yet."""
    (tmp_path / "study.yaml").write_text(text)
    out = tmp_path / "out"
    out.mkdir()
    write_plan(load_study(tmp_path / "study.yaml"), out)
    return out


def markdown_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
    split = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return split[0], split[2:]


def test_top5_error_columns_show_the_published_numbers_in_their_rows(tmp_path: Path, capsys) -> None:
    out = planned(tmp_path, COMPARE)
    assert main(["study", "table", str(out)]) == 0
    headers, rows = markdown_rows(out / "table.md")
    assert headers[headers.index("params") + 1:] == [
        "report top-1 error (2010 test)", "report top-5 error (2010 test)", "report top-5 error (2012)"]
    cells = {row[0]: dict(zip(headers, row, strict=True)) for row in rows}
    assert list(cells) == ["baseline lr=0.1", "baseline lr=0.01", "wide lr=0.1", "wide lr=0.01"]
    published = {name: [row[h] for h in headers[-3:]] for name, row in cells.items()}
    assert published == {"baseline lr=0.1": ["37.50%", "17.00%", "-"], "baseline lr=0.01": ["37.50%", "17.00%", "-"],
                         "wide lr=0.1": ["-", "-", "18.20%"], "wide lr=0.01": ["40.70%", "-", "18.20%"]}
    assert cells["baseline lr=0.1"]["top-5"] == "-"  # ours (an accuracy): nothing ran yet
    notes = (out / "table.md").read_text()
    assert "report columns (2010 test): a paper's table 1; 'error' columns are error rates in % (100 - accuracy)" \
        in notes and "report columns (2012): the line under it" in notes
    with (out / "table.csv").open() as handle:
        saved = {row["variation"]: row for row in csv.DictReader(handle)}
    assert saved["wide lr=0.01"]["report_top1_error_2010_test"] == "40.7"
    assert saved["wide lr=0.1"]["report_top5_error_2012"] == "18.2"
    assert "18.20%" in capsys.readouterr().out  # and printed


def test_a_greedy_files_reference_is_a_column_of_the_greedy_table(tmp_path: Path) -> None:
    out = planned(tmp_path, GREEDY)
    alternative = {"runs": ["r"], "status": "completed", "val_acc": 0.5, "test_acc": 0.4}
    stages = [{"stage": "activation", "alternatives": {"keep": alternative, "relu": alternative}, "chosen": "relu"},
              {"stage": "batch", "alternatives": {"keep": alternative, "small": alternative}, "chosen": "small"}]
    final = {"stage": "batch", "alternative": "small", **alternative, "choices": ["relu", "small"]}
    (out / "greedy.json").write_text(json.dumps({"stages": stages, "final": final, "interrupted": False}))
    table = api.study_table(out)
    assert table.headers[-2:] == ["report top-1", "report s"]
    published = [(row[0], row[1], row[-2], row[-1]) for row in table.rows]
    assert published == [("activation", "keep", "33.59%", "-"), ("activation", "relu", "-", "5,108"),
                         ("batch", "keep", "33.59%", "-"), ("batch", "small", "41.05%", "-"),
                         ("final", "relu + small", "44.00%", "-")]
    assert any(note.startswith("report columns: a report's appendix") for note in table.notes)
    headers, rows = markdown_rows(out / "table.md")
    assert headers == table.headers and rows == table.rows


@pytest.mark.parametrize(("text", "message"), [
    (GREEDY.replace('"batch:small"', '"batch:large"'), r"reference top1 names 'batch:large', which is not a row"),
    (COMPARE.replace('"wide lr=0.01"', '"wide lr=0.5"'), r"reference top1_error names 'wide lr=0.5', which is not"),
    (COMPARE.replace("top5_error: {baseline: 17.0}", "top5_error: {baseline: 170}"),
     r"reference top5_error is a percentage between 0 and 100 \(baseline: 170\)"),
    (COMPARE.replace("top5_error: {wide: 18.2}", "top5_eror: {wide: 18.2}"), r"'top5_eror' is not a reference key"),
    (COMPARE.replace("label: 2012", "label: 2010 test"), r"each block of a reference list needs its own label"),
])
def test_a_reference_the_study_cannot_show_is_refused_with_the_file_and_line(tmp_path: Path, capsys, text: str,
                                                                              message: str) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"study.yaml:\d+: " + message):
        load_study(path)
    assert main(["study", "run", str(path), "--dir", str(tmp_path / "out")]) == 2
    assert "reference" in capsys.readouterr().err and not (tmp_path / "out").exists()


TUNED = """\
name: tuned_published
protocol: tune
base: {model: lenet5, data: {name: digits, train_limit: 64, val_fraction: 0.2}, epochs: 1, batch_size: 16,
       schedule: step}
variations:
  scratch: {}
  finetune: {model.activation: relu}
zip: {optim.lr: [0.1, 0.01], schedule.step_size: [20, 30]}
reference:
  source: a paper's section 7
  top1: {scratch: 50.92, finetune: 85.0}
  best_val: {"finetune lr=0.1 step_size=20": 86.3, "finetune lr=0.01 step_size=30": 87.21}
  best_epoch: {"finetune lr=0.01 step_size=30": 90}
"""


def test_the_tuned_table_puts_each_points_published_numbers_beside_its_row(tmp_path: Path) -> None:
    out = planned(tmp_path, TUNED)
    plan = json.loads((out / "plan.json").read_text())

    def point(run: dict, best_val: float | None, epoch: int | None, status: str = "completed") -> dict:
        return {"run": run["name"], "variation": run["variation"], "grid": run["grid"], "status": status,
                "best_val_acc": best_val, "best_epoch": epoch, "epochs": 1, "discarded": status == "diverged",
                "why": "loss became NaN/Inf" if status == "diverged" else ""}

    scratch = [point(plan["runs"][0], 0.5, 1), point(plan["runs"][1], 0.6, 1)]
    finetune = [point(plan["runs"][2], None, None, "diverged"), point(plan["runs"][3], 0.8, 1)]
    (out / "tune.json").write_text(json.dumps({"variations": {
        "scratch": {"rows": scratch, "best": scratch[1], "final": None},
        "finetune": {"rows": finetune, "best": finetune[1], "final": None}}}))
    table = api.study_table(out)
    assert table.headers[-3:] == ["report top-1", "report best val", "report best ep."]
    by_name = {row[0]: row for row in table.rows}
    assert list(by_name) == ["scratch", "scratch lr=0.1 step_size=20", "scratch lr=0.01 step_size=30", "finetune",
                             "finetune lr=0.1 step_size=20", "finetune lr=0.01 step_size=30"]
    assert by_name["scratch"][-3:] == ["50.92%", "-", "-"] and by_name["finetune"][-3:] == ["85.00%", "-", "-"]
    assert by_name["finetune lr=0.01 step_size=30"][1:3] == ["chosen", "80.00%"]
    assert by_name["finetune lr=0.01 step_size=30"][-3:] == ["-", "87.21%", "90"]
    assert by_name["finetune lr=0.1 step_size=20"][1] == "discarded: loss became NaN/Inf"
    assert by_name["finetune lr=0.1 step_size=20"][-3:] == ["-", "86.30%", "-"]
    assert by_name["scratch lr=0.1 step_size=20"][-3:] == ["-", "-", "-"]


def test_the_crossing_ratio_reference_is_read_for_study_plot(tmp_path: Path) -> None:
    studies = Path(__file__).resolve().parents[2] / "studies"
    out = tmp_path / "out"
    out.mkdir()
    write_plan(load_study(studies / "relu_vs_tanh.yaml"), out)
    published = api.crossing_references(out)
    assert list(published) == ["tanh"] and published["tanh"].startswith("6x at 25% training error (seed 002")


# The seeds' published numbers (shared/seeds), copied here from the seeds themselves, to hold the study files to.
# Seed 002 (AlexNet, as presented), "Results": table 1 (ILSVRC-2010 test set, the CNN row: top-1 37.5%, top-5
# 17.0%, error rates) and the line under it (ILSVRC-2012: top-5 error 18.2%); "Figure 8": ReLU reached 25%
# training error on CIFAR-10 "six times faster" than tanh.
ALEXNET_2010_TEST = {"top1_error": 37.5, "top5_error": 17.0}
ALEXNET_2012_TOP5_ERROR = 18.2
RELU_TANH_RATIO = 6
# Seed 004 (Bagnoli 2019), section 7.2, from scratch: (eta, step_size) -> (best validation accuracy %, its epoch,
# the epoch training ended or None where the text gives none); the best pair retrained for 90 epochs: test 50.92%.
# (0.001, 60) ended at epoch 28: its text has the peak at epoch 3, "constant for the next 25 epochs", then the stop.
CALTECH_SCRATCH = {(0.1, 20): (16.25, 6, 8), (0.01, 30): (47.61, 92, 185), (0.01, 45): (53.63, 90, None),
                   (0.001, 60): (9.19, 3, 28)}
# Section 7.3, table 2 ("TL results"): (eta, step_size) -> (max accuracy %, its epoch, epoch of exit).
CALTECH_FINETUNE_TABLE_2 = {(0.01, 30): (86.30, 52, 120), (0.01, 45): (87.21, 90, 115), (0.001, 60): (85.13, 113, 180)}
# Sections 7.2 and 7.3: test accuracy after retraining on train + validation.
CALTECH_TEST = {"scratch": 50.92, "finetune": 85.00, "frozen_conv": 88.52, "frozen_fc": 72.42}
STUDIES = Path(__file__).resolve().parents[2] / "studies"


def study_file(stem: str) -> dict:
    import yaml

    return yaml.safe_load((STUDIES / f"{stem}.yaml").read_text())


def test_the_alexnet_and_relu_files_quote_seeds_000_and_002() -> None:
    blocks = {block["label"]: block for block in study_file("alexnet_imagenet")["reference"]}
    assert set(blocks) == {"ILSVRC-2010 test", "ILSVRC-2012 validation"}
    assert {key: blocks["ILSVRC-2010 test"][key] for key in ALEXNET_2010_TEST} == {
        key: {"baseline": value} for key, value in ALEXNET_2010_TEST.items()}
    # seed 000 reproduces the paper's table 2: one CNN's ILSVRC-2012 validation errors, top-1 40.7, top-5 18.2
    assert blocks["ILSVRC-2012 validation"]["top1_error"] == {"baseline": 40.7}
    assert blocks["ILSVRC-2012 validation"]["top5_error"] == {"baseline": ALEXNET_2012_TOP5_ERROR}
    assert "seeds 000 and 002" in blocks["ILSVRC-2010 test"]["source"]
    assert "seed 000" in blocks["ILSVRC-2012 validation"]["source"] and "table 2" in \
        blocks["ILSVRC-2012 validation"]["source"]
    header = (STUDIES / "alexnet_imagenet.yaml").read_text().split("reference:")[0]
    assert "columns are accuracies" not in header and "*validation* errors, top-1 40.7%" in header
    relu = study_file("relu_vs_tanh")["reference"]
    assert relu["crossing_ratio"] == {"tanh": RELU_TANH_RATIO} and relu["label"] == "25% training error"


def test_the_caltech_file_quotes_seed_004_section_7() -> None:
    reference = study_file("caltech101_alexnet")["reference"]
    assert "section 7" in reference["source"] and "section 6" not in reference["source"]
    assert reference["top1"] == CALTECH_TEST and reference["final_epochs"] == {"scratch": 90}
    expected: dict[str, dict] = {"best_val": {}, "best_epoch": {}, "epochs": {}}
    for variation, pairs in (("scratch", CALTECH_SCRATCH), ("finetune", CALTECH_FINETUNE_TABLE_2)):
        for (lr, step_size), numbers in pairs.items():
            for key, value in zip(expected, numbers, strict=True):
                if value is not None:
                    expected[key][f"{variation} lr={lr} step_size={step_size}"] = value
    assert {key: reference[key] for key in expected} == expected
    # and every row those numbers name is a row of the planned study (the study refuses any other)
    labels = {f"{v} lr={lr} step_size={s}" for v in ("scratch", "finetune") for lr, s in CALTECH_SCRATCH}
    assert set(reference["best_val"]) <= labels


def test_the_report_file_says_its_texts_batch_norm_drop_contradicts_its_appendix() -> None:
    """Seed 001: section 5.5 says "a drop of almost 9%", the appendix goes from 69.03 (4.D) to 52.31 (4.E)."""
    header = (STUDIES / "eq2425_report.yaml").read_text().split("\nname:")[0]
    assert '"a drop of almost 9%"' in header and "69.03% (4.D) to 52.31% (4.E), 16.72 points" in header
    reference = study_file("eq2425_report")["reference"]
    assert round(reference["top1"]["4.D_dropout"] - reference["top1"]["4.E_batch_norm"], 2) == 16.72

