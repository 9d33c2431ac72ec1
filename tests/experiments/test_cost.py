"""`cnnlab study run --dry-run` (issue 35): a study's predicted cost from a few measured steps of each distinct
computation, printed before anything runs; nothing is written, and each run's predicted steps are the steps
it then trains."""

from __future__ import annotations

import json
from pathlib import Path

from cnnlab.cli import main
from cnnlab.experiments.cost import RunCost, StudyCost, computation_key, predict
from cnnlab.experiments.study import load_study

STUDY = """\
name: costed
description: two computations (two batch sizes), one of them twice (a learning rate changes no step's cost)
base:
  model: lenet5
  data: {name: digits, train_limit: 256}
  epochs: 2
  batch_size: 32
variations:
  faster: {optim.lr: 0.05}
  big: {batch_size: 64}
"""

GREEDY = """\
name: greedy_costed
description: a greedy study is costed stage by stage, each alternative on the base
mode: greedy
base: {model: lenet5, data: {name: digits, train_limit: 128}, epochs: 1, batch_size: 32}
seeds: [0, 1]
stages:
  - width: {narrow: {}, wide: {batch_size: 16}}
  - act: {relu: {}, tanh: {model.activation: tanh}}
"""


def test_a_dry_run_prints_the_predicted_cost_writes_nothing_and_counts_the_steps_each_run_trains(
        tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("costed.yaml").write_text(STUDY)
    assert main(["study", "run", "costed.yaml", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "study costed: 3 runs (3 variations), predicted on" in out and "nothing was written" in out
    assert "variation  runs  steps/run  step ms" in out and "total: ~" in out
    assert not Path("runs").exists()  # a dry run writes nothing

    study = load_study(Path("costed.yaml"))
    cost = predict(study.runs)
    assert isinstance(cost, StudyCost) and len(cost.runs) == 3 and cost.threads >= 1
    assert len({computation_key(spec.config) for spec in study.runs}) == 2  # faster measures as the baseline
    for run in cost.runs:
        assert isinstance(run, RunCost) and run.step_seconds > 0 and run.eval_seconds_per_image > 0
        assert run.seconds > run.train_seconds > 0
    assert main(["study", "run", "costed.yaml", "--dir", "study", "--quiet"]) == 0
    for run in cost.runs:  # the prediction counted the steps each run then trained
        assert json.loads(Path("study", run.name, "run.json").read_text())["steps"] == run.steps, run.name
    assert main(["study", "run", "costed.yaml", "--dry-run", "--jobs", "2"]) == 0
    assert "(1 thread(s) per run)" in capsys.readouterr().out or (__import__("os").cpu_count() or 1) < 2


def test_a_greedy_study_is_costed_stage_by_stage(tmp_path: Path, capsys) -> None:
    path = tmp_path / "greedy.yaml"
    path.write_text(GREEDY)
    assert main(["study", "run", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "study greedy_costed: 8 runs (every stage's alternatives, costed on the base)" in out
    assert "width:wide" in out and "act:tanh" in out
    assert not (tmp_path / "runs").exists()
