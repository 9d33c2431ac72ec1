"""Nothing from another run is mixed in (issue 34, 2; issue 32, 4): every file a command reads from a run
directory is checked against the run it sits in: checkpoints by the run id in their header, per-image results
and the files the pictures are drawn from by the digests run.json recorded. Real runs, real files, the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import cnnlab
from cnnlab.errors import DataError
from cnnlab.runs.predictions import FILE_NAME, read_predictions
from tests.helpers import FAST
from tests.reliability.helpers import cli, cli_here

KEPT = [*FAST, "train.keep_epochs=[1,2]"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two finished runs of the same settings but the seed, each keeping the weights of epochs 1 and 2."""
    root = tmp_path_factory.mktemp("identity")
    for name, seed in (("a", 0), ("b", 1)):
        assert cnnlab.train(None, [*KEPT, f"seed={seed}"], runs_dir=root, name=name, quiet=True).status == "completed"
    return root


def copy_run(runs: Path, tmp_path: Path, name: str = "a") -> Path:
    return Path(shutil.copytree(runs / name, tmp_path / name, ignore=shutil.ignore_patterns(".lock")))


def test_another_runs_predictions_or_edited_ones_are_refused_and_an_older_run_stays_readable(runs: Path,
                                                                                             tmp_path: Path) -> None:
    """Issue 32, 4: run.json records the per-image results' digest, image counts and implied accuracies.
    Another run's file copied in, or 100 correct predictions set to class 99, is a DataError naming the file
    (the study table's verdicts call the same reader); a run from before the record (no
    `predictions` in run.json) is read as before."""
    own = read_predictions(runs / "a")
    assert set(own) == {"test", "val"} and own["test"].correct.mean() == pytest.approx(
        json.loads((runs / "a" / "run.json").read_text())["test"]["acc"])

    copied = copy_run(runs, tmp_path / "copied")
    shutil.copyfile(runs / "b" / FILE_NAME, copied / FILE_NAME)
    with pytest.raises(DataError, match=rf"'{copied / FILE_NAME}' implies a test accuracy of .*, its run recorded"):
        read_predictions(copied)

    edited = copy_run(runs, tmp_path / "edited")
    tensors = load_file(edited / FILE_NAME)
    predicted, label = tensors["test.predicted"], tensors["test.label"]
    correct = torch.nonzero(predicted == label).flatten()
    assert len(correct) >= 100
    predicted[correct[:100]] = 99
    save_file(tensors, str(edited / FILE_NAME), metadata={"format": "cnnlab.predictions/1"})
    with pytest.raises(DataError, match=r"a test prediction is class 99, outside this run's 10 classes"):
        read_predictions(edited)

    older = copy_run(runs, tmp_path / "older")
    record = json.loads((older / "run.json").read_text())
    del record["predictions"]
    (older / "run.json").write_text(json.dumps(record))
    assert np.array_equal(read_predictions(older)["test"].predicted, own["test"].predicted)
    shutil.copyfile(edited / FILE_NAME, older / FILE_NAME)  # without a digest, the class range still holds
    with pytest.raises(DataError, match="class 99"):
        read_predictions(older)


def test_average_refuses_a_checkpoint_of_another_run_naming_it(runs: Path, tmp_path: Path) -> None:
    """Issue 34, 2: `cnnlab average RUN --epochs 1,2` with epoch_0002 copied in from the run of another seed
    (same settings otherwise) exits 2 naming that file, and writes no averaged run; so does an epoch file that
    holds another epoch than its name. Before, the mix was averaged and scored (exit 0)."""
    run = copy_run(runs, tmp_path)
    epoch_two = run / "checkpoints" / "epoch_0002.safetensors"
    shutil.copyfile(runs / "b" / "checkpoints" / "epoch_0002.safetensors", epoch_two)
    mixed = cli("average", str(run), "--epochs", "1,2", cwd=tmp_path)
    assert mixed.returncode == 2 and "Traceback" not in mixed.stderr, mixed.output
    assert f"error: '{epoch_two}' is not a checkpoint of run '{run}': it was written by another run" in mixed.stderr
    shutil.copyfile(run / "checkpoints" / "epoch_0001.safetensors", epoch_two)
    renamed = cli_here("average", str(run), "--epochs", "1,2", cwd=tmp_path)
    assert renamed.returncode == 2 and "holds the weights of epoch 1, not of epoch 2" in renamed.stderr
    assert not (tmp_path / "a-avg").exists()
    shutil.copyfile(runs / "a" / "checkpoints" / "epoch_0002.safetensors", epoch_two)
    assert cli_here("average", str(run), "--epochs", "1,2", cwd=tmp_path).returncode == 0


def test_eval_predict_and_pictures_refuse_another_runs_checkpoint_or_curves(runs: Path, tmp_path: Path) -> None:
    """A run's own `last`/`best` replaced by another run's (with its EMA or not, the header says whose): eval,
    predict and the pictures exit 2 naming it; metrics.csv or steps.csv of another run: report exits 2 naming
    it instead of drawing another run's curves under this run's name."""
    run = copy_run(runs, tmp_path)
    for name in ("last", "best"):
        shutil.copyfile(runs / "b" / "checkpoints" / f"{name}.safetensors", run / "checkpoints" / f"{name}.safetensors")
    from PIL import Image

    Image.new("L", (8, 8), 128).save(tmp_path / "digit.png")
    for args in (("eval", str(run)), ("predict", str(run), str(tmp_path / "digit.png")),
                 ("viz", "filters", str(run))):
        result = cli_here(*args, cwd=tmp_path)
        assert result.returncode == 2 and "is not a checkpoint of run" in result.stderr, (args, result.output)
    curves = copy_run(runs, tmp_path / "curves")
    shutil.copyfile(runs / "b" / "metrics.csv", curves / "metrics.csv")
    result = cli_here("report", str(curves), cwd=tmp_path)
    assert result.returncode == 2 and f"'{curves / 'metrics.csv'}' is not the file this run's training wrote" \
        in result.stderr, result.output
