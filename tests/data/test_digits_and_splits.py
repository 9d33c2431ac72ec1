import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.config import DataConfig
from cnnlab.data import load_raw, stratified_split


def test_digits_fixed_test_split() -> None:
    first = load_raw(DataConfig(name="digits"))
    second = load_raw(DataConfig(name="digits"))
    assert len(first.train) + len(first.test) == 1797
    assert len(first.test) == 359  # 20% of each class, rounded
    assert torch.equal(first.test.images, second.test.images)
    assert first.train.images.dtype == torch.uint8 and int(first.train.images.max()) == 255


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=8),
    fraction=st.floats(min_value=0.0, max_value=0.9),
    seed=st.integers(min_value=0, max_value=2**31),
)
def test_stratified_split_partitions_each_class(counts: list[int], fraction: float, seed: int) -> None:
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]
    keep, held = stratified_split(labels, fraction, seed)
    assert sorted(keep.tolist() + held.tolist()) == list(range(len(labels)))
    for cls, n in enumerate(counts):
        in_held = int((labels[held] == cls).sum())
        expected = round(fraction * n)
        if fraction > 0 and expected == 0 and n > 1:
            expected = 1
        assert in_held == expected
    again_keep, again_held = stratified_split(labels, fraction, seed)
    assert torch.equal(held, again_held) and torch.equal(keep, again_keep)
