"""The greedy mode: every stage's data checked before the first stage trains (as a plain study checks
every run), and the caller's Study left as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnlab import api
from cnnlab.errors import ConfigError

GREEDY = """\
name: tiny_greedy
mode: greedy
base:
  model: lenet5
  data: {name: digits, train_limit: 64}
  epochs: 1
  batch_size: 32
stages:
  - activation: {keep: {}, relu: {model.activation: relu}, same: {model.activation: tanh}}
  - batch: {keep: {}, %s}
"""


def test_a_later_stages_data_mistake_stops_the_search_before_the_first_stage(tmp_path: Path) -> None:
    path = tmp_path / "greedy.yaml"
    path.write_text(GREEDY % "huge: {batch_size: 128}")
    study = api.plan_study(path)
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"greedy.yaml:\d+: variation 'batch:huge' \(run batch__huge\): "
                                          r"train.batch_size=128 is larger than the training set \(64 images\)"):
        api.run_study(study, out)
    assert not out.exists()  # nothing trained, nothing written


def test_a_greedy_search_runs_its_stages_and_leaves_the_callers_study_alone(tmp_path: Path) -> None:
    path = tmp_path / "greedy.yaml"
    path.write_text(GREEDY % "small: {batch_size: 16}")
    study = api.plan_study(path)
    out = tmp_path / "out"
    result = api.run_study(study, out)
    assert study.runs == []  # the runs the stages added went into the search's own copy
    record = json.loads((out / "greedy.json").read_text())
    assert [stage["stage"] for stage in record["stages"]] == ["activation", "batch"]
    assert record["final"]["choices"] == [stage["chosen"] for stage in record["stages"]] == result.final["choices"]
    planned = [run["name"] for run in json.loads((out / "plan.json").read_text())["runs"]]
    # lenet5's own activation is tanh: 'same' is 'keep' and shares its run, as the next stage's 'keep' shares
    # its winner's; every run is planned (and trained) once
    assert planned[:2] == ["activation__keep", "activation__relu"] and len(planned) == len(set(planned)) == 3
    assert record["stages"][0]["alternatives"]["same"]["runs"] == ["activation__keep"]


def test_choose_with_require_better_keeps_keep_unless_an_alternative_is_better() -> None:
    from cnnlab.experiments.greedy import choose

    rows = {"keep": {"val_acc": 0.50}, "a": {"val_acc": 0.55, "verdict": "within noise"},
            "b": {"val_acc": 0.53, "verdict": "better"}, "c": {"val_acc": None, "verdict": "diverged"}}
    assert choose(rows) == "a"  # the highest validation accuracy, noise or not
    assert choose(rows, "better") == "b"  # the best of those that are better than keep
    rows["b"]["verdict"] = "equivalent"
    assert choose(rows, "better") == "keep"
    assert choose({"keep": {"val_acc": None}, "a": {"val_acc": 0.4, "verdict": "-"}}, "better") == "a"
    assert choose({"keep": {"val_acc": 0.5}, "a": {"val_acc": 0.5}}) == "keep"  # ties: the first listed


def test_each_stage_is_judged_against_keep_on_the_carried_weights(tmp_path: Path) -> None:
    from cnnlab.evaluate.stats import paired_seeds
    from cnnlab.runs.predictions import read_predictions

    path = tmp_path / "greedy.yaml"
    path.write_text(GREEDY % "small: {batch_size: 16}" + "greedy: {require: better}\nseeds: [0, 1]\n")
    out = tmp_path / "out"
    api.run_study(api.plan_study(path), out)
    record = json.loads((out / "greedy.json").read_text())
    stage = record["stages"][0]["alternatives"]
    assert stage["keep"]["verdict"] == "reference" and stage["same"]["verdict"] == "identical"  # keep's own runs
    carried = {name: float(read_predictions(out / name)["val"].correct.mean())
               for name in ("activation__keep__seed0", "activation__keep__seed1", "activation__relu__seed0",
                            "activation__relu__seed1")}
    # what is chosen is what is carried: the mean of the runs' scored validation accuracy
    assert stage["keep"]["val_acc"] == pytest.approx((carried["activation__keep__seed0"] +
                                                      carried["activation__keep__seed1"]) / 2)
    expected = paired_seeds([carried["activation__relu__seed0"], carried["activation__relu__seed1"]],
                            [carried["activation__keep__seed0"], carried["activation__keep__seed1"]])
    assert stage["relu"]["delta_val"][0] == pytest.approx(expected.delta)
    assert stage["relu"]["delta_val"][1:] == ([None, None] if expected.low is None else
                                              pytest.approx([expected.low, expected.high]))
    # keep is trained again on the second stage's own seeds (2, 3): never judged on the numbers that chose it
    second = record["stages"][1]["alternatives"]
    assert second["keep"]["runs"] == ["batch__keep__seed2", "batch__keep__seed3"]
    assert second["small"]["verdict"] in ("better", "worse", "within noise", "equivalent")
    # with a handful of validation images nothing is 'better': require: better keeps keep at every stage
    assert all(s["chosen"] == "keep" for s in record["stages"])
    table = api.study_table(out)
    assert table.headers[-3:] == ["Δ val vs keep [95% CI]", "verdict", "chosen"]
    assert "keep stays unless an alternative is 'better' on validation" in table.notes[0]
    assert "keep is trained again on each stage's own seeds" in table.notes[0]
    with pytest.raises(ConfigError, match="greedy takes"):
        path.write_text(GREEDY % "small: {batch_size: 16}" + "greedy: {require: maybe}\n")
        api.plan_study(path)


def test_require_better_needs_seeds_and_a_retrained_keep(tmp_path: Path) -> None:
    path = tmp_path / "greedy.yaml"
    path.write_text(GREEDY % "small: {batch_size: 16}" + "greedy: {require: better}\n")
    with pytest.raises(ConfigError, match=r"greedy.yaml:\d+: greedy: \{require: better\} replaces keep on a verdict, "
                                          r"and one seed gives none"):
        api.plan_study(path)
    path.write_text(GREEDY % "small: {batch_size: 16}" + "greedy: {require: better, keep: reuse}\nseeds: [0, 1]\n")
    with pytest.raises(ConfigError, match="with keep: reuse would judge each stage against runs chosen for being"):
        api.plan_study(path)


def test_a_stage_judged_against_a_reused_keep_gets_no_word(tmp_path: Path) -> None:
    """keep: reuse carries the winner's runs forward: they were chosen for their numbers, so a verdict against them
    is biased (the winner's curse, measured in experiments/calibration.py); the stage shows Δ but no word."""
    path = tmp_path / "greedy.yaml"
    path.write_text(GREEDY % "small: {batch_size: 16}" + "greedy: {keep: reuse}\nseeds: [0, 1]\n")
    out = tmp_path / "out"
    api.run_study(api.plan_study(path), out)
    record = json.loads((out / "greedy.json").read_text())
    first, second = (stage["alternatives"] for stage in record["stages"])
    assert first["relu"]["verdict"] != "-"  # stage 1's keep is the base, chosen on nothing
    assert second["keep"]["runs"] == record["stages"][0]["alternatives"][record["stages"][0]["chosen"]]["runs"]
    assert second["small"]["verdict"] == "-" and second["small"]["delta_val"] is not None


def test_greedy_table_reads_every_stage_and_the_final_configuration(tmp_path: Path) -> None:
    from cnnlab.experiments.greedy import greedy_table

    record = {"stages": [
        {"stage": "first", "chosen": "keep", "alternatives": {
            "spiky": {"runs": ["first__spiky"], "status": "diverged", "val_acc": None, "test_acc": None},
            "keep": {"runs": ["first__keep"], "status": "completed", "val_acc": 0.1, "test_acc": 0.0}}},
        {"stage": "second", "chosen": "adam", "alternatives": {
            "keep": {"runs": ["first__keep"], "status": "completed", "val_acc": 0.1, "test_acc": 0.0},
            "adam": {"runs": ["second__adam"], "status": "stopped_early", "val_acc": 0.91234, "test_acc": 1.0}}}],
        "final": {"stage": "second", "alternative": "adam", "runs": ["second__adam"], "status": "stopped_early",
                  "val_acc": 0.91234, "test_acc": 1.0, "choices": ["keep", "adam"]},
        "interrupted": False}
    (tmp_path / "greedy.json").write_text(json.dumps(record))
    headers, rows = greedy_table(tmp_path)
    assert headers == ["stage", "alternative", "val top-1", "test top-1", "status", "Δ val vs keep [95% CI]",
                       "verdict", "chosen"]
    # no predictions.safetensors beside these hand-written runs: no verdict can be computed, and none is invented
    assert rows == [["first", "spiky", "-", "-", "diverged", "-", "-", ""],
                    ["first", "keep", "10.00%", "0.00%", "completed", "-", "-", "*"],
                    ["second", "keep", "10.00%", "0.00%", "completed", "-", "-", ""],
                    ["second", "adam", "91.23%", "100.00%", "stopped_early", "-", "-", "*"],
                    ["final", "keep + adam", "91.23%", "100.00%", "stopped_early", "", "", ""]]
    (tmp_path / "greedy.json").write_text(json.dumps({**record, "final": None}))  # stopped: every one diverged
    assert greedy_table(tmp_path)[1][-1][0] == "second"
