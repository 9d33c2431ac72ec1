"""Verdicts in tables: each row against the right reference, the right test for its seeds, Holm across rows."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from cnnlab.evaluate import stats
from cnnlab.experiments.table import aggregate, references
from cnnlab.experiments.verdicts import VerdictOptions, judge, ranking_note, row_at_chance, row_still_learning
from cnnlab.runs.predictions import write_predictions


def _run(variation, seed, acc, status="completed", grid=None, path="", curve=None, count=1000, classes=10):
    return {"run": f"{variation}_{seed}", "variation": variation, "seed": seed, "grid": grid or {}, "status": status,
            "test_acc": acc if status in ("completed", "stopped_early") else None, "path": path,
            "test_count": count, "num_classes": classes, "val_curve": curve or [],
            **{k: None for k in ("test_top5", "best_val_acc", "best_epoch", "train_seconds", "images_per_second",
                                 "parameters", "test_loss", "epochs")}}


def test_each_row_is_compared_with_its_own_reference():
    rows = [_run("baseline", s, a) for s, a in enumerate([0.50, 0.52, 0.51])]
    rows += [_run("wide", s, a) for s, a in enumerate([0.70, 0.71, 0.72])]
    rows += [_run("wide_fc", s, a) for s, a in enumerate([0.70, 0.712, 0.719])]
    table = {e["variation"]: e for e in aggregate(rows, compare_to={"wide_fc": "wide"})}
    assert table["baseline"]["verdict"] == "reference" and table["baseline"]["reference"] is None
    assert table["wide"]["reference"] == "baseline" and table["wide"]["verdict"] == "better"
    assert table["wide"]["delta_test_acc"] == pytest.approx(0.20)
    # against 'wide' (its compare_to), not against the baseline it beats by 20 points
    assert table["wide_fc"]["reference"] == "wide"
    assert table["wide_fc"]["delta_test_acc"] == pytest.approx(0.001 / 3, abs=1e-9)
    assert table["wide_fc"]["verdict"] == "equivalent"
    expected = stats.paired_seeds([0.70, 0.712, 0.719], [0.70, 0.71, 0.72])
    assert (table["wide_fc"]["delta_low"], table["wide_fc"]["delta_high"]) == pytest.approx((expected.low, expected.high))


def test_grid_rows_compare_with_the_baseline_at_the_same_point():
    rows = [_run("baseline", s, 0.5 + 0.1 * s, grid={"optim.lr": 0.1}) for s in range(2)]
    rows += [_run("baseline", s, 0.3 + 0.1 * s, grid={"optim.lr": 0.01}) for s in range(2)]
    rows += [_run("adam", s, 0.31 + 0.1 * s, grid={"optim.lr": 0.01}) for s in range(2)]
    groups = {}
    for row in rows:
        groups.setdefault(f"{row['variation']} lr={row['grid']['optim.lr']}", []).append(row)
    assert references(groups) == {"baseline lr=0.1": None, "baseline lr=0.01": None,
                                  "adam lr=0.01": "baseline lr=0.01"}


def test_holm_is_applied_across_the_rows_of_one_table():
    rows = [_run("baseline", s, 0.50 + d) for s, d in enumerate([0.0, 0.01, -0.01])]
    rows += [_run("a", s, 0.52 + d) for s, d in enumerate([0.0, 0.012, -0.009])]  # clearly higher, tiny spread
    rows += [_run("b", s, 0.55 + d) for s, d in enumerate([0.0, 0.03, -0.04])]
    groups = {}
    for row in rows:
        groups.setdefault(row["variation"], []).append(row)
    verdicts = judge(groups, {"a": "baseline", "b": "baseline"}, "test_acc", VerdictOptions())
    raw = [stats.paired_seeds([r["test_acc"] for r in groups[n]], [r["test_acc"] for r in groups["baseline"]]).p_value
           for n in ("a", "b")]
    assert [verdicts["a"].adjusted_p, verdicts["b"].adjusted_p] == pytest.approx(stats.holm(raw))
    assert verdicts["a"].adjusted_p > verdicts["a"].comparison.p_value


def test_one_seed_uses_mcnemar_on_the_runs_per_image_results(tmp_path):
    labels = torch.arange(40) % 4
    reference_predicted = labels.clone()
    reference_predicted[:10] = (labels[:10] + 1) % 4  # the reference gets 30 of 40 right
    row_predicted = labels.clone()
    row_predicted[30:32] = (labels[30:32] + 1) % 4  # the row gets 38 right: 10 better, 2 worse
    for name, predicted in (("base", reference_predicted), ("row", row_predicted)):
        (tmp_path / name).mkdir()
        write_predictions(tmp_path / name, {"test": {"predicted": predicted, "label": labels}})
    groups = {"baseline": [_run("baseline", 0, 0.75, path=str(tmp_path / "base"), count=40, classes=4)],
              "row": [_run("row", 0, 0.95, path=str(tmp_path / "row"), count=40, classes=4)]}
    verdict = judge(groups, {"row": "baseline"}, "test_acc")["row"]
    assert verdict.comparison.method == "McNemar exact" and verdict.comparison.discordant == (10, 2)
    assert verdict.comparison.p_value == pytest.approx(2 * 79 / 4096)
    # one seed: McNemar's numbers are kept, the word is not better (10 vs 2 discordant images says these two networks
    # differ, not that the configurations do: calibration found 40% of null rows 'better'/'worse' that way)
    assert verdict.word == "1 seed" and "seed-to-seed variance is not measured" in verdict.note
    assert verdict.adjusted_p == pytest.approx(2 * 79 / 4096)
    # scored on other images (labels differ): no comparison is made
    write_predictions(tmp_path / "row", {"test": {"predicted": row_predicted, "label": labels.flip(0)}})
    verdict = judge(groups, {"row": "baseline"}, "test_acc")["row"]
    assert verdict.word == "1 seed" and verdict.comparison is None and "different test images" in verdict.note


def test_failed_and_diverged_rows_say_so():
    groups = {"baseline": [_run("baseline", 0, 0.5)], "hot": [_run("hot", 0, None, status="diverged")],
              "broken": [_run("broken", 0, None, status="failed")]}
    verdicts = judge(groups, {"hot": "baseline", "broken": "baseline"}, "test_acc")
    assert verdicts["hot"].word == "diverged" and verdicts["broken"].word == "failed"


def test_checks_at_chance_and_still_learning():
    assert row_at_chance([_run("x", 0, 0.104, count=1000, classes=10)]) is True
    assert row_at_chance([_run("x", 0, 0.30, count=1000, classes=10)]) is False
    assert row_at_chance([_run("x", 0, 0.10, status="diverged")]) is None
    rising = [0.1 * i for i in range(1, 13)]
    flat = [0.5, 0.6, 0.7] + [0.8, 0.81, 0.79, 0.8, 0.8, 0.81, 0.79, 0.8, 0.8]
    assert row_still_learning([_run("x", 0, 0.5, curve=flat), _run("x", 1, 0.5, curve=rising)]) is True
    assert row_still_learning([_run("x", 0, 0.5, curve=flat)]) is False
    assert row_still_learning([_run("x", 0, 0.5, curve=[0.1, 0.2])]) is None


def test_ranking_note_only_when_the_order_changed():
    same = {"a": [_run("a", 0, 0.5, curve=[0.1, 0.5, 0.6, 0.7])], "b": [_run("b", 0, 0.5, curve=[0.2, 0.6, 0.7, 0.8])]}
    assert ranking_note(same) is None
    swapped = {"a": [_run("a", 0, 0.5, curve=[0.1, 0.5, 0.6, 0.9])], "b": [_run("b", 0, 0.5, curve=[0.2, 0.6, 0.7, 0.8])]}
    note = ranking_note(swapped)
    assert note is not None and "tau -1.00" in note and "longer budget" in note


STUDY = """name: verdicts
base: {model: mlp, data: digits, epochs: 3, model.hidden: [32], optimizer: adam, lr: 0.01}
variations:
  baseline: {}
  same_again: {train.batch_size: 64}
  tiny_lr: {lr: 0.000001}
seeds: [0]
"""


@pytest.mark.slow
def test_a_one_seed_study_prints_verdicts_from_its_runs_own_predictions(tmp_path):
    (tmp_path / "s.yaml").write_text(STUDY)
    done = subprocess.run([sys.executable, "-m", "cnnlab", "study", "run", "s.yaml", "--quiet"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "runs/verdicts/baseline/predictions.safetensors").is_file()
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.split()}
    assert "reference" in lines["baseline"]
    # one seed: McNemar's interval is printed, the word is '1 seed' (not 'equivalent' nor 'worse'), and the note
    # says how to get a verdict over seeds
    # batch 64 is the default: the same predictions on every image, said as such
    assert "identical" in lines["same_again"]
    assert "1 seed" in lines["tiny_lr"] and "worse" not in lines["tiny_lr"]
    assert "seed-to-seed variance is not measured" in done.stdout and "--seeds 0,1,2 (or --until-decided)" in done.stdout
    table = (tmp_path / "runs/verdicts/table.md").read_text()
    assert "| verdict |" in table.replace("verdict | checks", "verdict |") and "McNemar" in table
    csv_text = (tmp_path / "runs/verdicts/table.csv").read_text()
    assert "p_holm" in csv_text.splitlines()[0]


def _spec(variation, seed, grid=None):
    from cnnlab.config import resolve
    from cnnlab.experiments.study import RunSpec

    return RunSpec(f"{variation}", variation, seed, grid or {}, resolve({"seed": (seed, "test")}))


def test_next_round_adds_one_seed_to_undecided_rows_and_their_reference_only():
    from cnnlab.experiments.decided import next_round
    from cnnlab.experiments.study import Study

    runs = [_spec("baseline", 0), _spec("a", 0), _spec("b", 0), _spec("c", 0)]
    study = Study("s", None, "", runs, seeds=[0])
    verdicts = {"baseline": "reference", "a": "within noise", "b": "better", "c": "within noise"}
    added = next_round(study, verdicts, {"a": "baseline", "b": "baseline", "c": "b"}, max_seeds=3)
    assert sorted((s.name, s.seed, s.config.seed, s.added) for s in added) == [
        ("a__seed1", 1, 1, True), ("b__seed1", 1, 1, True), ("baseline__seed1", 1, 1, True), ("c__seed1", 1, 1, True)]
    study.runs.extend(added)
    # a row at max_seeds gets none; its reference gets none for it either
    assert next_round(study, {"a": "within noise"}, {"a": "baseline"}, max_seeds=2) == []
    assert [s.name for s in next_round(study, {"a": "within noise"}, {"a": "baseline"}, max_seeds=3)] == [
        "baseline__seed2", "a__seed2"]
    # a reference that already has the seed its row needs gets no second run of it; '1 seed' is open too
    study.runs.append(_spec("baseline", 2).with_seed(2))
    assert [s.name for s in next_round(study, {"a": "1 seed"}, {"a": "baseline"}, max_seeds=3)] == ["a__seed2"]


UNTIL = """name: ud
base: {model: mlp, data: digits, epochs: 1, model.hidden: [16], optimizer: adam, lr: 0.003, data.train_limit: 300}
variations:
  baseline: {}
  same: {train.batch_size: 64}
  noisy: {lr: 0.0045}
seeds: [0]
"""


@pytest.mark.slow
def test_until_decided_adds_seeds_only_where_undecided_and_is_resumable(tmp_path):
    import json

    (tmp_path / "u.yaml").write_text(UNTIL)
    command = [sys.executable, "-m", "cnnlab", "study", "run", "u.yaml", "--quiet", "--until-decided", "--max-seeds", "3"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    plan = json.loads((tmp_path / "runs/ud/plan.json").read_text())
    seeds = {}
    for meta in plan["runs"]:
        seeds.setdefault(meta["variation"], []).append(meta["seed"])
    assert seeds["same"] == [0]  # identical predictions after one seed (batch 64 is the default): no more runs
    table = {line.split()[0]: line for line in done.stdout.splitlines() if line.split()}
    assert "identical" in table["same"]
    # the noisy row's seeds were added until decided: its test is the group-sequential one the plan fixed first
    assert plan["sequential"] == {"max_seeds": 3, "boundary": "obrien-fleming", "first_look": 2}
    assert "within noise" in table["noisy"]
    assert "group-sequential t (3 seeds)" in (tmp_path / "runs/ud/table.csv").read_text()
    assert "group-sequential paired t (O'Brien-Fleming boundary over looks at 2-3 seeds" in done.stdout
    assert seeds["noisy"] == [0, 1, 2] and "noisy still within noise at --max-seeds 3" in done.stdout
    assert sorted(seeds["baseline"]) == sorted(seeds["noisy"])  # the reference got every seed its row needed
    assert all(m.get("added") for m in plan["runs"] if m["seed"] > 0)
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "(start)" not in again.stdout and "(resume)" not in again.stdout
    assert json.loads((tmp_path / "runs/ud/plan.json").read_text())["runs"] == plan["runs"]
    plain = subprocess.run(command[:-3], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert plain.returncode == 0 and json.loads((tmp_path / "runs/ud/plan.json").read_text())["runs"] == plan["runs"]
    # a plain run keeps the design (its verdicts stay sequential); another --max-seeds is refused
    assert json.loads((tmp_path / "runs/ud/plan.json").read_text())["sequential"] == plan["sequential"]
    other = subprocess.run(command[:-1] + ["5"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert other.returncode == 2 and "--max-seeds 3" in other.stderr and "Traceback" not in other.stderr


def test_compare_to_in_a_study_file_is_checked_and_planned(tmp_path):
    from cnnlab.errors import ConfigError
    from cnnlab.experiments.study import load_study, read_plan, write_plan

    text = "name: c\nbase: {model: mlp, data: digits}\nvariations:\n  wide: {model.hidden: [64]}\n  wider: {model.hidden: [128]}\n"
    (tmp_path / "ok.yaml").write_text(text + "compare_to: {wider: wide}\n")
    study = load_study(tmp_path / "ok.yaml")
    assert study.compare_to == {"wider": "wide"}
    write_plan(study, tmp_path)
    assert read_plan(tmp_path)["compare_to"] == {"wider": "wide"}
    (tmp_path / "bad.yaml").write_text(text + "compare_to: {wider: wdie}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: compare_to names 'wdie'.*did you mean 'wide'"):
        load_study(tmp_path / "bad.yaml")
    (tmp_path / "self.yaml").write_text(text + "compare_to: {wide: wide}\n")
    with pytest.raises(ConfigError, match="with itself"):
        load_study(tmp_path / "self.yaml")
    assert load_study(tmp_path / "ok.yaml", seeds=[3, 4]).seeds == [3, 4]


TUNED = """name: tuned
protocol: tune
base: {model: mlp, data: digits, epochs: 1, model.hidden: [16], optimizer: adam}
variations:
  baseline: {}
  wide: {model.hidden: [64]}
grid: {lr: [0.01, 0.003]}
"""


@pytest.mark.slow
def test_a_tuned_studys_table_judges_each_retrained_run_against_the_first(tmp_path):
    from cnnlab.api import study_table
    from cnnlab.evaluate.stats import mcnemar
    from cnnlab.runs.predictions import read_predictions

    (tmp_path / "t.yaml").write_text(TUNED)
    done = subprocess.run([sys.executable, "-m", "cnnlab", "study", "run", "t.yaml", "--quiet"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = study_table(tmp_path / "runs/tuned")
    assert result.headers[-2:] == ["Δ test top-1 vs baseline [95% CI]", "verdict"]  # which row it is against
    rows = {row[0]: row for row in result.rows}
    ours, theirs = (read_predictions(tmp_path / "runs/tuned" / f"{v}__final")["test"] for v in ("wide", "baseline"))
    expected = mcnemar(ours.correct, theirs.correct)
    assert rows["baseline"][-1] == "reference"
    assert rows["wide"][-2] == f"{100 * expected.delta:+.2f} [{100 * expected.low:+.2f}, {100 * expected.high:+.2f}]"


def test_without_a_validation_split_the_checks_read_the_training_curve(tmp_path):
    from cnnlab.experiments.table import run_row

    run = tmp_path / "r"
    run.mkdir()
    (run / "metrics.csv").write_text("epoch,train_loss,train_acc,val_loss,val_acc\n" + "".join(
        f"{e},1.0,{0.1 * e},," + "\n" for e in range(1, 9)))
    row = run_row(run, {"name": "r", "variation": "r", "seed": 0})
    assert row["val_curve"] == pytest.approx([0.1 * e for e in range(1, 9)]) and row["curve_kind"] == "training"
    rows = {"a": [{**_run("a", 0, 0.5, curve=[0.1, 0.5, 0.6, 0.9]), "curve_kind": "training"}],
            "b": [{**_run("b", 0, 0.5, curve=[0.2, 0.6, 0.7, 0.8]), "curve_kind": "training"}]}
    assert "between the training ranking" in ranking_note(rows)


def test_without_a_baseline_variation_the_first_row_is_the_reference():
    groups = {"relu": [_run("relu", 0, 0.5)], "tanh": [_run("tanh", 0, 0.6)], "sigmoid": [_run("sigmoid", 0, 0.4)]}
    assert references(groups) == {"relu": None, "tanh": "relu", "sigmoid": "relu"}
