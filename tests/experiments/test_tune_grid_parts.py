"""The tuning protocol's parts that decide (experiments/tune_grid.py), each by hand: the --grid and --pairs
syntax, which point wins, the retraining config, which rows are discarded, and the tuned table read from
tune.json. The end-to-end runs are in test_tune.py and test_tune_early_stop.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnlab.config import StopConfig
from cnnlab.errors import ConfigError
from cnnlab.experiments.study import write_plan
from cnnlab.experiments.tune_grid import (
    _scalar,
    final_config,
    grid_rows,
    parse_grid_options,
    parse_pairs,
    plan_grid,
    select_best,
    tuned_table,
)
from cnnlab.runs import RunRecord, Status

TINY = ["model=lenet5", "data=digits", "epochs=3", "batch_size=32"]


def test_grid_values_are_typed_as_yaml_reads_them() -> None:
    assert parse_grid_options(["lr=0.1,1e-3", "model.activation=relu,tanh", "train.batch_size=32",
                               "model.batch_norm=true,false"]) == {
        "lr": [0.1, 0.001], "model.activation": ["relu", "tanh"], "train.batch_size": [32],
        "model.batch_norm": [True, False]}
    assert parse_grid_options([" lr = 0.1"]) == {"lr": [0.1]}
    assert parse_grid_options(["data.root=a=b,c"]) == {"data.root": ["a=b", "c"]}  # the first '=' splits
    assert (_scalar("1e-3"), _scalar("abc"), _scalar("[1, 2]"), _scalar("{")) == (0.001, "abc", [1, 2], "{")
    for bad in ("lr", "lr=", "=0.1", " =0.1", "lr= "):
        with pytest.raises(ConfigError) as error:
            parse_grid_options([bad])
        assert str(error.value) == f"--grid '{bad}' must look like key=value1,value2 (for example lr=0.1,0.01)"


def test_pairs_go_together() -> None:
    assert parse_pairs(["lr,schedule.step_size=0.1:20,0.01:30"]) == {"lr": [0.1, 0.01], "schedule.step_size": [20, 30]}
    assert parse_pairs([" lr , schedule.step_size =0.1:20,"]) == {"lr": [0.1], "schedule.step_size": [20]}
    assert parse_pairs(["data.root,lr=a=b:0.1"]) == {"data.root": ["a=b"], "lr": [0.1]}
    for bad in ("lr,schedule.step_size", "lr=0.1:20", "lr=0.1,0.2", "lr,schedule.step_size=",
                "lr,schedule.step_size=0.1:20:5", "lr,schedule.step_size=0.1"):
        with pytest.raises(ConfigError) as error:
            parse_pairs([bad])
        assert str(error.value) == (
            f"--pairs '{bad}' must look like KEY1,KEY2=V1:V2,V1:V2 with one value per key in each point "
            "(for example lr,schedule.step_size=0.1:20,0.01:30)")


def test_plan_grid_needs_points_and_a_validation_split() -> None:
    with pytest.raises(ConfigError) as error:
        plan_grid(None, TINY, {}, "t")
    assert str(error.value) == "tune grid needs at least one --grid key=value1,value2 or --pairs k1,k2=a:b,c:d"
    study = plan_grid(None, [*TINY, "schedule=step"], {}, "paired", pairs={"lr": [0.1, 0.01],
                                                                          "schedule.step_size": [1, 2]})
    assert study.name == "paired" and study.metric == "best_val_acc" and len(study.runs) == 2
    assert [(s.config.optim.lr, s.config.schedule.options["step_size"]) for s in study.runs] == [(0.1, 1), (0.01, 2)]
    per_class = plan_grid(None, [*TINY, "data.val_fraction=0", "data.val_per_class=5"], {"lr": [0.1]}, "t")
    assert per_class.runs[0].config.data.val_per_class == 5  # a validation split of N images per class is one
    with pytest.raises(ConfigError) as no_validation:
        plan_grid(None, [*TINY, "data.val_fraction=0"], {"lr": [0.1]}, "t")
    assert str(no_validation.value) == "tune grid selects on validation accuracy: data.val_fraction must be > 0"


def test_a_mistake_in_a_grid_or_pair_key_names_where_it_was_given() -> None:
    with pytest.raises(ConfigError, match=r"^'model.actvation' \(--grid grid/zip\) is not an option of model"):
        plan_grid(None, TINY, {"model.actvation": ["relu"]}, "t")
    with pytest.raises(ConfigError) as both:
        plan_grid(None, TINY, {"lr": [0.1]}, "t", pairs={"lr": [0.1], "schedule.step_size": [2]})
    assert str(both.value) == "--pairs: 'optim.lr' is in both grid: and zip:; give its values in one of them"
    with pytest.raises(ConfigError) as uneven:
        plan_grid(None, TINY, {}, "t", pairs={"lr": [0.1, 0.2], "seed": [1]})
    assert str(uneven.value).startswith("--pairs: zip")


def test_plan_grid_reads_a_base_config_file(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "base.yaml").write_text("model: lenet5\ndata: digits\nepochs: 4\n")
    monkeypatch.chdir(tmp_path)
    study = plan_grid("base.yaml", ["batch_size=32"], {"lr": [0.1, 0.2]}, "t")
    assert [s.config.train.epochs for s in study.runs] == [4, 4] and study.runs[1].config.optim.lr == 0.2


def test_select_best_by_validation_then_the_earlier_epoch_then_grid_order() -> None:
    rows = [{"run": "a", "discarded": False, "best_val_acc": 0.8, "best_epoch": 5},
            {"run": "b", "discarded": False, "best_val_acc": None, "best_epoch": None},  # no validation score
            {"run": "c", "discarded": False, "best_val_acc": 0.8, "best_epoch": 5},
            {"run": "d", "discarded": True, "best_val_acc": 0.95, "best_epoch": 1}]
    assert select_best(rows)["run"] == "a"  # a full tie: the first in grid order
    rows[2]["best_epoch"] = 4
    assert select_best(rows)["run"] == "c"
    rows[0]["best_val_acc"] = 0.81
    assert select_best(rows)["run"] == "a"
    assert select_best([rows[1], rows[3]]) is None and select_best([]) is None
    unknown = [{"run": "x", "discarded": False, "best_val_acc": 0.8, "best_epoch": 1},
               {"run": "y", "discarded": False, "best_val_acc": 0.8, "best_epoch": None}]  # no epoch: counts as 0
    assert select_best(unknown)["run"] == "y"


def test_final_config_trains_on_train_plus_validation_for_the_best_epoch_with_nothing_to_stop_on() -> None:
    study = plan_grid(None, [*TINY, "early_stop=patience", "stop.patience=2", "train.restore_best=true"],
                      {"lr": [0.1]}, "t")
    config = study.runs[0].config
    assert config.train.restore_best and config.stop.criterion == "patience"  # (as the tuning runs had them)
    final = final_config(config, 7)
    assert final.train.epochs == 7 and final.train.restore_best is False and final.stop == StopConfig()
    assert final.data.val_into_train and final.data.val_fraction == config.data.val_fraction
    assert (final.model, final.optim, final.schedule, final.seed) == (config.model, config.optim, config.schedule,
                                                                      config.seed)


def finished(directory: Path, name: str, status: Status) -> None:
    """A run directory as a finished run leaves it, as far as the table reads it: config.yaml and run.json."""
    (directory / name).mkdir(parents=True)
    (directory / name / "config.yaml").write_text("seed: 0\n")
    RunRecord(status=status, reason="test").save(directory / name / "run.json")


def test_grid_rows_discard_diverged_and_failed_points_and_say_why(tmp_path: Path) -> None:
    study = plan_grid(None, TINY, {"lr": [0.1, 0.2, 0.3, 0.4]}, "t")
    write_plan(study, tmp_path)
    names = [spec.name for spec in study.runs]
    for name, status in zip(names, (Status.COMPLETED, Status.DIVERGED, Status.FAILED)):
        finished(tmp_path, name, status)
    rows = grid_rows(tmp_path)
    assert [(r["status"], r["discarded"], r["why"]) for r in rows] == [
        ("completed", False, ""), ("diverged", True, "loss became NaN/Inf"), ("failed", True, "the run crashed"),
        ("not run", False, "")]


def test_the_tuned_table_of_one_grid(tmp_path: Path) -> None:
    study = plan_grid(None, TINY, {"lr": [0.1]}, "t")
    write_plan(study, tmp_path)
    best = {"run": study.runs[0].name, "grid": {"seed": 3, "optim.lr": 0.1, "schedule.step_size": 20}, "best_val_acc": 0.5,
            "best_epoch": 3, "epochs": 8}
    record = {"rows": [], "best": best, "final": {"run": "/elsewhere/final", "epochs": 3, "test": {"acc": 0.61}}}
    (tmp_path / "tune.json").write_text(json.dumps(record))
    headers, rows = tuned_table(tmp_path, {"source": "x", "top1": {"": 88.52}})
    assert headers == ["variation", "best point", "best val top-1", "best epoch", "epochs trained", "final epochs",
                       "test top-1", "Δ test top-1 [95% CI]", "verdict", "report top-1"]
    assert rows == [["-", "seed=3 lr=0.1 step_size=20", "50.00%", "3", "8", "3", "61.00%", "-", "-", "88.52%"]]
    (tmp_path / "tune.json").write_text(json.dumps({"rows": [], "best": None, "final": None}))  # every point diverged
    headers, rows = tuned_table(tmp_path)
    assert headers[-1] == "verdict" and rows == [["-", "-", "-", "-", "-", "-", "-", "-", "-"]]


def plan_two_tuned_variations(directory: Path) -> dict:
    """plan.json of a tuned study of two variations (scratch, tanh) over one lr; returns a best point for tune.json."""
    from cnnlab.experiments.study import plan_study

    study = plan_study({"name": "t", "base": {"model": "lenet5", "data": "digits", "epochs": 3}, "metric": "test_acc",
                        "protocol": "tune", "variations": {"scratch": {}, "tanh": {"model.activation": "tanh"}},
                        "grid": {"optim.lr": [0.1]}})
    write_plan(study, directory)
    return {"grid": {"optim.lr": 0.1}, "best_val_acc": 0.25, "best_epoch": 2, "epochs": 2}


def test_the_tuned_table_of_several_variations_names_those_not_run_yet(tmp_path: Path) -> None:
    best = plan_two_tuned_variations(tmp_path)
    record = {"variations": {"tanh": {"rows": [], "best": best, "final": None}}}  # its retrain did not finish
    (tmp_path / "tune.json").write_text(json.dumps(record))
    _, rows = tuned_table(tmp_path, {"source": "x", "top1": {"scratch": 50.92, "tanh": 0.0}, "seconds": {"tanh": 5108}})
    assert rows == [["scratch", "not run", "-", "-", "-", "-", "-", "+0.00", "reference", "50.92%", "-"],
                    ["tanh", "lr=0.1", "25.00%", "2", "2", "-", "-", "-", "-", "0.00%", "5,108"]]


def test_the_tuned_table_judges_the_retrained_runs_against_the_first_variation(tmp_path: Path) -> None:
    from tests.experiments.test_table_parts import predicted_run

    best = plan_two_tuned_variations(tmp_path)
    finals = {name: predicted_run(tmp_path, f"{name}__final", right) for name, right in (("scratch", 20), ("tanh", 36))}
    record = {"variations": {name: {"rows": [], "best": best, "final": {"run": f"/where/it/ran/{path.name}", "epochs": 2,
                                                                          "test": {"acc": right / 40}}}
                             for (name, path), right in zip(finals.items(), (20, 36))}}
    (tmp_path / "tune.json").write_text(json.dumps(record))
    headers, rows = tuned_table(tmp_path)
    # the final runs are found by name in this directory (tune.json's paths are where the study ran)
    assert rows[0][-2:] == ["+0.00", "reference"] and rows[0][6] == "50.00%"
    # one retrained run a variation: McNemar's interval, and the word that one seed allows
    assert rows[1][-1] == "1 seed" and rows[1][-2].startswith("+40.00 [") and rows[1][6] == "90.00%"


def test_the_tuned_table_lists_each_point_under_its_variation(tmp_path: Path) -> None:
    study = plan_grid(None, TINY, {"lr": [0.1, 0.2, 0.3]}, "t")
    write_plan(study, tmp_path)
    first, second, third = (spec.name for spec in study.runs)
    points = [{"run": first, "variation": "", "grid": {"optim.lr": 0.1}, "discarded": False, "why": "",
               "best_val_acc": 0.5, "best_epoch": 3, "epochs": 8},
              {"run": second, "variation": "", "grid": {"optim.lr": 0.2}, "discarded": True,
               "why": "loss became NaN/Inf", "best_val_acc": None, "best_epoch": None, "epochs": None},
              {"run": third, "variation": "", "grid": {"optim.lr": 0.3}, "discarded": False, "why": "",
               "best_val_acc": 0.25, "best_epoch": 0, "epochs": 2}]
    record = {"rows": points, "best": points[0], "final": {"run": "final", "epochs": 3, "test": {"acc": 0.75}}}
    (tmp_path / "tune.json").write_text(json.dumps(record))
    headers, rows = tuned_table(tmp_path, {"source": "x", "best_epoch": {"lr=0.1": 52, "lr=0.3": 7}})
    assert headers[-1] == "report best ep."
    assert rows == [["-", "lr=0.1", "50.00%", "3", "8", "3", "75.00%", "-", "-", "-"],
                    ["lr=0.1", "chosen", "50.00%", "3", "8", "-", "-", "-", "-", "52"],
                    ["lr=0.2", "discarded: loss became NaN/Inf", "-", "-", "-", "-", "-", "-", "-", "-"],
                    ["lr=0.3", "", "25.00%", "0", "2", "-", "-", "-", "-", "7"]]
    (tmp_path / "tune.json").write_text(json.dumps({**record, "best": None, "final": None}))
    assert [row[1] for row in tuned_table(tmp_path)[1][1:]] == ["", "discarded: loss became NaN/Inf", ""]
