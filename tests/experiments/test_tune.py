"""The tuning protocol (grid with a diverging point, best pair retrained on train+val) and the Optuna
search (SQLite storage, pruning, resume, plots)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main
from cnnlab.errors import ConfigError
from cnnlab.experiments.tune_grid import final_config, parse_grid_options, plan_grid, select_best
from cnnlab.experiments.tune_search import session_seed
from cnnlab.train import read_metrics

TINY = ["model=convnet", "data=digits", "epochs=3", "batch_size=32", "optimizer=momentum"]


def test_grid_with_a_diverging_pair_completes_and_retrains_the_best(tmp_path: Path, capsys) -> None:
    out = tmp_path / "grid"
    args = ["tune", "grid", *TINY, "--grid", "lr=0.05,40", "--grid", "schedule=step",
            "--grid", "schedule.step_size=1,2", "--dir", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "discarded (loss became NaN/Inf)" in printed and "*best*" in printed
    report = json.loads((out / "tune.json").read_text())
    rows = {r["run"]: r for r in report["rows"]}
    assert len(rows) == 4
    assert all(rows[n]["discarded"] and rows[n]["status"] == "diverged" for n in rows if n.startswith("lr40"))
    kept = [r for r in rows.values() if not r["discarded"]]
    best = report["best"]
    assert best["best_val_acc"] == max(r["best_val_acc"] for r in kept)
    final = json.loads((out / "final" / "run.json").read_text())
    assert final["status"] == "completed" and final["epochs_completed"] == best["best_epoch"]
    assert final["data"]["sizes"]["val"] == 0  # retrained on train + validation
    searched = json.loads((out / best["run"] / "run.json").read_text())["data"]["sizes"]
    assert final["data"]["sizes"]["train"] == searched["train"] + searched["val"] and searched["val"] > 0
    assert report["final"]["test"]["acc"] == final["test"]["acc"]
    stamp = (out / "final" / "run.json").stat().st_mtime_ns
    assert main(args) == 0  # resumable like a study: nothing is trained again
    assert "4 of 4 runs already finished" in capsys.readouterr().out
    assert (out / "final" / "run.json").stat().st_mtime_ns == stamp


def test_grid_decisions_are_pure() -> None:
    rows = [{"run": "a", "discarded": False, "best_val_acc": 0.8, "best_epoch": 5},
            {"run": "b", "discarded": True, "best_val_acc": 0.9, "best_epoch": 2},
            {"run": "c", "discarded": False, "best_val_acc": 0.8, "best_epoch": 3}]
    assert select_best(rows)["run"] == "c"  # a tie goes to the earlier best epoch; diverged never wins
    assert select_best([rows[1]]) is None
    assert parse_grid_options(["lr=0.1,1e-3", "schedule.step_size=10"]) == {"lr": [0.1, 0.001],
                                                                            "schedule.step_size": [10]}
    with pytest.raises(ConfigError, match="--grid 'lr' must look like key=value1,value2"):
        parse_grid_options(["lr"])
    study = plan_grid(None, TINY + ["early_stop=up"], {"lr": [0.1]}, "t")
    config = final_config(study.runs[0].config, 7)
    # (this once asserted val_fraction == 0, which with per-class splits trained on fewer images than train+val)
    assert config.train.epochs == 7 and config.data.val_into_train and config.stop.criterion == "none"
    assert config.optim.lr == 0.1
    with pytest.raises(ConfigError, match="val_fraction must be > 0"):
        plan_grid(None, [*TINY, "data.val_fraction=0"], {"lr": [0.1]}, "t")


SEARCH = """\
name: tiny_search
base: {model: lenet5, data: {name: digits, train_limit: 256}, epochs: 3, batch_size: 32}
trials: 6
seed: 1
space:
  optim.name: {categorical: [momentum, adam]}
  optim.lr: auto
  model.activation: {categorical: [relu, tanh]}
"""


def test_optuna_search_with_sqlite_resumes_and_plots(tmp_path: Path, capsys) -> None:
    optuna = pytest.importorskip("optuna")
    path = tmp_path / "search.yaml"
    path.write_text(SEARCH)
    out = tmp_path / "search"
    assert main(["tune", "search", str(path), "--dir", str(out), "--trials", "4"]) == 0
    printed = capsys.readouterr().out
    assert "best trial" in printed and (out / "optuna.db").is_file()
    study = optuna.load_study(study_name="tiny_search", storage=f"sqlite:///{out / 'optuna.db'}")
    assert len(study.trials) == 4
    assert all(t.state.is_finished() for t in study.trials)
    for trial in study.trials:
        lr_keys = [k for k in trial.params if k.startswith("optim.lr[")]
        assert lr_keys == [f"optim.lr[{trial.params['optim.name']}]"]  # the lr range follows the optimizer
        if trial.state == optuna.trial.TrialState.COMPLETE:
            val = [r["val_acc"] for r in read_metrics(Path(trial.user_attrs["run_dir"]) / "metrics.csv")]
            assert trial.value > 0 and trial.value == max(val)  # the objective is the best epoch's val top-1
    assert (out / "search_history.png").read_bytes()[:4] == b"\x89PNG"
    # the same command with the file's 6 trials continues the stored study: two more trials
    assert main(["tune", "search", str(path), "--dir", str(out)]) == 0
    assert "4 trials finished, running up to 2 more" in capsys.readouterr().out
    assert len(optuna.load_study(study_name="tiny_search", storage=f"sqlite:///{out / 'optuna.db'}").trials) == 6


def test_a_failed_trial_is_made_up_for_when_the_search_runs_again(tmp_path: Path, capsys) -> None:
    """An interrupted (or crashed) trial is stored as FAIL: it does not count towards `trials`, so the same
    command run again brings the search to its number of finished trials."""
    optuna = pytest.importorskip("optuna")
    path = tmp_path / "search.yaml"
    path.write_text(SEARCH)
    out = tmp_path / "search"
    out.mkdir()
    storage = f"sqlite:///{out / 'optuna.db'}"
    stored = optuna.create_study(study_name="tiny_search", storage=storage, direction="maximize")
    stored.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))  # as a SIGINT leaves it
    assert main(["tune", "search", str(path), "--dir", str(out), "--trials", "2"]) == 0
    assert "0 trials finished, running up to 2 more" in capsys.readouterr().out
    states = [t.state for t in optuna.load_study(study_name="tiny_search", storage=storage).trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) + states.count(optuna.trial.TrialState.PRUNED) == 2
    # run again for two more: the sampler's draws go on instead of repeating the first session's points
    assert main(["tune", "search", str(path), "--dir", str(out), "--trials", "4"]) == 0
    points = [t.params for t in optuna.load_study(study_name="tiny_search", storage=storage).trials if t.params]
    assert len(points) == 4 and points[2] not in points[:2] and points[3] not in points[:2], points


def test_a_search_interrupted_mid_trial_says_so_once_without_a_traceback(tmp_path: Path, capfd, monkeypatch) -> None:
    """A real SIGINT at the third step of the first trial: the trial checkpoints and is stored as FAIL (the next
    session continues it: tests/reliability/test_search_kills.py), the search exits 130 with its one line and
    counts the trial as interrupted; Optuna's warnings about the trial (one with the KeyboardInterrupt's
    traceback) are not printed."""
    import itertools

    from cnnlab.train import Trainer

    real, count = Trainer._step, itertools.count(1)

    def step(self, images, labels):
        if next(count) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, images, labels)

    monkeypatch.setattr(Trainer, "_step", step)
    path = tmp_path / "search.yaml"
    path.write_text(SEARCH)
    assert main(["tune", "search", str(path), "--dir", str(tmp_path / "s")]) == 130
    out, err = capfd.readouterr()
    assert "search interrupted; run the same command again" in out and "trials: 1 interrupted\n" in out
    assert "Traceback" not in out + err and "Trial 0 failed" not in out + err, out + err


def test_a_search_session_seeds_its_sampler_after_the_stored_trials() -> None:
    assert session_seed(0, 0) == 0 and session_seed(0, 3) != session_seed(0, 0)  # a session run again moves on
    assert session_seed(5, 3) == session_seed(5, 3)  # reproducibly
    assert session_seed(0, 0, worker=101) != session_seed(0, 0, worker=102)  # workers sharing a database draw apart


@pytest.mark.parametrize("space,message", [
    ("  optim.lrr: {log: [0.1, 1]}\n", "search.yaml space) is not an option of optim 'momentum'"),
    ("  model.dropout: auto\n", "'auto' is only defined for optim.lr"),
    ("  optim.lr: {log: [0, 1]}\n", "low > 0 for log"),
    ("  model.activation: {categorical: [relu, sigmoidd]}\n", "sigmoidd"),
    ("  model.activation: {categorical: [relu]}\n  model.activation: {categorical: [tanh]}\n",
     "search.yaml:7: key 'model.activation' appears twice in one mapping (first at line 6)"),  # not the last, silently
])
def test_search_space_mistakes_are_caught_before_any_trial(tmp_path: Path, capsys, space, message) -> None:
    path = tmp_path / "search.yaml"
    path.write_text(SEARCH.split("space:")[0] + "space:\n" + space)
    assert main(["tune", "search", str(path), "--dir", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_seed_in_the_search_base_or_an_override_is_the_trials_seed(tmp_path: Path) -> None:
    """The search's own seed replaced it silently (issue 22); it stays the seed when nothing else sets one."""
    from cnnlab.experiments.tune_search import _Midpoint, load_search, sample_config

    path = tmp_path / "search.yaml"
    path.write_text(SEARCH.replace("epochs: 3,", "epochs: 3, seed: 5,"))
    assert sample_config(load_search(path), _Midpoint()).seed == 5
    assert sample_config(load_search(path, ["seed=6"]), _Midpoint()).seed == 6
    path.write_text(SEARCH)
    assert sample_config(load_search(path), _Midpoint()).seed == 1  # the file's seed: 1


@pytest.mark.parametrize("split", ["fraction", "per_class", "train_limit", "folder_val"])
def test_the_final_retrain_uses_exactly_train_plus_validation(tmp_path: Path, split: str) -> None:
    """For every way a validation split is made, the final run trains on the very images the tuning runs
    trained and validated on, and nothing else (with per-class splits it once trained on 200 of 300)."""
    from cnnlab.config import load_config
    from cnnlab.train import splits_of
    from tests.helpers import write_jpeg_tree

    overrides = {"fraction": ["data=digits", "data.val_fraction=0.2"],
                 "per_class": ["data=digits", "data.train_per_class=20", "data.val_per_class=10"],
                 "train_limit": ["data=digits", "data.train_limit=300"],
                 "folder_val": ["data=imagefolder", f"data.root={tmp_path / 'tree'}", "data.image_size=32",
                                "data.workers=0"]}[split]
    if split == "folder_val":
        for folder, count in (("train", 8), ("val", 3), ("test", 2)):
            write_jpeg_tree(tmp_path / "tree" / folder, {"a": count, "b": count})
    tuned = load_config(None, ["model=lenet5", *overrides])
    before = splits_of(tuned)
    after = splits_of(final_config(tuned, 3))
    assert before.val is not None and after.val is None
    assert len(after.train) == len(before.train) + len(before.val)
    if split == "folder_val":
        names = sorted(str(after.train.path(i)) for i in range(len(after.train)))
        expected = sorted([str(before.train.path(i)) for i in range(len(before.train))] +
                          [str(before.val.path(i)) for i in range(len(before.val))])
        assert names == expected
    else:
        merged = torch.cat([before.train.images, before.val.images])
        assert torch.equal(after.train.images, merged) and torch.equal(after.test.images, before.test.images)


def test_a_trial_killed_after_its_run_finished_is_read_back_not_trained_again(tmp_path: Path, capsys) -> None:
    """A search killed after a trial's run.json was final but before Optuna stored the trial: the trial stays
    RUNNING, its run 'completed'. The same command marks it FAIL and its point's new trial reads the finished
    run back (no second session), with the value the objective would have given; the summary counts it once."""
    optuna = pytest.importorskip("optuna")
    from cnnlab.experiments.tune_search import load_search, sample_config
    from cnnlab.runs import RunDir, start_run

    path = tmp_path / "search.yaml"
    path.write_text(SEARCH)
    out = tmp_path / "search"
    out.mkdir()
    storage = f"sqlite:///{out / 'optuna.db'}"
    stored = optuna.create_study(study_name="tiny_search", storage=storage, direction="maximize")
    trial = stored.ask()  # what the killed session had done: a trial, its point, its run trained to the end
    config = sample_config(load_search(path), trial)
    for key, value in {"run": "trial_0000", "run_dir": str(out / "trial_0000")}.items():
        trial.set_user_attr(key, value)
    finished = start_run(config, RunDir(out / "trial_0000"), runs_dir=out, overwrite=True, quiet=True)
    assert finished.status == "completed"
    assert main(["tune", "search", str(path), "--dir", str(out), "--trials", "1"]) == 0
    printed = capsys.readouterr().out
    assert "trial 0 was interrupted (killed" in printed and "trials: 1 complete\n" in printed, printed
    trials = optuna.load_study(study_name="tiny_search", storage=storage).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"] and trials[1].params == trials[0].params
    assert trials[1].user_attrs["resumes"] == 0 and trials[1].user_attrs["run"] == "trial_0000"
    assert trials[1].value == max(row["val_acc"] for row in finished.history)
    assert RunDir(out / "trial_0000").record().sessions == 1 and not (out / "trial_0001").exists()


def test_a_run_name_from_the_database_never_leads_out_of_the_search_directory(tmp_path: Path, capsys) -> None:
    """The run a trial continues is read from the (possibly shared) Optuna database: a name that is not one
    plain folder name stops the search with a message (exit 2) before anything is written outside it."""
    optuna = pytest.importorskip("optuna")
    path = tmp_path / "search.yaml"
    path.write_text(SEARCH)
    out = tmp_path / "search"
    out.mkdir()
    stored = optuna.create_study(study_name="tiny_search", storage=f"sqlite:///{out / 'optuna.db'}",
                                 direction="maximize")
    stored.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL,
                                               user_attrs={"run": "../outside", "interrupted": "SIGTERM"}))
    assert main(["tune", "search", str(path), "--dir", str(out), "--trials", "1"]) == 2
    assert "'../outside' is not allowed" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["search", "search.yaml"]
    assert sorted(p.name for p in out.iterdir()) == ["optuna.db"]
