"""One precision for everything a run reports (issue 33, item 9): a run trained with bf16 autocast is scored,
evaluated and asked for predictions in fp32, the precision its exported file runs in, so its training-time test
score, `cnnlab eval`, `cnnlab predict RUN`, `cnnlab predict EXPORTED` and the export's own check agree (to 1e-5
in probability; bf16 logits differed by up to 8e-3, 58.99% against 59.34% on one run)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import cnnlab

pytestmark = pytest.mark.slow
AGREE = 1e-5  # in probability


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, (args, done.stderr[-2000:])
    return done


def test_a_bf16_run_its_eval_its_predictions_and_its_export_agree(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    run_cli("train", "data=digits", "model=lenet5", "data.train_limit=256", "epochs=2", "batch_size=32",
            "train.precision=bf16", "--name", "b", "--quiet", cwd=tmp_path)
    run_dir = tmp_path / "runs" / "b"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["precision"] == "bf16"  # it trained in bf16

    # the training's own test score and `cnnlab eval` are one measurement
    evaluated = cnnlab.evaluate(run_dir, write=False)
    assert evaluated["acc"] == record["test"]["acc"] and evaluated["count"] == record["test"]["count"]
    assert evaluated["loss"] == pytest.approx(record["test"]["loss"], rel=1e-5)

    exported = run_cli("export", str(run_dir), "--format", "torchscript", "--out", "model.pt", cwd=tmp_path)
    checked = float(re.search(r"\|Δ probability\| (\S+) against PyTorch", exported.stdout).group(1))
    assert checked <= AGREE  # the export's check, in probability
    assert json.loads(Path(tmp_path, "model.pt.json").read_text())["check"]["max_abs_probability_difference"] <= AGREE

    images = run_cli("data", "export-samples", "digits", "-n", "8", cwd=tmp_path).stdout.split()
    monkeypatch.chdir(tmp_path)
    from_run = cnnlab.predict(run_dir, images, k=10)
    from_file = cnnlab.predict(tmp_path / "model.pt", images, k=10)
    for mine, theirs in zip(from_run, from_file):
        ours, its = dict(mine["top"]), dict(theirs["top"])
        assert max(abs(ours[label] - its[label]) for label in ours) <= AGREE, (mine, theirs)

    # every test image: the exported file's answers are eval's (same accuracy over the split)
    run = cnnlab.load_run(run_dir)
    batches, _ = run.batches("test", device="cpu")
    with warnings.catch_warnings():  # torch.jit.load's deprecation notice
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(tmp_path / "model.pt"))
    right = total = 0
    with torch.no_grad():
        for batch, labels in batches:
            right += int((module(batch.float().contiguous(memory_format=torch.contiguous_format)).argmax(1)
                          == labels).sum())
            total += len(labels)
    assert total == evaluated["count"] and right / total == evaluated["acc"]
