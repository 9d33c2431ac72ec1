"""A resume applies what it records or refuses it (issue 34, 1): with --allow-config-change, every setting a
resume accepts takes effect from the resumed epoch on, as metrics.csv shows against the recorded config, and is
written into run.json's `config_changes` (and the report); a setting it cannot apply is refused, exit 2,
naming it. Before, `--allow-config-change optim.lr=80` wrote `lr: 80.0` into config.yaml and trained on at the
old rate (the checkpoint's optimizer groups kept their base rate)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import cnnlab
from cnnlab.api.training import resumed_config
from cnnlab.config import read_config
from cnnlab.optim import lr_factor
from cnnlab.runs.changes import RESUMABLE, changed_keys
from cnnlab.train import read_metrics
from tests.helpers import FAST
from tests.reliability.helpers import cli, cli_here

# each accepted key in at least one case (checked below); every case trains epochs 3 and 4 after a 2-epoch run
CASES = {
    "epochs": [],
    "lr": ["lr=0.05"],
    "schedule": ["schedule=constant"],
    "schedule-option": ["schedule.min_factor=0.5"],
    "warmup": ["schedule.warmup_epochs=3.5", "schedule.warmup_start=0.25"],
    "per-iteration": ["schedule.per_iteration=true", "lr=0.01"],
    "kept": ["train.keep_epochs=[3]", "train.tensorboard=true"],
}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-epoch run (cosine schedule at lr 0.02) that each case resumes to 4 epochs."""
    root = tmp_path_factory.mktemp("changes")
    return cnnlab.train(None, FAST, runs_dir=root, name="base", quiet=True).run_dir


def expected_lr(config: cnnlab.RunConfig, epoch: int, steps: int) -> float:
    """The lr metrics.csv shows for `epoch` (1-based) under `config`: the rate of the epoch's last step."""
    position = epoch - 1 + ((steps - 1) / steps if config.schedule.per_iteration else 0.0)
    return config.optim.lr * lr_factor(config.schedule, position, config.train.epochs)


def test_every_key_a_resume_accepts_is_covered_by_a_case(base: Path) -> None:
    old = read_config(base / "config.yaml")
    covered = set()
    for overrides in CASES.values():
        _, new = resumed_config(base, None, [*overrides, "epochs=4"])
        covered |= {name for key in changed_keys(old, new) for name in RESUMABLE
                    if key == name or (name.endswith(".") and key.startswith(name))}
    assert covered == set(RESUMABLE)


@pytest.mark.parametrize("case", CASES)
def test_an_accepted_change_takes_effect_from_the_resumed_epoch_and_is_recorded(base: Path, tmp_path: Path,
                                                                               case: str) -> None:
    run = Path(shutil.copytree(base, tmp_path / "run", ignore=shutil.ignore_patterns(".lock")))
    old = read_config(base / "config.yaml")
    result = cli_here("train", "--resume", str(run), "--allow-config-change", "epochs=4", *CASES[case], cwd=tmp_path)
    assert result.returncode == 0, result.output
    assert "note: from epoch 3 on: " in result.stderr + result.stdout
    new = read_config(run / "config.yaml")
    record = json.loads((run / "run.json").read_text())
    steps = record["steps"] // record["epochs_completed"]
    rows = read_metrics(run / "metrics.csv")
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4]
    for row in rows:
        config = old if row["epoch"] <= 2 else new
        assert row["lr"] == pytest.approx(expected_lr(config, row["epoch"], steps), rel=1e-12), (case, row["epoch"])
    [change] = record["config_changes"]
    assert change["epoch"] == 3 and change["step"] == 2 * steps + 1
    assert sorted(line.split(":")[0] for line in change["changes"]) == sorted(changed_keys(old, new))
    assert change["config_hash"] == record["config_hash"] != change["from_hash"]
    if case == "kept":
        assert (run / "checkpoints" / "epoch_0003.safetensors").is_file() and (run / "tensorboard").is_dir()
    if case == "lr":  # the rate itself, not only the recomputation: 0.05 x the cosine of 4 epochs at epoch 3
        assert rows[2]["lr"] == pytest.approx(0.025) and rows[1]["lr"] == pytest.approx(0.01)
        report = cli_here("report", str(run), cwd=tmp_path)
        assert report.returncode == 0
        assert "changed from epoch 3</td><td>optim.lr: 0.02 -&gt; 0.05; train.epochs: 2 -&gt; 4" in \
            (run / "report.html").read_text()


def test_a_change_a_resume_cannot_apply_is_refused_naming_it(base: Path, tmp_path: Path) -> None:
    """The seed, the model and the batch are read when a run starts: exit 2 naming each, nothing written."""
    run = Path(shutil.copytree(base, tmp_path / "run", ignore=shutil.ignore_patterns(".lock")))
    files = lambda: {path.name: path.read_bytes() for path in run.iterdir() if path.is_file() and path.name != ".lock"}  # noqa: E731
    before = files()
    refused = cli("train", "--resume", str(run), "--allow-config-change", "epochs=4", "seed=3",
                  "model.activation=relu", "batch_size=16", cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.output
    assert f"error: refusing to resume '{run}' with model.activation, seed, train.batch_size changed" in refused.stderr
    assert "A resume can change train.epochs, optim.lr, schedule.*" in refused.stderr
    assert files() == before
