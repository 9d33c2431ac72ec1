"""GPU checks: run only where CUDA exists (skipped on CPU machines and in CI). Each checks behaviour on the
tensors themselves, not what run.json says about them."""

from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.train import Callback
from cnnlab.train.checkpoint import load_checkpoint, split_prefix
from tests.helpers import FAST

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


class Probe(Callback):
    """Records, on the first training step, the first convolution's input memory format, its output dtype
    (bf16 under autocast) and the device it ran on."""

    def __init__(self) -> None:
        self.seen: dict = {}

    def on_fit_start(self, trainer) -> None:
        conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))

        def hook(module, inputs, output) -> None:
            if not self.seen and module.training:
                self.seen = {"channels_last": inputs[0].is_contiguous(memory_format=torch.channels_last),
                             "dtype": output.dtype, "device": output.device.type,
                             "weight_channels_last": module.weight.is_contiguous(memory_format=torch.channels_last)}

        self.handle = conv.register_forward_hook(hook)

    def on_fit_end(self, trainer, status) -> None:
        self.handle.remove()


def test_cuda_run_uses_bf16_and_channels_last(tmp_path: Path) -> None:
    probe = Probe()
    result = cnnlab.train(None, [*FAST, "model=convnet", "device=cuda"], runs_dir=tmp_path, name="gpu", quiet=True,
                          callbacks=[probe])
    assert result.status == "completed"
    assert probe.seen == {"channels_last": True, "dtype": torch.bfloat16, "device": "cuda",
                          "weight_channels_last": True}
    info = cnnlab.load_run(result.run_dir).info
    assert info["device"] == torch.cuda.get_device_name(0) and info["precision"] == "bf16"
    report = cnnlab.evaluate(result.run_dir)
    assert report["acc"] == pytest.approx(result.test["acc"], abs=1e-6)


class Interrupt(Callback):
    def on_fit_start(self, trainer) -> None:
        trainer.progress_seconds = 0.0

    def on_progress(self, trainer, progress) -> None:
        if progress["step"] == 5:
            trainer.interrupt_signal = 2


def test_cuda_interrupt_and_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    """Deterministic mode: an interrupted and resumed CUDA run ends with the uninterrupted run's weights,
    bit for bit (RNG states of CPU and CUDA are in the checkpoint)."""
    args = [*FAST, "model=convnet", "model.dropout=0.3", "device=cuda", "epochs=3", "train.deterministic=true"]
    reference = cnnlab.train(None, args, runs_dir=tmp_path, name="reference", quiet=True)
    stopped = cnnlab.train(None, args, runs_dir=tmp_path, name="r", quiet=True, callbacks=[Interrupt()])
    assert stopped.status == "interrupted"
    done = cnnlab.train(resume=stopped.run_dir, quiet=True)
    assert done.status == "completed" and len(done.history) == 3

    def weights(run: Path) -> dict:
        return split_prefix(load_checkpoint(run / "checkpoints" / "last.safetensors")[0], "model.")

    ours, theirs = weights(done.run_dir), weights(reference.run_dir)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert done.test == reference.test


def test_cuda_graph_replay_computes_the_eager_losses(tmp_path: Path) -> None:
    """train.graphs=true: the captured step's losses equal eager's within bf16 tolerance, the graph was used,
    and it is not slower (the seed network at batch 64: the graph removes per-kernel launch overhead)."""
    args = [*FAST, "model=convnet", "data.train_limit=1024", "batch_size=64", "epochs=3", "optim=momentum"]
    eager = cnnlab.train(None, args, runs_dir=tmp_path, name="eager", quiet=True)
    graphed = cnnlab.train(None, [*args, "train.graphs=true"], runs_dir=tmp_path, name="graphs", quiet=True)
    assert graphed.record.graphs == {"used": True, "why": None}
    steps = [[float(line.split(",")[2]) for line in (tmp_path / name / "steps.csv").read_text().splitlines()[1:]]
             for name in ("eager", "graphs")]
    assert len(steps[0]) == len(steps[1]) == 48
    assert steps[1] == pytest.approx(steps[0], rel=3e-2)  # bf16: ~3 significant digits, drifting over updates
    assert graphed.test["acc"] == pytest.approx(eager.test["acc"], abs=0.03)
