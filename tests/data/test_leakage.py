"""Leakage between splits: decoded-pixel hashes (a re-encoded copy is the same image), the exact counts of
images shared across splits, copied within one, and carrying two labels, and data.drop_test_leaks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnlab.api import make_config
from cnnlab.data import FileList, ImageSet
from cnnlab.data.leakage import digest, drop_test_leaks, find_leaks, image_digests
from cnnlab.train.build import make_model, splits_of


def _pixels(seed: int, size: int = 10) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_a_re_encoded_copy_has_the_same_digest_and_a_changed_pixel_does_not(tmp_path: Path) -> None:
    pixels = _pixels(0)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    Image.fromarray(pixels).save(tmp_path / "a_copy.bmp")  # other bytes, other format, same picture
    changed = pixels.copy()
    changed[3, 4, 1] ^= 1
    Image.fromarray(changed).save(tmp_path / "b.png")
    Image.fromarray(pixels.reshape(5, 20, 3)).save(tmp_path / "c.png")  # the same bytes in another shape
    files = FileList(tmp_path, ("a.png", "a_copy.bmp", "b.png", "c.png"), torch.zeros(4, dtype=torch.int64))
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "a_copy.bmp").read_bytes()
    first, copy, other, reshaped = image_digests(files, workers=2)
    assert first == copy and first != other and first != reshaped
    # the digest of an in-memory image is the digest of the same decoded pixels
    in_memory = ImageSet(torch.from_numpy(pixels).permute(2, 0, 1)[None].contiguous(), torch.zeros(1, dtype=torch.int64))
    assert image_digests(in_memory) == [digest(np.ascontiguousarray(pixels.transpose(2, 0, 1)))]


def test_an_unreadable_file_is_counted_and_not_compared(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"not an image")
    Image.fromarray(_pixels(1)).save(tmp_path / "fine.png")
    files = FileList(tmp_path, ("broken.png", "fine.png"), torch.zeros(2, dtype=torch.int64))
    digests = image_digests(files, workers=1)
    assert digests[0] is None and digests[1] is not None
    report = find_leaks({"train": digests, "test": [None]}, {"train": [0, 0], "test": [0]})
    assert report.unreadable == {"train": 1, "test": 1} and not report.found


def test_exact_counts_across_within_and_conflicting_labels() -> None:
    a, b, c, d, e = (bytes([i]) * 16 for i in range(5))
    digests = {"train": [a, b, c, b, e], "val": [d, a], "test": [a, e, e, c]}
    labels = {"train": [0, 1, 2, 2, 0], "val": [1, 0], "test": [0, 0, 0, 1]}
    report = find_leaks(digests, labels)
    assert report.counts() == {
        "val in train": 1,  # val[1] = train[0]
        "test in train": 4,  # test[0] = train[0], test[1] and test[2] = train[4], test[3] = train[2]
        "test in val": 1,  # test[0] = val[1]
        "within train": 1,  # train[3] = train[1]
        "within val": 0,
        "within test": 1,  # test[2] = test[1]
        "label conflicts": 2,  # b: labels 1 and 2 in train; c: 2 in train, 1 in test
    }
    assert report.across["test in train"] == [(0, 0), (1, 4), (2, 4), (3, 2)]
    assert report.within["train"] == [[1, 3]]
    conflicts = sorted(sorted(group) for group in report.conflicts)
    assert conflicts == [[("test", 3, 1), ("train", 2, 2)], [("train", 1, 1), ("train", 3, 2)]]


def test_a_missing_validation_split_is_left_out() -> None:
    report = find_leaks({"train": [b"x"], "val": None, "test": [b"x"]}, {"train": [0], "test": [0]})
    assert report.counts() == {"test in train": 1, "within train": 0, "within test": 0, "label conflicts": 0}


def test_drop_test_leaks_keeps_only_unseen_test_images() -> None:
    images = torch.from_numpy(np.stack([_pixels(i).transpose(2, 0, 1) for i in range(6)]))
    train = ImageSet(images[:3], torch.tensor([0, 1, 2]))
    val = ImageSet(images[3:4], torch.tensor([0]))
    test = ImageSet(images[[0, 4, 3, 5, 2]], torch.tensor([0, 1, 0, 2, 2]))  # 0 and 2 from train, 3 from val
    kept, note = drop_test_leaks(train, val, test)
    assert len(kept) == 2 and torch.equal(kept.images, images[[4, 5]]) and kept.labels.tolist() == [1, 2]
    assert note.startswith("data.drop_test_leaks: dropped 3 of 5 test image(s)")
    same, none = drop_test_leaks(train, None, ImageSet(images[[4, 5]], torch.tensor([1, 2])))
    assert none is None and len(same) == 2


def test_data_drop_test_leaks_shrinks_the_test_split_of_a_folder_dataset(tmp_path: Path) -> None:
    root, seed = tmp_path / "tree", 0
    for split, count in (("train", 4), ("test", 2)):
        for name in ("cat", "dog"):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                seed += 1
                Image.fromarray(_pixels(seed)).save(root / split / name / f"{i}.png")
    Image.open(root / "train" / "dog" / "1.png").save(root / "test" / "dog" / "copy.bmp")
    base = ["data=imagefolder", f"data.root={root}", "data.val_fraction=0", "model=lenet5", "device=cpu"]
    assert len(splits_of(make_config(None, base)).test) == 5
    splits = splits_of(make_config(None, [*base, "data.drop_test_leaks=true"]))
    assert len(splits.test) == 4 and not any("copy" in path for path in splits.test.paths)
    assert splits.spec.sizes["test"] == 4
    assert any("dropped 1 of 5 test image(s)" in note for note in splits.notes)
    assert splits.split_record["test"] and not any("copy" in p for p in splits.split_record["test"])


def test_in_memory_datasets_drop_leaks_and_are_checked_at_every_start(tmp_path: Path) -> None:
    """MNIST IDX files in which test image 0 is training image 5 (same label) and test image 1 is training
    image 7 under another label."""
    from cnnlab.train.checks import cheap_checks
    from cnnlab.train.runtime import Runtime
    from tests.helpers import learnable_images, write_idx

    train_labels = (np.arange(100) % 10).astype(np.uint8)
    test_labels = (np.arange(20) % 10).astype(np.uint8)
    train_images, test_images = learnable_images(train_labels, seed=1), learnable_images(test_labels, seed=2)
    test_images[0], test_labels[0] = train_images[5], train_labels[5]
    test_images[1], test_labels[1] = train_images[7], (train_labels[7] + 1) % 10
    folder = tmp_path / "mnist"
    write_idx(folder / "train-images-idx3-ubyte", train_images)
    write_idx(folder / "train-labels-idx1-ubyte", train_labels)
    write_idx(folder / "t10k-images-idx3-ubyte", test_images)
    write_idx(folder / "t10k-labels-idx1-ubyte", test_labels)
    base = ["data=mnist", f"data.root={tmp_path}", "data.val_fraction=0", "model=lenet5", "device=cpu"]
    config = make_config(None, base)
    splits = splits_of(config)
    runtime = Runtime(torch.device("cpu"), None, False)
    checks = {c.name: c for c in cheap_checks(make_model(config.model, splits.spec, runtime), splits, runtime, config)}
    leakage = checks["leakage"]
    assert leakage.status == "warning" and leakage.details["counts"]["test in train"] == 2
    assert leakage.details["counts"]["label conflicts"] == 1
    assert "test 0 = train 5" in leakage.details["examples"]["test in train"]
    assert "data.drop_test_leaks=true" in leakage.summary
    dropped = splits_of(make_config(None, [*base, "data.drop_test_leaks=true"]))
    assert len(dropped.test) == 18 and torch.equal(dropped.test.images, splits.test.images[2:])
    assert any("dropped 2 of 20" in note for note in dropped.notes)
