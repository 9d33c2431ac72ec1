"""The speed variables of issue 35 set wrong (CNNLAB_NUM_THREADS, CNNLAB_ALLOCATOR): a user's typo is said, as
an `error:` line naming the variable and its values, exit 2, no traceback; never silently run at another setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.errors import ConfigError
from cnnlab.train import allocator, speed

BENCH = ["bench", "lenet5", "--steps", "1", "--repeats", "1", "--warmup", "0", "--batch-size", "8"]


def run_cli(args: list[str], cwd: Path, **variables: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **variables}
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5"])
def test_a_bad_thread_count_is_refused_by_bench(tmp_path: Path, value: str) -> None:
    done = run_cli([*BENCH, "--out", "b.json"], tmp_path, CNNLAB_NUM_THREADS=value)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("error: CNNLAB_NUM_THREADS must be a whole number of threads, at least 1")
    assert f"not '{value}'" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "b.json").exists()


def test_a_bad_thread_count_is_refused_by_train_before_a_run_directory_is_made(tmp_path: Path) -> None:
    done = run_cli(["train", "model=lenet5", "data=digits", "epochs=1", "data.train_limit=64", "--name", "r"],
                   tmp_path, CNNLAB_NUM_THREADS="two")
    assert done.returncode == 2 and "error: CNNLAB_NUM_THREADS" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("value", ["bogus", "System"])
def test_an_unknown_allocator_is_refused(tmp_path: Path, value: str) -> None:
    done = run_cli([*BENCH, "--out", "b.json"], tmp_path, CNNLAB_ALLOCATOR=value)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("error: CNNLAB_ALLOCATOR takes one value, system (") and value in done.stderr
    assert "Traceback" not in done.stderr


def test_the_good_values_still_work_as_decisions() -> None:
    assert speed.threads_for(64, {"CNNLAB_NUM_THREADS": " 3 "}) == 3  # (the study runner writes it plainly)
    assert speed.threads_for(64, {"CNNLAB_NUM_THREADS": "", "OMP_NUM_THREADS": "2"}) == 0  # empty: unset
    with pytest.raises(ConfigError, match="CNNLAB_NUM_THREADS"):
        speed.threads_for(64, {"CNNLAB_NUM_THREADS": "0"})
    assert allocator.allocator_choice("linux", {"CNNLAB_ALLOCATOR": ""}, True) is None
    assert "left as it is" in allocator.allocator_choice("linux", {"CNNLAB_ALLOCATOR": "system"}, True)
    with pytest.raises(ConfigError, match="CNNLAB_ALLOCATOR"):
        allocator.allocator_choice("linux", {"CNNLAB_ALLOCATOR": "jemalloc"}, True)
