"""GPU checks: run only where CUDA exists (skipped in CI)."""

from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.train import Callback
from tests.helpers import FAST

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_cuda_run_uses_bf16_and_channels_last(tmp_path: Path) -> None:
    result = cnnlab.train(None, [*FAST, "model=convnet", "device=cuda"], runs_dir=tmp_path, name="gpu", quiet=True)
    info = cnnlab.load_run(result.run_dir).info
    assert result.status == "completed" and info["precision"] == "bf16" and info["channels_last"] is True
    assert "NVIDIA" in info["device"] or "H100" in info["device"] or info["device"]
    report = cnnlab.evaluate(result.run_dir)
    assert report["acc"] == pytest.approx(result.test["acc"], abs=1e-6)


class Interrupt(Callback):
    def on_fit_start(self, trainer) -> None:
        trainer.progress_seconds = 0.0

    def on_progress(self, trainer, progress) -> None:
        if progress["step"] == 5:
            trainer.interrupt_signal = 2


def test_cuda_interrupt_and_resume(tmp_path: Path) -> None:
    args = [*FAST, "model=convnet", "device=cuda", "epochs=3"]
    stopped = cnnlab.train(None, args, runs_dir=tmp_path, name="r", quiet=True, callbacks=[Interrupt()])
    assert stopped.status == "interrupted"
    done = cnnlab.train(resume=stopped.run_dir, quiet=True)
    assert done.status == "completed" and len(done.history) == 3
