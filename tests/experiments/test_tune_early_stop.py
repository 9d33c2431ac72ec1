"""The tuning protocol when a grid point stopped early (Bagnoli 2019, section 5: each pair's best validation
accuracy "and the epoch it was reached at"): the winner is retrained for its best epoch, not for the epochs it
happened to run before its stopping rule fired."""

from __future__ import annotations

import json
from pathlib import Path

from cnnlab.cli import main
from cnnlab.train import read_metrics

GRID = ["model=lenet5", "data=digits", "data.train_limit=512", "batch_size=32", "optimizer=adam", "epochs=15",
        "early_stop=patience", "stop.patience=2"]


def test_a_point_that_stopped_early_is_retrained_for_its_best_epoch(tmp_path: Path, capsys) -> None:
    out = tmp_path / "grid"
    assert main(["tune", "grid", *GRID, "--grid", "lr=0.003,0.01", "--dir", str(out)]) == 0
    report = json.loads((out / "tune.json").read_text())
    best = report["best"]
    searched = json.loads((out / best["run"] / "run.json").read_text())
    # the precondition: the winner's stopping rule fired, epochs after its best one
    assert searched["status"] == "stopped_early" and searched["best_epoch"] < searched["epochs_completed"] < 15
    curve = [row["val_acc"] for row in read_metrics(out / best["run"] / "metrics.csv")]
    assert best["best_epoch"] == searched["best_epoch"] == 1 + curve.index(max(curve))
    assert best["best_val_acc"] == max(curve)
    final = json.loads((out / "final" / "run.json").read_text())
    assert final["status"] == "completed" and final["epochs_completed"] == best["best_epoch"]
    assert report["final"]["epochs"] == best["best_epoch"]
    assert f"for {best['best_epoch']} epochs" in capsys.readouterr().out
