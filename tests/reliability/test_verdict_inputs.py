"""A verdict rests only on numbers that belong to its run (issue 32, item 4): a one-seed study table reads each
run's per-image results, so another run's predictions file copied into a row, or one whose correct predictions
were set to class 99, makes that row `unreadable` with a note naming the file, never a Δ and never a word.
(The table printed `+0.00 [+0.00, +0.00] equivalent` beside a 15.6-point gap for the first, and turned
`+15.60 better` into `-12.26 worse` for the second.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from cnnlab.runs.predictions import FILE_NAME

STUDY = """name: tamper
base: {model: lenet5, data: {name: digits, train_limit: 320}, epochs: 2, batch_size: 32}
variations:
  baseline: {}
  fast: {lr: 0.05}
  slow: {lr: 0.0001}
seeds: [0]
"""


def _table(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnlab", "study", "table", "runs/tamper"], cwd=folder,
                          capture_output=True, text=True, timeout=300)


def _row(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(f"{name} "))


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tamper")
    (folder / "s.yaml").write_text(STUDY)
    done = subprocess.run([sys.executable, "-m", "cnnlab", "study", "run", "s.yaml", "--quiet"], cwd=folder,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return folder


def test_an_untouched_one_seed_table_shows_mcnemars_interval_and_the_word_1_seed(study: Path) -> None:
    done = _table(study)
    assert done.returncode == 0 and "1 seed" in _row(done.stdout, "fast") and "[" in _row(done.stdout, "fast")


def test_another_runs_predictions_make_the_row_unreadable_naming_the_file(study: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(study, copy)
    target = copy / "runs/tamper/fast" / FILE_NAME
    shutil.copyfile(copy / "runs/tamper/slow" / FILE_NAME, target)
    done = _table(copy)
    assert done.returncode == 0, done.stderr
    row = _row(done.stdout, "fast")
    assert "unreadable" in row and "1 seed" not in row and "[" not in row  # no interval from a foreign file
    assert str(Path("runs/tamper/fast") / FILE_NAME) in done.stdout and "Traceback" not in done.stderr
    assert "1 seed" in _row(done.stdout, "slow")  # the other rows are read as before


def test_edited_predictions_make_the_row_unreadable(study: Path, tmp_path: Path) -> None:
    copy = tmp_path / "edited"
    shutil.copytree(study, copy)
    path = copy / "runs/tamper/fast" / FILE_NAME
    tensors = load_file(str(path))
    right = (tensors["test.predicted"] == tensors["test.label"]).nonzero().flatten()[:100]
    tensors["test.predicted"][right] = 99
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path),
              metadata={"format": "cnnlab.predictions/1"})
    assert int((torch.as_tensor(load_file(str(path))["test.predicted"]) == 99).sum()) == len(right)
    done = _table(copy)
    assert done.returncode == 0, done.stderr
    assert "unreadable" in _row(done.stdout, "fast") and "Traceback" not in done.stderr
