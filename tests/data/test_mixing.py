"""Mixup and CutMix (data/mixing.py): soft targets, the pasted area, the draws, and hard-label accuracy."""

from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.data.mixing import MixDraw, MixPlan, cutmix_box, epoch_mix_draws, mix_batch
from cnnlab.train import accumulator as accumulator_module


def batch(size: int = 8, classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(size, 3, 16, 16, generator=generator) + 1.0  # no pixel equals another by chance
    return images, torch.arange(size) % classes


def test_mixup_mixes_images_and_targets_by_lambda() -> None:
    images, labels = batch()
    mixed, targets = mix_batch(images, labels, 10, MixDraw("mixup", 0.3))
    torch.testing.assert_close(mixed, 0.3 * images + 0.7 * images.roll(1, 0))
    torch.testing.assert_close(targets.sum(1), torch.ones(8))
    rows = torch.arange(8)
    torch.testing.assert_close(targets[rows, labels], torch.full((8,), 0.3))
    torch.testing.assert_close(targets[rows, labels.roll(1, 0)], torch.full((8,), 0.7))


@pytest.mark.parametrize("lam, center", [(0.6, (0.5, 0.5)), (0.2, (0.05, 0.9)), (0.0, (0.99, 0.0))])
def test_cutmix_targets_are_the_real_pasted_area(lam: float, center: tuple[float, float]) -> None:
    images, labels = batch()
    draw = MixDraw("cutmix", lam, center)
    mixed, targets = mix_batch(images, labels, 10, draw)
    pasted = (mixed != images).any(1)  # [B, H, W]: pixels that came from the partner
    area = pasted[0].float().mean().item()
    assert all(torch.equal(pasted[0], pasted[i]) for i in range(8))  # one box for the batch
    top, bottom, left, right = cutmix_box(16, 16, draw)
    assert pasted[0].sum() == (bottom - top) * (right - left)
    assert torch.equal(mixed[:, :, top:bottom, left:right], images.roll(1, 0)[:, :, top:bottom, left:right])
    rows = torch.arange(8)
    torch.testing.assert_close(targets[rows, labels], torch.full((8,), 1 - area))
    torch.testing.assert_close(targets[rows, labels.roll(1, 0)], torch.full((8,), area))
    torch.testing.assert_close(targets.sum(1), torch.ones(8))
    if center != (0.5, 0.5):  # clipped at the border: the real area is below the drawn 1 - lam
        assert area < 1 - lam - 0.05


def test_an_unmixed_batch_has_one_hot_targets() -> None:
    images, labels = batch()
    mixed, targets = mix_batch(images, labels, 10, MixDraw())
    assert mixed is images and torch.equal(targets.argmax(1), labels) and torch.equal(targets.sum(1), torch.ones(8))


def test_draws_are_a_function_of_seed_and_epoch() -> None:
    plan = MixPlan(mixup_alpha=0.4, cutmix_alpha=1.0, mix_prob=0.7, switch_prob=0.25)
    draws = epoch_mix_draws(plan, 4000, seed=3, epoch=2)
    assert draws == epoch_mix_draws(plan, 4000, seed=3, epoch=2)
    assert draws != epoch_mix_draws(plan, 4000, seed=3, epoch=1)
    assert draws != epoch_mix_draws(plan, 4000, seed=4, epoch=2)
    kinds = [d.kind for d in draws]
    assert kinds.count("none") / 4000 == pytest.approx(0.3, abs=0.03)
    assert kinds.count("cutmix") / (4000 - kinds.count("none")) == pytest.approx(0.25, abs=0.03)
    mixup = torch.tensor([d.lam for d in draws if d.kind == "mixup"])
    assert float(mixup.mean()) == pytest.approx(0.5, abs=0.03)  # Beta(a, a) has mean 1/2 ...
    assert float(mixup.var()) == pytest.approx(1 / (4 * (2 * 0.4 + 1)), abs=0.02)  # ... and variance 1/(4(2a+1))
    only_mixup = epoch_mix_draws(MixPlan(mixup_alpha=0.4), 100, 0, 0)
    assert {d.kind for d in only_mixup} == {"mixup"}


# 320 digits at 32: 10 steps an epoch; mixup and CutMix both on, half the batches mixed
MIXED = ["data=digits", "model=convnet", "data.train_limit=320", "batch_size=32", "epochs=2", "lr=0.05",
         "augment.mixup_alpha=1.0", "augment.cutmix_alpha=1.0", "augment.mix_prob=0.8"]


def test_the_mixed_runs_below_mix_batches_mostly_from_their_partner() -> None:
    """The hard-label tests below can tell hard labels from the targets' argmax only in batches where the
    partner dominates: mixup with lam < 1/2. There are some."""
    plan = MixPlan.from_config(cnnlab.make_config(None, MIXED).augment)
    draws = [d for epoch in (0, 1) for d in epoch_mix_draws(plan, 10, 0, epoch)]
    assert sum(d.kind == "mixup" and d.lam < 0.45 for d in draws) >= 2


def test_training_accuracy_counts_the_hard_labels(tmp_path: Path, monkeypatch) -> None:
    """What the epoch's accuracy counts is the loader's labels (int64), not the mixed targets' argmax."""
    seen = []
    real = accumulator_module.Accumulator.add

    def add(self, index, loss, logits, labels):
        seen.append((logits.argmax(1), labels))
        return real(self, index, loss, logits, labels)

    monkeypatch.setattr(accumulator_module.Accumulator, "add", add)
    result = cnnlab.train(None, MIXED, runs_dir=tmp_path, name="m", quiet=True)
    assert all(labels.dtype == torch.int64 and labels.ndim == 1 for _, labels in seen)
    first_epoch = seen[:10]
    correct = sum(int((predicted == labels).sum()) for predicted, labels in first_epoch)
    assert result.history[0]["train_acc"] == correct / 320
    record = cnnlab.load_run(result.run_dir).record
    assert record.recipe["mixing"]["mixup_alpha"] == 1.0 and record.recipe["mixing"]["mix_prob"] == 0.8


def test_the_loader_labels_are_those_the_accuracy_counts(tmp_path: Path, monkeypatch) -> None:
    """The labels given to the accumulator are exactly the loader's, batch by batch (a wrong implementation
    counting the argmax of the mixed targets gives other labels in the mixed batches)."""
    from cnnlab.data import loader as loader_module

    given, loaded = [], []
    real_add, real_batches = accumulator_module.Accumulator.add, loader_module.DeviceBatches.batches

    def add(self, index, loss, logits, labels):
        given.append(labels.clone())
        return real_add(self, index, loss, logits, labels)

    def batches(self, epoch=0, start=0):
        for images, labels in real_batches(self, epoch, start):
            if self.drop_last:
                loaded.append(labels.clone())
            yield images, labels

    monkeypatch.setattr(accumulator_module.Accumulator, "add", add)
    monkeypatch.setattr(loader_module.DeviceBatches, "batches", batches)
    cnnlab.train(None, MIXED, runs_dir=tmp_path, name="m", quiet=True)
    assert len(given) == 20 and all(torch.equal(a, b) for a, b in zip(given, loaded))


def test_augment_false_turns_mixing_off() -> None:
    config = cnnlab.make_config(None, ["augment.mixup_alpha=0.2", "augment.cutmix_alpha=1", "augment=false"])
    assert config.augment.mixup_alpha == 0 and config.augment.cutmix_alpha == 0


def test_cutmix_boxes_are_torchvision_v2s_and_a_pixel_short_of_timms_on_odd_sides() -> None:
    """data/mixing.py's docstring: at lam 0.55 on 32 px, int(32 x sqrt(0.45)) = 21 is odd: torchvision's and
    cnnlab's box is 20 px a side (twice int(10.7)), timm's rand_bbox 21."""
    import math

    import numpy as np

    lam = 0.55
    top, bottom, left, right = cutmix_box(32, 32, MixDraw("cutmix", lam, (0.5, 0.5)))
    half = int(0.5 * math.sqrt(1.0 - lam) * 32)  # torchvision v2.CutMix.make_params, centre (16, 16)
    assert (top, bottom, left, right) == (16 - half, 16 + half, 16 - half, 16 + half) and bottom - top == 20
    mixup = pytest.importorskip("timm.data.mixup")
    np.random.seed(0)
    low, high, _, _ = mixup.rand_bbox((3, 32, 32), lam, margin=0.5)  # margin: never clipped at the border
    assert high - low == 21

