import numpy as np
import pytest
import torch

from cnnlab.config import DataConfig
from cnnlab.data import (
    DeviceBatches,
    ImageSet,
    choose_image_size,
    epoch_permutation,
    load_raw,
    prepare,
)
from cnnlab.data.prepare import channel_stats, convert_channels, fit_size


def test_pad_28_to_32_centres_the_image() -> None:
    images = torch.randint(1, 255, (3, 1, 28, 28), dtype=torch.uint8)
    padded = fit_size(images, 32)
    assert padded.shape == (3, 1, 32, 32)
    assert torch.equal(padded[:, :, 2:30, 2:30], images)
    assert int(padded[:, :, :2].sum()) == 0 and int(padded[:, :, :, 30:].sum()) == 0


def test_resize_8_to_32_keeps_a_constant_image_constant() -> None:
    images = torch.full((2, 1, 8, 8), 77, dtype=torch.uint8)
    resized = fit_size(images, 32)
    assert resized.shape == (2, 1, 32, 32) and bool((resized == 77).all())


def test_channel_conversion() -> None:
    gray = torch.randint(0, 256, (2, 1, 4, 4), dtype=torch.uint8)
    rgb = convert_channels(gray, 3)
    assert torch.equal(rgb[:, 0], gray[:, 0]) and torch.equal(rgb[:, 2], gray[:, 0])
    assert torch.equal(convert_channels(rgb, 1), gray)  # luma weights sum to 1


def test_channel_stats_match_numpy() -> None:
    images = torch.randint(0, 256, (50, 3, 5, 7), dtype=torch.uint8)
    mean, std = channel_stats(images)
    array = images.numpy().astype(np.float64) / 255
    assert np.allclose(mean, array.mean(axis=(0, 2, 3)), atol=1e-6)
    assert np.allclose(std, array.std(axis=(0, 2, 3)), atol=1e-6)


def test_choose_image_size() -> None:
    assert choose_image_size(28, None, lambda s: s >= 24, 32) == 32  # a small gap: padded to the model's size
    assert choose_image_size(28, None, lambda s: s >= 24, 224) == 28  # a large gap: native, since it fits
    assert choose_image_size(64, None, lambda s: s >= 24, 32) == 64  # larger than the model's: native
    assert choose_image_size(8, None, lambda s: s >= 24, 32) == 32  # too small: the model's size
    assert choose_image_size(8, None, lambda s: s >= 24, 227) == 32  # or the smallest standard size it takes
    assert choose_image_size(8, None, lambda s: s >= 100, 227) == 128
    assert choose_image_size(8, 48, lambda s: True, 32) == 48  # asked for


def test_prepare_digits_for_a_32px_model() -> None:
    config = DataConfig(name="digits", normalize="centered", val_fraction=0.1)
    splits = prepare(config, load_raw(config), 32)
    assert splits.train.images.shape[1:] == (1, 32, 32)
    assert splits.spec.sizes == {"train": len(splits.train), "val": len(splits.val), "test": 359}
    assert splits.spec.mean == (0.5,) and splits.spec.std == (1.0,)
    assert len(splits.train) + len(splits.val) == 1797 - 359


def _toy(n: int = 10) -> ImageSet:
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return ImageSet(images, torch.arange(n))


def test_epoch_covers_every_sample_once_and_is_reproducible() -> None:
    batches = DeviceBatches(_toy(10), (0.0,), (1.0,), 3, shuffle=True, drop_last=False, seed=5)
    seen = torch.cat([labels for _, labels in batches.batches(epoch=2)])
    assert sorted(seen.tolist()) == list(range(10))
    again = torch.cat([labels for _, labels in batches.batches(epoch=2)])
    other = torch.cat([labels for _, labels in batches.batches(epoch=3)])
    assert torch.equal(seen, again) and not torch.equal(seen, other)
    assert torch.equal(seen, epoch_permutation(10, 5, 2))


def test_drop_last_and_resume_position() -> None:
    batches = DeviceBatches(_toy(10), (0.0,), (1.0,), 3, shuffle=True, drop_last=True, seed=1)
    full = [labels for _, labels in batches.batches(epoch=0)]
    assert len(batches) == 3 and all(len(b) == 3 for b in full)
    tail = [labels for _, labels in batches.batches(epoch=0, start=2)]
    assert len(tail) == 1 and torch.equal(tail[0], full[2])


def test_no_shuffle_keeps_source_order() -> None:
    batches = DeviceBatches(_toy(7), (0.0,), (1.0,), 4, shuffle=False)
    assert torch.cat([labels for _, labels in batches]).tolist() == list(range(7))


@pytest.mark.parametrize("mean,std,low,high", [((0.5,), (1.0,), -0.5, 0.5), ((0.0,), (1.0,), 0.0, 1.0)])
def test_normalisation_on_the_batch(mean, std, low, high) -> None:
    images = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1)
    batches = DeviceBatches(ImageSet(images, torch.tensor([0, 1])), mean, std, 2)
    x, _ = next(iter(batches))
    assert x.dtype == torch.float32
    assert torch.allclose(x.flatten(), torch.tensor([low, high]))
