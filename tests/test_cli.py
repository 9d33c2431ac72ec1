"""The command line: messages, exit codes, and the signal path, partly in real subprocesses."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.cli import main
from tests.helpers import FAST


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.parametrize("args,message", [
    (["train", "model=lenet"], "unknown model 'lenet' (override 'model=lenet'); did you mean 'lenet5'?"),
    (["train", "epochs=abc"], "train.epochs (override 'epochs=abc') must be int"),
    (["train", "epoch=3"], "did you mean 'epochs'?"),
    (["train", "a.yaml", "b.yaml"], "give at most one config file"),
    (["train", "missing.yaml"], "config file 'missing.yaml' does not exist"),
    (["summary", "convnet", "--input", "3x32"], "--input must look like CxHxW"),
    (["summary", "convnet", "--input", "1x8x8"], "input 1x8x8 is too small for convnet"),
    (["eval", "no/such/run"], "run directory 'no/such/run' does not exist"),
    (["models", "zzz*"], "no model matches 'zzz*'"),
])
def test_user_mistakes_exit_2_with_one_clear_message(args, message, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.startswith("error: ")


def test_missing_dataset_exit_2(tmp_path, capsys) -> None:
    assert main(["train", "data=mnist", "--data-root", str(tmp_path / "empty"), "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"dataset 'mnist' is not in the data root you named, {tmp_path / 'empty'}" in err
    assert str(tmp_path / "empty" / "mnist") in err
    assert main(["train", "data=mnist", "--runs-dir", str(tmp_path)]) == 2  # no root named: the search order
    err = capsys.readouterr().err
    assert "dataset 'mnist' not found" in err and "Point cnnlab at a copy with --data-root DIR" in err


@pytest.mark.slow
def test_real_process_exit_codes(tmp_path: Path) -> None:
    bad = run_cli("train", "model=resnet9000", cwd=tmp_path)
    assert bad.returncode == 2 and "unknown model 'resnet9000'" in bad.stderr and "Traceback" not in bad.stderr
    diverged = run_cli("train", *FAST, "model=convnet", "lr=10", "--name", "nan", cwd=tmp_path)
    assert diverged.returncode == 3 and "diverged: training loss became NaN/Inf" in diverged.stderr
    assert json.loads((tmp_path / "runs" / "nan" / "run.json").read_text())["status"] == "diverged"


def test_train_eval_predict_from_the_command_line(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", *FAST, "--name", "cli", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "run directory: runs/cli" in out
    assert main(["eval", "runs/cli", "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("val: loss") and (tmp_path / "runs/cli/confusion_val.csv").exists()
    import json
    import re

    saved = json.loads((tmp_path / "runs/cli/eval_val.json").read_text())
    low, high = (float(x) for x in re.search(r"\(95% CI ([\d.]+)-([\d.]+)\)", out.splitlines()[0]).groups())
    assert (low, high) == pytest.approx([100 * x for x in saved["acc_interval"]], abs=0.006)
    assert (tmp_path / "runs/cli/plots/confusion_val.png").stat().st_size > 1000
    from PIL import Image

    Image.new("L", (8, 8), 0).save(tmp_path / "blank.png")
    assert main(["predict", "runs/cli", "blank.png", "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "blank.png" and len(lines) == 4 and lines[1].strip().endswith(tuple("0123456789"))


def test_kept_epochs_beyond_the_last_are_noted(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", *FAST, "train.keep_epochs=[1,7,5]", "--name", "kept"]) == 0
    assert "note: train.keep_epochs [5, 7] lie beyond epochs=2" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "runs/kept/checkpoints").glob("epoch_*")) == ["epoch_0001.safetensors"]


def test_listing_commands(capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "convnet" in out and "256.1k" in out and "lenet5" in out
    assert main(["summary", "lenet5", "--input", "1x32x32"]) == 0
    assert "61,706 parameters" in capsys.readouterr().out
    assert main(["datasets"]) == 0 and "fashion-mnist" in capsys.readouterr().out
    assert main(["optimizers"]) == 0 and "Kingma & Ba 2015" in capsys.readouterr().out
    assert main(["config", "model=lenet5", "epochs=3"]) == 0
    out = capsys.readouterr().out
    assert "name: lenet5" in out and "epochs: 3" in out
