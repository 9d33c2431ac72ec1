"""train.grad_accum_steps and train.label_smoothing: what each computes, and where each is refused."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import cnnlab
from cnnlab.errors import ConfigError
from cnnlab.train import Callback
from cnnlab.train import step as step_module
from cnnlab.train.checkpoint import load_checkpoint, split_prefix
from cnnlab.train.step import training_loss

# LeNet-5 has no batch norm and no dropout: k micro-batches of B images and one batch of k x B images give
# the same gradient. The digits recipe's random crops are drawn per image position, so both see the same images.
SGD = ["data=digits", "model=lenet5", "data.train_limit=512", "epochs=2", "optim=sgd", "weight_decay=0",
       "lr=0.1", "schedule=constant", "train.precision=fp32"]  # the tolerance below is fp32's


def last_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    tensors, _ = load_checkpoint(run_dir / "checkpoints" / "last.safetensors")
    return split_prefix(tensors, "model.")


def test_accumulated_micro_batches_equal_one_big_batch_for_sgd(tmp_path: Path) -> None:
    big = cnnlab.train(None, [*SGD, "batch_size=64"], runs_dir=tmp_path, name="big", quiet=True)
    small = cnnlab.train(None, [*SGD, "batch_size=16", "train.grad_accum_steps=4"], runs_dir=tmp_path,
                         name="accumulated", quiet=True)
    single = cnnlab.train(None, [*SGD, "batch_size=16"], runs_dir=tmp_path, name="micro", quiet=True)
    assert big.record.steps == small.record.steps == 16  # 512 // 64 = 8 optimizer steps per epoch
    ours, theirs, unaccumulated = last_weights(small.run_dir), last_weights(big.run_dir), last_weights(single.run_dir)
    for name in theirs:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-4, atol=1e-5)
    assert max((unaccumulated[n] - theirs[n]).abs().max() for n in theirs) > 1e-2  # the comparison can tell
    assert small.record.recipe["grad_accum_steps"] == {"steps": 4, "micro_batch": 16, "effective_batch": 64}
    assert small.record.images_per_second > 0 and big.record.recipe is None


def test_leftover_micro_batches_are_dropped_like_a_last_partial_batch(tmp_path: Path) -> None:
    # 256 images at 32 = 8 micro-batches; groups of 3 make 2 steps per epoch, the last 2 micro-batches are dropped
    result = cnnlab.train(None, [*SGD, "data.train_limit=256", "epochs=1", "batch_size=32",
                                 "train.grad_accum_steps=3"], runs_dir=tmp_path, name="r", quiet=True)
    assert result.record.steps == 2
    steps = (result.run_dir / "steps.csv").read_text().splitlines()
    assert len(steps) == 1 + 2


@pytest.mark.parametrize("overrides, words", [
    (["batch_size=full", "train.grad_accum_steps=2"], "train.batch_size=full"),
    (["train.graphs=true", "train.grad_accum_steps=2"], "train.graphs=false"),
    (["train.grad_accum_steps=0"], "a whole number >= 1"),
    (["train.label_smoothing=1.0"], "in [0, 1)"),
])
def test_accumulation_and_smoothing_refused_where_they_cannot_apply(overrides: list[str], words: str) -> None:
    with pytest.raises(ConfigError, match=r"train\.(grad_accum_steps|label_smoothing)") as error:
        cnnlab.make_config(None, overrides)
    assert words in str(error.value)


def test_more_accumulation_steps_than_batches_is_refused_before_the_run_exists(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "cnnlab", "train", *SGD, "data.train_limit=128", "batch_size=32",
               "train.grad_accum_steps=5", "--runs-dir", str(tmp_path), "--name", "r"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "train.grad_accum_steps=5 needs at least 5 training batches per epoch" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "r").exists()


def test_label_smoothing_loss_is_torchs_own() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(32, 10, generator=generator)
    labels = torch.randint(0, 10, (32,), generator=generator)
    expected = F.cross_entropy(logits, labels, label_smoothing=0.1)
    torch.testing.assert_close(training_loss(logits, labels, 0.1), expected, rtol=0, atol=0)
    # by hand: (1 - e) x NLL of the label + e x mean over classes of -log p
    log_p = logits.log_softmax(1)
    by_hand = (0.9 * -log_p.gather(1, labels[:, None]).squeeze(1) + 0.1 * -log_p.mean(1)).mean()
    torch.testing.assert_close(training_loss(logits, labels, 0.1), by_hand)
    assert abs(float(training_loss(logits, labels, 0.1)) - float(training_loss(logits, labels))) > 1e-3


class FirstLoss(Callback):
    """The training loss of the run's first step, read from the epoch's step losses."""

    def on_epoch_end(self, trainer, row) -> None:
        self.first = row["step_losses"][0] if not hasattr(self, "first") else self.first


def test_label_smoothing_reaches_training(tmp_path: Path, monkeypatch) -> None:
    """The loss the first step trained on is torch's cross-entropy with label_smoothing=0.2 of that step's
    logits and labels (recorded as the step computes them)."""
    seen = []
    real = step_module.training_loss

    def recording(logits, targets, label_smoothing=0.0):
        seen.append((logits.detach().float(), targets, label_smoothing))
        return real(logits, targets, label_smoothing)

    monkeypatch.setattr(step_module, "training_loss", recording)
    first = FirstLoss()
    result = cnnlab.train(None, [*SGD, "epochs=1", "batch_size=64", "train.label_smoothing=0.2"], runs_dir=tmp_path,
                          name="smooth", quiet=True, callbacks=[first])
    logits, labels, smoothing = seen[0]
    assert smoothing == 0.2 and labels.dtype == torch.int64
    expected = F.cross_entropy(logits, labels, label_smoothing=0.2)
    assert first.first == pytest.approx(float(expected), rel=1e-6)
    assert abs(float(F.cross_entropy(logits, labels)) - first.first) > 1e-4  # the plain loss is another number
    assert result.record.recipe == {"label_smoothing": 0.2}
    assert cnnlab.load_run(result.run_dir).config.train.label_smoothing == 0.2
