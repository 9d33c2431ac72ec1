"""Class subsets and per-class sizes on the in-memory datasets (used by transfer learning)."""

import pytest
import torch

from cnnlab.config import load_config
from cnnlab.errors import ConfigError
from cnnlab.train import splits_of


def test_class_subset_is_renumbered_and_per_class_sizes_hold() -> None:
    config = load_config(None, ["data=digits", "data.classes=[5,6,7,8,9]", "data.train_per_class=20",
                                "data.val_per_class=5"])
    splits = splits_of(config)
    assert splits.spec.classes == ("5", "6", "7", "8", "9")
    assert splits.train.labels.bincount().tolist() == [20] * 5
    assert splits.val.labels.bincount().tolist() == [5] * 5
    full_test = splits_of(load_config(None, ["data=digits"])).test.labels
    assert int(splits.test.labels.max()) == 4 and len(splits.test) == int((full_test >= 5).sum())


def test_classes_by_name_and_exclusion() -> None:
    splits = splits_of(load_config(None, ["data=digits", "data.exclude_classes=['0','1']"]))
    assert splits.spec.classes == tuple(str(d) for d in range(2, 10))
    with pytest.raises(ConfigError, match="data.classes: no class 'eleven'"):
        splits_of(load_config(None, ["data=digits", "data.classes=[eleven]"]))


def test_carved_splits_are_disjoint_and_cover_the_source() -> None:
    """Each image carries its own index in its pixels, so overlaps would show."""
    from cnnlab.config import DataConfig
    from cnnlab.data import ImageSet, Source
    from cnnlab.data.prepare import split_source

    count = 500
    index = torch.arange(count)
    images = torch.stack([index // 256, index % 256], dim=1).to(torch.uint8).view(count, 2, 1, 1)
    source = Source(ImageSet(images, index % 7), None, tuple("abcdefg"), "synthetic")
    train, val, test = split_source(source, DataConfig(name="digits", val_fraction=0.2, test_fraction=0.3))
    ids = [set((s.images[:, 0, 0, 0].long() * 256 + s.images[:, 1, 0, 0].long()).tolist()) for s in (train, val, test)]
    assert not ids[0] & ids[1] and not ids[0] & ids[2] and not ids[1] & ids[2]
    assert len(ids[0] | ids[1] | ids[2]) == count and abs(len(ids[2]) - 150) <= 7
