"""The greedy search (experiments/greedy.py) through its public behaviour: what each stage chooses, that
`keep` reuses the previous winner's run instead of training it again, that a winner is carried into the
next stage, and that a diverged alternative is never chosen, even one whose validation accuracy was the best
before it diverged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cnnlab.cli import main
from cnnlab.experiments.greedy import choose
from cnnlab.train import read_metrics

# The base barely learns (lr 1e-6): `keep` is at chance. 'spiky' is Adam at 3e-3 for one epoch, then its step
# schedule multiplies the rate by 10,000 and the run diverges in epoch 2: after epoch 1 its validation accuracy
# is far above chance, so a search that read a diverged run's curve would choose it.
GREEDY = """\
name: tiny_greedy
mode: greedy
base:
  model: lenet5
  data: {name: digits, train_limit: 512}
  optim: {name: sgd, lr: 1.0e-6, weight_decay: 0.0}
  epochs: 2
  batch_size: 32
stages:
  - first:
      spiky: {optimizer: adam, lr: 0.003, schedule: step, schedule.step_size: 1, schedule.gamma: 10000}
      keep: {}
  - second:
      keep: {}
      adam: {optimizer: adam, lr: 0.003}
  - third:
      half: {lr: 0.0015}
      keep: {}
"""


def val_accuracies(run_dir: Path) -> list[float]:
    return [row["val_acc"] for row in read_metrics(run_dir / "metrics.csv") if row.get("val_acc") is not None]


@pytest.fixture(scope="module")
def greedy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("greedy")
    (folder / "greedy.yaml").write_text(GREEDY)
    assert main(["study", "run", str(folder / "greedy.yaml"), "--dir", str(folder / "out"), "--quiet"]) == 0
    return folder / "out"


def test_a_diverged_alternative_is_never_chosen_even_with_the_best_curve_before_it(greedy_dir: Path) -> None:
    record = json.loads((greedy_dir / "greedy.json").read_text())
    first = record["stages"][0]
    spiky, keep = first["alternatives"]["spiky"], first["alternatives"]["keep"]
    assert json.loads((greedy_dir / "first__spiky" / "run.json").read_text())["status"] == "diverged"
    # the precondition that makes this test mean something: before diverging, 'spiky' beat 'keep' on validation
    assert max(val_accuracies(greedy_dir / "first__spiky")) > max(val_accuracies(greedy_dir / "first__keep")) + 0.1
    assert first["chosen"] == "keep" and keep["val_acc"] == pytest.approx(max(val_accuracies(greedy_dir / "first__keep")))
    assert spiky["status"] == "diverged" and spiky["val_acc"] is None and spiky["test_acc"] is None


def test_keep_reuses_the_previous_winners_run_and_the_winner_is_carried(greedy_dir: Path) -> None:
    record = json.loads((greedy_dir / "greedy.json").read_text())
    first, second, third = record["stages"]
    # 'keep' in stage 2 is stage 1's winner (the base itself): its run, not a second training of it
    assert second["alternatives"]["keep"]["runs"] == first["alternatives"]["keep"]["runs"] == ["first__keep"]
    assert second["alternatives"]["keep"]["val_acc"] == first["alternatives"]["keep"]["val_acc"]
    assert not (greedy_dir / "second__keep").exists()
    # Adam learns, the base does not: stage 2 chooses it on validation accuracy
    adam = second["alternatives"]["adam"]
    assert second["chosen"] == "adam" and adam["val_acc"] > second["alternatives"]["keep"]["val_acc"]
    assert adam["val_acc"] == pytest.approx(max(val_accuracies(greedy_dir / "second__adam")))
    # stage 3 builds on Adam: 'keep' is the run second__adam, 'half' is Adam with half its rate
    assert third["alternatives"]["keep"]["runs"] == ["second__adam"] and not (greedy_dir / "third__keep").exists()
    half = yaml.safe_load((greedy_dir / "third__half" / "config.yaml").read_text())
    assert half["optim"]["name"] == "adam" and half["optim"]["lr"] == 0.0015
    winner = max(["half", "keep"], key=lambda alt: (third["alternatives"][alt]["val_acc"], alt == "half"))
    assert third["chosen"] == winner
    final = record["final"]
    assert final["choices"] == ["keep", "adam", winner]
    assert final["test_acc"] == third["alternatives"][winner]["test_acc"] is not None
    run = {"half": "third__half", "keep": "second__adam"}[winner]
    assert final["test_acc"] == json.loads((greedy_dir / run / "run.json").read_text())["test"]["acc"]
    # the directory holds exactly the runs the search trained: one per new configuration
    assert sorted(p.name for p in greedy_dir.iterdir() if (p / "run.json").is_file()) == [
        "first__keep", "first__spiky", "second__adam", "third__half"]


def test_choose_takes_the_best_validation_accuracy_the_first_listed_on_a_tie_and_never_none() -> None:
    assert choose({"a": {"val_acc": 0.5}, "b": {"val_acc": 0.7}, "c": {"val_acc": 0.6}}) == "b"
    assert choose({"a": {"val_acc": 0.7}, "b": {"val_acc": 0.7}}) == "a"
    assert choose({"b": {"val_acc": 0.7}, "a": {"val_acc": 0.7}}) == "b"  # listed first, not first by name
    assert choose({"x": {"val_acc": 0.6}, "y": {"val_acc": 0.7}, "z": {"val_acc": 0.7}}) == "y"
    assert choose({"diverged": {"val_acc": None}, "weak": {"val_acc": 0.0}}) == "weak"  # 0.0 is a score, None is not
    assert choose({"a": {"val_acc": None}, "b": {"val_acc": None}}) is None
    assert choose({}) is None


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
    assert headers == ["stage", "alternative", "val top-1", "test top-1", "status", "chosen"]
    assert rows == [["first", "spiky", "-", "-", "diverged", ""],
                    ["first", "keep", "10.00%", "0.00%", "completed", "*"],
                    ["second", "keep", "10.00%", "0.00%", "completed", ""],
                    ["second", "adam", "91.23%", "100.00%", "stopped_early", "*"],
                    ["final", "keep + adam", "91.23%", "100.00%", "stopped_early", ""]]
    (tmp_path / "greedy.json").write_text(json.dumps({**record, "final": None}))  # stopped: every one diverged
    assert greedy_table(tmp_path)[1][-1][0] == "second"
