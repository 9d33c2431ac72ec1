"""`cnnlab study run --dry-run` against what `study run` with the same arguments then does (issue 35, a hostile
user's checks): it refuses what the run refuses (exit 2, one `error:` line, nothing written), leaves out the runs the
run would skip, counts a greedy study's reused keep once, and bounds what --until-decided may add."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

STUDY = """\
name: edges
base: {model: lenet5, data: {name: digits, train_limit: 128}, epochs: 1, batch_size: 32}
variations:
  baseline: {}
  faster: {optim.lr: 0.05}
seeds: [0]
"""

GREEDY = """\
name: greedy_edges
mode: greedy
base: {model: lenet5, data: {name: digits, train_limit: 128}, epochs: 1, batch_size: 32}
seeds: [0]
stages:
  - width: {keep: {}, small: {batch_size: 16}}
  - act: {keep: {}, relu: {model.activation: relu}}  # (lenet5's own is tanh)
"""


def cnnlab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})


def tree(root: Path) -> dict[str, str]:
    """Every path under `root` with its content's hash (a folder: '')."""
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            for path in sorted(root.rglob("*"))}


def refused(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr and all(word in done.stderr for word in words), done.stderr


def test_a_dry_run_leaves_out_the_finished_runs_and_refuses_a_changed_study(tmp_path: Path) -> None:
    (tmp_path / "edges.yaml").write_text(STUDY)
    assert cnnlab("study", "run", "edges.yaml", "--quiet", "--shard", "1/2", cwd=tmp_path).returncode == 0
    half = cnnlab("study", "run", "edges.yaml", "--dry-run", cwd=tmp_path)
    assert "1 of 2 runs already finished in runs/edges: skipped, not costed" in half.stdout, half.stdout
    assert "study edges: 1 runs (1 variations)" in half.stdout and "baseline " not in half.stdout
    assert cnnlab("study", "run", "edges.yaml", "--quiet", cwd=tmp_path).returncode == 0
    before = tree(tmp_path)

    done = cnnlab("study", "run", "edges.yaml", "--dry-run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 of 2 runs already finished in runs/edges: skipped, not costed" in done.stdout
    assert "study edges: nothing left to run; nothing was written" in done.stdout  # as `study run` skips them
    failed = cnnlab("study", "run", "edges.yaml", "--dry-run", "--rerun-failed", cwd=tmp_path)
    assert "2 of 2 runs already finished" in failed.stdout  # (completed runs are results either way)
    refused(cnnlab("study", "run", "edges.yaml", "--dry-run", "optim.lr=0.5", cwd=tmp_path),
            "runs/edges/baseline' was made with another config", "optim.lr")
    assert tree(tmp_path) == before  # nothing written: no plan, lock, run or table touched


@pytest.mark.parametrize("args,words", [
    (["--until-decided", "--max-seeds", "1"], ["--max-seeds must be between 2 and 100"]),
    (["--alpha", "2"], ["--alpha must lie between 0 and 1"]),
    (["--dir", "edges.yaml"], ["study directory 'edges.yaml' is a file"]),
    (["--dir", "mine"], ["'mine' is not empty and is not a cnnlab study directory"]),
    (["data.image_size=4"], ["edges.yaml", "variation 'baseline'", "does not accept 4x4 images"]),
])
def test_a_dry_run_refuses_what_the_run_refuses(tmp_path: Path, args: list[str], words: list[str]) -> None:
    (tmp_path / "edges.yaml").write_text(STUDY)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("the user's\n")
    before = tree(tmp_path)
    refused(cnnlab("study", "run", "edges.yaml", "--dry-run", *args, cwd=tmp_path), *words)
    assert tree(tmp_path) == before


def test_a_greedy_dry_run_counts_the_runs_the_search_trains(tmp_path: Path) -> None:
    (tmp_path / "greedy.yaml").write_text(GREEDY)
    refused(cnnlab("study", "run", "greedy.yaml", "--dry-run", "--until-decided", cwd=tmp_path),
            "--until-decided adds seeds to the rows of a one-change study")
    done = cnnlab("study", "run", "greedy.yaml", "--dry-run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "act:keep" not in done.stdout  # one seed: the second stage's keep is the first stage's winner, reused
    assert "study greedy_edges: 3 runs (every stage's alternatives" in done.stdout
    assert not (tmp_path / "runs").exists()
    assert cnnlab("study", "run", "greedy.yaml", "--quiet", cwd=tmp_path).returncode == 0
    trained = [p for p in (tmp_path / "runs" / "greedy_edges").iterdir() if (p / "run.json").is_file()]
    assert len(trained) == 3, sorted(p.name for p in trained)


def test_until_decided_is_bounded_not_ignored(tmp_path: Path) -> None:
    (tmp_path / "edges.yaml").write_text(STUDY)
    done = cnnlab("study", "run", "edges.yaml", "--dry-run", "--until-decided", "--max-seeds", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # two rows of one seed each, up to three seeds: at most 2 x 2 runs more
    assert "--until-decided then adds seeds only to rows left undecided: at most 4 more run(s)" in done.stdout
    assert not (tmp_path / "runs").exists()
