import torch

from cnnlab.data import DeviceBatches, ImageSet
from cnnlab.data.augment import AugmentPlan, Draws, apply, epoch_draws, shift_crop


def test_shift_crop_matches_a_per_sample_loop() -> None:
    images = torch.randint(0, 256, (6, 3, 5, 7), dtype=torch.uint8)
    offsets = torch.tensor([[0, 0], [4, 4], [2, 2], [0, 4], [3, 1], [1, 3]])
    out = shift_crop(images, 2, offsets)
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for i, (dy, dx) in enumerate(offsets.tolist()):
        assert torch.equal(out[i], padded[i, :, dy : dy + 5, dx : dx + 7])
    assert torch.equal(out[2], images[2])  # offset (p, p) is the identity


def test_flip_only_where_drawn() -> None:
    images = torch.arange(2 * 1 * 2 * 3, dtype=torch.uint8).view(2, 1, 2, 3)
    out = apply(images, AugmentPlan(hflip=True), Draws(torch.tensor([True, False]), None))
    assert torch.equal(out[0], images[0].flip(-1)) and torch.equal(out[1], images[1])


def test_draws_are_a_pure_function_of_seed_and_epoch() -> None:
    plan = AugmentPlan(hflip=True, crop_padding=2)
    first, again = epoch_draws(plan, 100, 3, 1, torch.device("cpu")), epoch_draws(plan, 100, 3, 1, torch.device("cpu"))
    other = epoch_draws(plan, 100, 3, 2, torch.device("cpu"))
    assert torch.equal(first.flip, again.flip) and torch.equal(first.offsets, again.offsets)
    assert not torch.equal(first.offsets, other.offsets)
    assert 30 < int(first.flip.sum()) < 70 and int(first.offsets.min()) == 0 and int(first.offsets.max()) == 4


def test_loader_augments_training_batches_only_and_keeps_labels() -> None:
    images = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8)
    data = ImageSet(images, torch.arange(64))
    plain = DeviceBatches(data, (0.0,), (1.0,), 16)
    augmented = DeviceBatches(data, (0.0,), (1.0,), 16, augment=AugmentPlan(hflip=True, crop_padding=1))
    changed = 0
    for (x, y), (xa, ya) in zip(plain, augmented):
        assert torch.equal(y, ya) and x.shape == xa.shape
        changed += int((x != xa).flatten(1).any(1).sum())
    assert changed > 40  # most samples moved or flipped
    idle = DeviceBatches(data, (0.0,), (1.0,), 16, augment=AugmentPlan())
    assert idle.augment is None
