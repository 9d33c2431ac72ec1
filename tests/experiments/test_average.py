"""`cnnlab average`: kept epochs averaged into a new run, batch norm recomputed, accepted by eval and predict."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.train.checkpoint import load_checkpoint, split_prefix

# a convnet with batch norm (conv1 -> bn1 first), 4 epochs, the weights of epochs 2-4 kept
SOURCE = ["data=digits", "model=convnet", "model.batch_norm=true", "data.train_limit=320", "batch_size=32",
          "epochs=4", "lr=0.05", "train.keep_epochs=[2,3,4]"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    return cnnlab.train(None, SOURCE, runs_dir=runs, name="source", quiet=True).run_dir


def test_average_is_the_mean_of_the_kept_weights_with_batch_norm_recomputed(source: Path) -> None:
    done = cli("average", str(source), "--last", "3")
    assert done.returncode == 0, done.stderr
    averaged_dir = source.parent / "source-avg"
    tensors, _ = load_checkpoint(averaged_dir / "checkpoints" / "last.safetensors")
    averaged = split_prefix(tensors, "model.")
    epochs = [split_prefix(load_checkpoint(source / "checkpoints" / f"epoch_{e:04d}.safetensors")[0], "model.")
              for e in (2, 3, 4)]
    for name, value in averaged.items():
        if "running" not in name and value.is_floating_point():
            torch.testing.assert_close(value, sum(e[name] for e in epochs) / 3)
    # bn1 follows conv1: its recomputed running mean is the mean of conv1's output over the training images
    run = cnnlab.load_run(averaged_dir)
    model = run.model()
    batches, _ = run.batches("train")
    with torch.no_grad():
        outputs = torch.cat([model.features.conv1(images) for images, _ in batches])
    torch.testing.assert_close(averaged["features.bn1.running_mean"], outputs.mean((0, 2, 3)), rtol=1e-3, atol=2e-4)
    mean_of_epochs = sum(e["features.bn1.running_mean"] for e in epochs) / 3
    assert not torch.allclose(averaged["features.bn1.running_mean"], mean_of_epochs, atol=1e-3)
    record = run.record
    assert record.averaged == {"source": str(source), "epochs": [2, 3, 4], "batch_norm_recomputed": True}
    assert record.status == "completed" and 0 < record.test["acc"] <= 1


def test_eval_and_predict_accept_the_averaged_run(source: Path, tmp_path: Path) -> None:
    averaged_dir = source.parent / "avg-eval"
    assert cli("average", str(source), "--epochs", "3,4", "--name", "avg-eval").returncode == 0
    done = cli("eval", str(averaged_dir))
    assert done.returncode == 0, done.stderr
    report = json.loads((averaged_dir / "eval_test.json").read_text())
    assert report["acc"] == cnnlab.load_run(averaged_dir).record.test["acc"]
    image = tmp_path / "digit.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(image)
    done = cli("predict", str(averaged_dir), str(image), "-k", "2")
    assert done.returncode == 0, done.stderr
    done = cli("train", "--resume", str(averaged_dir))  # no optimizer state: said, not a KeyError
    assert done.returncode == 2 and "holds averaged weights without a training state" in done.stderr


def test_epochs_that_were_not_kept_are_refused_naming_the_key(source: Path) -> None:
    done = cli("average", str(source), "--epochs", "1,2")
    assert done.returncode == 2
    assert "did not keep the weights of epoch 1" in done.stderr and "train.keep_epochs=[1,2]" in done.stderr
    assert "Traceback" not in done.stderr and not (source.parent / "source-avg-2").exists()
    assert cli("average", str(source), "--last", "9").returncode == 2
