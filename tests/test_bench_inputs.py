"""`cnnlab bench` given a bad input side, as a user types it: an `error:` line and exit 2, no traceback, no file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("side", ["0", "-3"])
def test_a_side_below_one_pixel_is_refused(tmp_path: Path, side: str) -> None:
    done = subprocess.run([sys.executable, "-m", "cnnlab", "bench", "lenet5", "--steps", "1", "--repeats", "1",
                           "--warmup", "0", "--batch-size", "4", "--image-size", side, "--out", "b.json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr == f"error: --image-size must be at least 1 pixel (leave it out for the model's own), got {side}\n"
    assert not (tmp_path / "b.json").exists()
