"""The greedy search's parts (experiments/greedy.py), each fast enough for mutation testing to run for every
mutant: a three-stage search on 64 digit images (the winner carried, 'keep' and a repeat of the winner reusing
its run, a stage without 'keep' judged against its first alternative, the log), a stage whose every alternative
diverged, the carried validation accuracy read from hand-made runs, and the table with published numbers.
The longer search whose diverged alternative had the best curve is test_greedy_search.py."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from types import SimpleNamespace

import torch
import yaml

from cnnlab import api
from cnnlab.experiments.greedy import _carried_val_acc, _score, greedy_notes, greedy_table
from cnnlab.runs import Status
from cnnlab.runs.predictions import write_predictions
from cnnlab.train import STOP
from tests.experiments.test_table_parts import a_run

BASE = """\
name: tiny_greedy
mode: greedy
base:
  model: lenet5
  data: {name: digits, train_limit: 64}
  optim: {name: sgd, lr: 0.01, weight_decay: 0.0}
  epochs: 1
  batch_size: 32
"""
THREE_STAGES = BASE + """\
stages:
  - first: {relu: {model.activation: relu}, keep: {}}
  - second: {small: {batch_size: 16}, same: {}}
  - third: {keep: {}, again: {}}
"""


def test_a_three_stage_search_carries_each_winner_and_reuses_its_run(tmp_path: Path) -> None:
    path = tmp_path / "greedy.yaml"
    path.write_text(THREE_STAGES)
    said: list[str] = []
    out = tmp_path / "out"
    result = api.run_study(api.plan_study(path), out, log=said.append)
    record = json.loads((out / "greedy.json").read_text())
    assert result.directory == out and result.interrupted is False and record["interrupted"] is False
    assert result.stages == record["stages"] and result.final == record["final"]
    first, second, third = record["stages"]
    winner = first["chosen"]
    assert winner in ("keep", "relu")
    winner_run = f"first__{winner}"
    # the winner is carried: stage 2's new run has its activation, and 'same' (nothing changed) is its run
    activation = {"keep": "tanh", "relu": "relu"}[winner]
    small = yaml.safe_load((out / "second__small" / "config.yaml").read_text())
    assert small["model"]["activation"] == activation and small["train"]["batch_size"] == 16
    assert second["alternatives"]["same"]["runs"] == [winner_run]
    carried = f"second__{second['chosen']}" if second["chosen"] == "small" else winner_run
    assert third["alternatives"]["again"]["runs"] == third["alternatives"]["keep"]["runs"] == [carried]
    # a stage is judged against its 'keep' wherever it is listed; without one, against its first alternative
    assert second["alternatives"]["small"]["verdict"] == "reference"
    assert second["alternatives"]["same"]["verdict"] != "reference"  # judged against 'small'
    assert first["alternatives"]["keep"]["verdict"] == "reference"
    for stage in record["stages"]:
        for row in stage["alternatives"].values():  # the test score is the carried run's own
            run = json.loads((out / row["runs"][0] / "run.json").read_text())
            assert row["test_acc"] == run["test"]["acc"] and row["status"] == "completed"
    final = record["final"]
    assert (final["stage"], final["alternative"], final["choices"]) == (
        "third", "keep", [winner, second["chosen"], "keep"])
    assert final["val_acc"] == third["alternatives"]["keep"]["val_acc"]
    plan = json.loads((out / "plan.json").read_text())["runs"]
    assert [(run["name"], run["variation"], run["seed"], run["grid"]) for run in plan] == [
        ("first__relu", "first:relu", 0, {}), ("first__keep", "first:keep", 0, {}),
        ("second__small", "second:small", 0, {})]
    stage_lines = [line for line in said if line.startswith("stage ")]
    assert stage_lines[0] == "stage 1/3 first: relu, keep" and "stage 2/3 second: small, same" in stage_lines
    assert any(line.startswith("[1/2] first__relu") for line in said)  # the runs' own lines reach the same log
    chosen = first["alternatives"][winner]["val_acc"]
    assert f"stage first: chose {winner} (val top-1 {100 * chosen:.2f}%)" in said


def test_a_stage_whose_every_alternative_diverged_ends_the_search(tmp_path: Path) -> None:
    path = tmp_path / "greedy.yaml"
    path.write_text(BASE + "stages:\n  - first: {keep: {}, again: {}}\n"
                    "  - second: {wild: {lr: 1.0e+6}, wilder: {lr: 1.0e+7}}\n  - third: {keep: {}, again: {}}\n")
    said: list[str] = []
    out = tmp_path / "out"
    result = api.run_study(api.plan_study(path), out, log=said.append)
    record = json.loads((out / "greedy.json").read_text())
    assert record["final"] is None and result.final is None and record["interrupted"] is False
    assert [stage["stage"] for stage in record["stages"]] == ["first", "second"]  # the third never ran
    second = record["stages"][1]
    assert second["chosen"] is None and second["alternatives"]["wild"]["status"] == "diverged"
    assert second["alternatives"]["wild"]["val_acc"] is None and second["alternatives"]["wild"]["test_acc"] is None
    assert "stage second: every alternative diverged or failed; the search stops here" in said
    assert greedy_table(out)[1][-1][:2] == ["second", "wilder"]  # no 'final' row


def test_the_carried_validation_accuracy_is_the_scored_images_else_the_last_epochs(tmp_path: Path) -> None:
    scored = a_run(tmp_path, "scored", curve=[(0.5, 0.9), (0.6, 0.2)])
    labels = torch.arange(8) % 4
    predicted = labels.clone()
    predicted[:2] = (labels[:2] + 1) % 4  # 6 of 8 right
    write_predictions(scored, {"test": {"predicted": labels, "label": labels}, "val": {"predicted": predicted,
                                                                                       "label": labels}})
    assert _carried_val_acc(scored) == 0.75  # what the test score used, not the curve's
    older = a_run(tmp_path, "older", curve=[(0.5, 0.9), (0.6, 0.3), (0.7, "")])
    assert _carried_val_acc(older) == 0.3  # before per-image results were kept: the last epoch with one
    write_predictions(older, {"test": {"predicted": labels, "label": labels}})  # no validation split scored
    assert _carried_val_acc(older) == 0.3
    assert _carried_val_acc(a_run(tmp_path, "never", curve=[(0.5, "")])) is None
    assert _carried_val_acc(a_run(tmp_path, "three", curve=[(0.5, 0.9), (0.6, 0.3), (0.7, 0.4)])) == 0.4  # the last


def test_an_alternative_is_scored_only_when_every_seed_finished(tmp_path: Path) -> None:
    test = {"acc": 0.5, "top5": 1.0, "loss": 1.0, "count": 8}
    done = [a_run(tmp_path, f"done{i}", curve=[(0.5, 0.25 * (i + 1))], test=test) for i in range(2)]
    a_run(tmp_path, "wild", Status.DIVERGED, curve=[(0.1, 0.1)])
    specs = [SimpleNamespace(name=path.name) for path in done]
    assert _score(tmp_path, specs) == {"runs": ["done0", "done1"], "status": "completed", "val_acc": 0.375,
                                       "test_acc": 0.5}
    mixed = _score(tmp_path, [*specs, SimpleNamespace(name="wild")])
    assert mixed == {"runs": ["done0", "done1", "wild"], "status": "completed, diverged", "val_acc": None,
                     "test_acc": None}
    assert _score(tmp_path, [specs[0], SimpleNamespace(name="missing")])["val_acc"] is None  # never started


def test_two_seeds_give_each_alternative_one_run_per_seed_and_an_own_seed_one(tmp_path: Path) -> None:
    path = tmp_path / "greedy.yaml"
    path.write_text(BASE + "seeds: [0, 1]\nstages:\n  - first: {keep: {}, relu: {model.activation: relu}, "
                    "five: {seed: 5}}\n")
    out = tmp_path / "out"
    api.run_study(api.plan_study(path), out, log=lambda line: None)
    plan = json.loads((out / "plan.json").read_text())["runs"]
    assert [(run["name"], run["seed"]) for run in plan] == [
        ("first__keep__seed0", 0), ("first__keep__seed1", 1), ("first__relu__seed0", 0), ("first__relu__seed1", 1),
        ("first__five__seed5", 5)]
    for run in plan:
        config = yaml.safe_load((out / run["name"] / "config.yaml").read_text())
        assert config["seed"] == run["seed"], run["name"]
        assert config["model"]["activation"] == ("relu" if "relu" in run["name"] else "tanh"), run["name"]
    stage = json.loads((out / "greedy.json").read_text())["stages"][0]
    assert stage["alternatives"]["relu"]["runs"] == ["first__relu__seed0", "first__relu__seed1"]


def test_a_stop_request_during_a_stage_ends_the_search_recorded_as_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "greedy.yaml"
    path.write_text(THREE_STAGES)
    out = tmp_path / "out"

    def log(line: str) -> None:  # the stop request arrives as the second stage starts, as a Ctrl-C would
        if line.startswith("stage 2/3"):
            STOP.signal = signal.SIGINT

    with STOP.watching():
        result = api.run_study(api.plan_study(path), out, log=log)
    record = json.loads((out / "greedy.json").read_text())
    assert result.interrupted is True and record["interrupted"] is True
    assert result.directory == out and result.final is None and record["final"] is None
    assert [stage["stage"] for stage in result.stages] == [stage["stage"] for stage in record["stages"]] == ["first"]


def test_the_greedy_table_shows_each_verdict_and_the_published_numbers(tmp_path: Path) -> None:
    rows = {"keep": {"runs": ["a__keep"], "status": "completed", "val_acc": 0.5, "test_acc": 0.25,
                     "verdict": "reference", "delta_val": [0.0, 0.0, 0.0]},
            "wide": {"runs": ["a__wide"], "status": "completed", "val_acc": 0.625, "test_acc": 0.5,
                     "verdict": "better", "delta_val": [0.125, 0.0625, 0.1875]}}
    record = {"stages": [{"stage": "a", "chosen": "wide", "alternatives": rows}],
              "final": {**rows["wide"], "stage": "a", "alternative": "wide", "choices": ["wide"]},
              "interrupted": False}
    (tmp_path / "greedy.json").write_text(json.dumps(record))
    reference = {"source": "the report", "top1": {"a:keep": 40.0, "wide": 60.0, "final": 61.5},
                 "top5_error": {"keep": 12.0}}
    headers, table = greedy_table(tmp_path, reference)
    assert headers[-2:] == ["report top-1", "report top-5 error"]
    assert table == [
        ["a", "keep", "50.00%", "25.00%", "completed", "+0.00 [+0.00, +0.00]", "reference", "", "40.00%", "12.00%"],
        ["a", "wide", "62.50%", "50.00%", "completed", "+12.50 [+6.25, +18.75]", "better", "*", "60.00%", "-"],
        ["final", "wide", "62.50%", "50.00%", "completed", "", "", "", "61.50%", "-"]]


def test_the_greedy_notes_state_the_rule_that_chose() -> None:
    tail = ("; val and test top-1 are of the weights each run carries forward (its last epoch, or its best with "
            "train.restore_best), the mean over seeds; the verdict is against the stage's keep on validation "
            "(paired over seeds; one seed gives no verdict: '1 seed'); ")
    reused = ("keep is the previous winner's runs, reused: a stage judged against them shows Δ but no verdict word "
              "(they were chosen for being the best on these very numbers)")
    retrained = "keep is trained again on each stage's own seeds, so no stage is judged on the numbers that chose its keep"
    assert greedy_notes("best", "auto", 1) == ["each stage chose the highest mean validation top-1" + tail + reused]
    assert greedy_notes("better", "auto", 3) == [
        "each stage chose keep stays unless an alternative is 'better' on validation, then the best of those" + tail
        + retrained]
    assert greedy_notes("best", "retrain", 1)[0].endswith(retrained)
    assert greedy_notes("best", "reuse", 3)[0].endswith(reused)


def test_stage_seeds_and_which_stages_get_words() -> None:
    from cnnlab.experiments.greedy import judged_stage, stage_seeds
    from cnnlab.experiments.study import Study

    three = Study("s", None, "", [], seeds=[0, 1, 2], mode="greedy")
    assert [stage_seeds(three, n) for n in (1, 2, 3)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert stage_seeds(Study("s", None, "", [], seeds=[0, 5], mode="greedy"), 2) == [6, 11]
    one = Study("s", None, "", [], seeds=[4], mode="greedy")
    assert stage_seeds(one, 3) == [4]  # one seed (keep: auto): keep's runs are reused
    assert stage_seeds(Study("s", None, "", [], seeds=[4], mode="greedy", keep="retrain"), 3) == [14]
    assert stage_seeds(Study("s", None, "", [], seeds=[0, 1], mode="greedy", keep="reuse"), 2) == [0, 1]
    assert judged_stage({"a__keep"}, set()) and judged_stage({"b__keep"}, {"a__keep", "a__x"})
    assert not judged_stage({"a__keep"}, {"a__keep", "a__x"})


def test_the_greedy_tables_interval_cell_says_what_it_has() -> None:
    from cnnlab.experiments.greedy import _interval

    assert _interval([0.0123, -0.004, 0.0285]) == "+1.23 [-0.40, +2.85]"
    assert _interval([0.02, None, None]) == "+2.00 [no spread]"  # every seed moved alike: no interval
    assert _interval([0.02, -0.01, None]) == "+2.00 [no spread]" == _interval([0.02, None, 0.03])
    assert _interval([None, None, None]) == "-" == _interval(None) == _interval([])


def test_a_winners_own_seed_is_carried_into_the_next_stages_runs(tmp_path: Path) -> None:
    from cnnlab.experiments.greedy import _stage_specs
    from cnnlab.experiments.study import load_study

    (tmp_path / "g.yaml").write_text("name: g\nmode: greedy\nbase: {model: lenet5, data: digits}\nseeds: [0, 1]\n"
                                     "stages:\n  - first: {keep: {}, lucky: {seed: 7}}\n"
                                     "  - second: {keep: {}, wide: {epochs: 2}}\n")
    study = load_study(tmp_path / "g.yaml")
    chosen = [study.stages[0].alternatives["lucky"]]  # the first stage chose the alternative with its own seed
    specs = _stage_specs(study, study.stages[1], chosen, {}, [2, 3])
    assert [spec.seed for spec in specs["keep"]] == [7] == [spec.seed for spec in specs["wide"]]
    assert specs["wide"][0].config.seed == 7
