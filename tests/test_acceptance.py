"""The README's promises, run for real (a few seconds each on 2 CPU cores)."""

from pathlib import Path

import pytest

import cnnlab

pytestmark = pytest.mark.slow  # real training to an accuracy bar


def test_demo_reaches_95_percent_on_digits(tmp_path: Path) -> None:
    """`make demo` trains the default model on the bundled digits: >= 95% test accuracy (seed 0)."""
    result = cnnlab.train(None, ["data=digits", "epochs=20"], runs_dir=tmp_path, name="demo", quiet=True)
    assert result.status == "completed" and result.accuracy >= 0.95, result.test
    info = cnnlab.load_run(result.run_dir).info
    assert info["data"]["image_size"] == 32 and info["parameters"] == 254858  # 1-channel seed network


def test_modern_lenet5_on_digits(tmp_path: Path) -> None:
    args = ["model=lenet5", "model.activation=relu", "model.pooling=max", "data=digits", "epochs=15"]
    result = cnnlab.train(None, args, runs_dir=tmp_path, quiet=True)
    assert result.accuracy >= 0.95, result.test
