"""The tuning protocol run in-process on a tiny grid (experiments/tune_grid.py's run_grid, run_tuned and
_retrain_best): fast enough for mutation testing to run for every mutant of those functions, unlike the
CLI end-to-end tests in test_tune.py and test_tune_early_stop.py."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from cnnlab.experiments.study import plan_study
from cnnlab.experiments.tune_grid import plan_grid, run_grid, run_tuned
from cnnlab.runs import RunDir, Status
from cnnlab.train import STOP

TINY = ["model=lenet5", "data=digits", "data.train_limit=64", "epochs=2", "batch_size=32", "optimizer=sgd",
        "optim.weight_decay=0"]


def test_a_grid_discards_the_diverged_point_and_retrains_the_best_on_train_plus_validation(tmp_path: Path) -> None:
    study = plan_grid(None, TINY, {"lr": [0.05, 1.0e6]}, "t")
    said: list[str] = []
    result = run_grid(study, tmp_path, quiet=True, log=said.append)
    good, wild = (spec.name for spec in study.runs)
    rows = {row["run"]: row for row in result.rows}
    assert rows[wild]["status"] == Status.DIVERGED and rows[wild]["discarded"]
    assert not rows[good]["discarded"] and result.best is not None and result.best["run"] == good
    assert not result.interrupted
    searched, final = RunDir(tmp_path / good).record(), RunDir(tmp_path / "final").record()
    assert final is not None and searched is not None
    assert final.status == Status.COMPLETED and final.epochs_completed == result.best["best_epoch"]
    assert final.data["sizes"]["val"] == 0
    assert final.data["sizes"]["train"] == searched.data["sizes"]["train"] + searched.data["sizes"]["val"]
    assert result.final == {"run": str(tmp_path / "final"), "status": "completed",
                            "epochs": result.best["best_epoch"], "test": final.test, "grid": result.best["grid"],
                            "train_size": final.data["sizes"]["train"]}
    assert f"retraining {good} on train + validation for {result.best['best_epoch']} epochs" in said
    record = json.loads((tmp_path / "tune.json").read_text())
    assert record == json.loads(json.dumps({"rows": result.rows, "best": result.best, "final": result.final}))
    stamp = (tmp_path / "final" / "run.json").stat().st_mtime_ns
    again = run_grid(study, tmp_path, quiet=True, log=said.append)  # resumable: nothing trained again
    assert (tmp_path / "final" / "run.json").stat().st_mtime_ns == stamp and again.final == result.final


def test_a_grid_whose_every_point_diverged_retrains_nothing(tmp_path: Path) -> None:
    result = run_grid(plan_grid(None, TINY, {"lr": [1.0e6]}, "t"), tmp_path, quiet=True, log=lambda text: None)
    assert result.best is None and result.final is None and not (tmp_path / "final").exists()
    assert json.loads((tmp_path / "tune.json").read_text())["best"] is None


def test_each_variation_is_tuned_and_retrained_on_its_own(tmp_path: Path) -> None:
    study = plan_study({"name": "t", "base": {"model": "lenet5", "data": {"name": "digits", "train_limit": 64},
                                              "epochs": 1, "batch_size": 32},
                        "metric": "best_val_acc", "protocol": "tune",
                        "variations": {"scratch": {}, "relu": {"model.activation": "relu"}},
                        "grid": {"optim.lr": [0.01]}})
    results = run_tuned(study, tmp_path, quiet=True, log=lambda text: None)
    assert list(results) == ["scratch", "relu"]
    for variation, result in results.items():
        assert result.best is not None and result.best["variation"] == variation
        assert [row["variation"] for row in result.rows] == [variation]
        assert result.final is not None and Path(result.final["run"]) == tmp_path / f"{variation}__final"
        assert RunDir(tmp_path / f"{variation}__final").record().status == Status.COMPLETED
    assert not (tmp_path / "final").exists()
    record = json.loads((tmp_path / "tune.json").read_text())
    assert list(record["variations"]) == ["scratch", "relu"]
    assert record["variations"]["relu"]["best"]["run"] == results["relu"].best["run"]


def test_a_stop_request_ends_the_protocol_recorded_as_interrupted_without_retraining(tmp_path: Path) -> None:
    study = plan_study({"name": "t", "base": {"model": "lenet5", "data": {"name": "digits", "train_limit": 64},
                                              "epochs": 1, "batch_size": 32},
                        "protocol": "tune", "grid": {"optim.lr": [0.01, 0.02]}})

    def log(line: str) -> None:  # a Ctrl-C as the second point starts
        if line.startswith("[2/2]"):
            STOP.signal = signal.SIGINT

    with STOP.watching():
        results = run_tuned(study, tmp_path, quiet=True, log=log)
    (result,) = results.values()
    assert result.interrupted is True and result.directory == tmp_path
    assert result.best is None and result.final is None and not (tmp_path / "final").exists()
    assert [row["run"] for row in result.rows] == [spec.name for spec in study.runs]
    with STOP.watching():  # a stop request before any run was checked: nothing written, nothing retrained
        STOP.signal = signal.SIGTERM
        early = run_tuned(study, tmp_path / "early", quiet=True, log=lambda line: None)
    assert {variation: (r.directory, r.rows, r.best, r.final, r.interrupted) for variation, r in early.items()} == {
        variation: (tmp_path / "early", [], None, None, True) for variation in study.variations}
