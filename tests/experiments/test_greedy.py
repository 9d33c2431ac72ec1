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
