import math

import pytest
import torch

from cnnlab.data import DeviceBatches, ImageSet
from cnnlab.data.augment import AugmentPlan, Draws, color_jitter, crop, epoch_draws, erase, geometric


def test_crop_matches_a_per_sample_loop() -> None:
    images = torch.randint(0, 256, (6, 3, 5, 5), dtype=torch.uint8)
    offsets = torch.tensor([[0, 0], [4, 4], [2, 2], [0, 4], [3, 1], [1, 3]])
    out = crop(images, 2, offsets, 5)
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for i, (dy, dx) in enumerate(offsets.tolist()):
        assert torch.equal(out[i], padded[i, :, dy : dy + 5, dx : dx + 5])
    assert torch.equal(out[2], images[2])  # offset (p, p) is the identity


def test_random_window_of_a_larger_source() -> None:
    images = torch.randint(0, 256, (4, 1, 10, 10), dtype=torch.uint8)
    plan = AugmentPlan()
    draws = Draws(offset=torch.tensor([[0.0, 0.0], [0.999, 0.999], [0.5, 0.0], [0.0, 0.5]]))
    out = geometric(images, plan, draws, 6)
    assert out.shape == (4, 1, 6, 6) and out.dtype == torch.uint8
    assert torch.equal(out[0], images[0, :, :6, :6]) and torch.equal(out[1], images[1, :, 4:, 4:])
    assert torch.equal(out[2], images[2, :, 2:8, :6])


def test_flip_only_where_drawn() -> None:
    images = torch.arange(2 * 1 * 2 * 2, dtype=torch.uint8).view(2, 1, 2, 2)
    draws = Draws(flip=torch.tensor([True, False]), offset=torch.zeros(2, 2))
    out = geometric(images, AugmentPlan(hflip=True), draws, 2)
    assert torch.equal(out[0], images[0].flip(-1)) and torch.equal(out[1], images[1])


def _affine_draws(count: int, angle: float = 0.0, flip: bool = False) -> Draws:
    return Draws(flip=torch.full((count,), flip), offset=torch.full((count, 2), 0.5), area=torch.ones(count),
                 log_ratio=torch.zeros(count), angle=torch.full((count,), angle))


@pytest.mark.parametrize("angle,flip,expected", [
    (0.0, False, lambda x: x),
    (0.0, True, lambda x: x.flip(3)),
    (math.pi / 2, False, lambda x: torch.rot90(x, 1, dims=(2, 3))),
])
def test_affine_path_is_exact_on_pixel_centres(angle, flip, expected) -> None:
    images = torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8)
    plan = AugmentPlan(hflip=True, rotation=90.0, scale=(0.5, 1.0))
    out = geometric(images, plan, _affine_draws(3, angle, flip), 8)
    assert out.dtype == torch.float32
    target = expected(images.float())
    assert torch.allclose(out, target, atol=1e-3)  # +90 degrees turns the image as torch.rot90(x, 1) does


def test_random_resized_crop_zooms_in() -> None:
    # a quarter of the area, centred: the middle 4x4 of an 8x8 image, upsampled x2
    images = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    images[..., 2:6, 2:6] = 200
    draws = Draws(offset=torch.full((1, 2), 0.5), area=torch.tensor([0.25]), log_ratio=torch.zeros(1))
    out = geometric(images, AugmentPlan(scale=(0.25, 0.25)), draws, 8)
    # bilinear upsampling: all but the outermost ring samples inside the bright square
    assert torch.allclose(out[..., 1:7, 1:7], torch.full((1, 1, 6, 6), 200.0))
    assert 0 < float(out[0, 0, 0, 0]) < 200


def test_color_jitter() -> None:
    images = torch.rand(2, 3, 4, 4) * 255
    assert torch.allclose(color_jitter(images, torch.ones(2, 3)), images, atol=1e-4)
    darker = color_jitter(images, torch.tensor([[0.5, 1.0, 1.0]] * 2))
    assert torch.allclose(darker, images * 0.5, atol=1e-4)
    gray = color_jitter(images, torch.tensor([[1.0, 1.0, 0.0]] * 2))
    assert torch.allclose(gray[:, 0], gray[:, 1], atol=1e-3) and torch.allclose(gray[:, 1], gray[:, 2], atol=1e-3)


def test_random_erasing_zeroes_one_rectangle_per_chosen_sample() -> None:
    images = torch.ones(64, 3, 20, 20)
    generator = torch.Generator().manual_seed(0)
    draws = torch.rand(64, 5, generator=generator)
    out = erase(images, 1.0, draws)
    zeros = (out[:, 0] == 0).flatten(1).sum(1).float() / 400
    assert bool((zeros > 0).all()) and float(zeros.max()) <= 0.4
    assert torch.equal(out[:, 0] == 0, out[:, 2] == 0)  # the same box in every channel
    rows_hit = (out[:, 0] == 0).any(2)
    spans = rows_hit.float().sum(1)
    first = rows_hit.float().argmax(1)
    assert all(bool(rows_hit[i, first[i] : first[i] + int(spans[i])].all()) for i in range(64))  # contiguous
    assert torch.equal(erase(images, 0.0, draws), images)


def test_draws_are_a_pure_function_of_seed_and_epoch() -> None:
    plan = AugmentPlan(hflip=True, crop_padding=2, rotation=10, scale=(0.5, 1.0), color_jitter=0.2, erasing=0.5)
    cpu = torch.device("cpu")
    first, again, other = (epoch_draws(plan, 100, 3, e, cpu) for e in (1, 1, 2))
    for name in ("flip", "offset", "area", "log_ratio", "angle", "jitter", "erase"):
        assert torch.equal(getattr(first, name), getattr(again, name)), name
    assert not torch.equal(first.offset, other.offset)
    assert float(first.angle.abs().max()) <= math.radians(10) and 0.5 <= float(first.area.min())


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
    assert DeviceBatches(data, (0.0,), (1.0,), 16, augment=AugmentPlan()).augment is None


def test_larger_images_are_centre_cropped_for_evaluation() -> None:
    images = torch.arange(2 * 10 * 10, dtype=torch.uint8).view(2, 1, 10, 10)
    batches = DeviceBatches(ImageSet(images, torch.arange(2)), (0.0,), (1.0 / 255,), 2, size=6)
    x, _ = next(iter(batches))
    assert torch.equal(x, images[:, :, 2:8, 2:8].float())


def test_erasing_probability_is_respected() -> None:
    draws = epoch_draws(AugmentPlan(erasing=0.5), 4000, 0, 0, torch.device("cpu")).erase
    out = erase(torch.ones(4000, 1, 8, 8), 0.5, draws)
    share = float((out == 0).flatten(1).any(1).float().mean())
    assert 0.47 < share < 0.53
