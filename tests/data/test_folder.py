"""Folder datasets on real JPEG/PNG trees written by the tests: discovery, splits, bad files, caches, and
training through the streaming path at AlexNet's input size."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.config import load_config
from cnnlab.data import FileList, ImageSet, load_raw
from cnnlab.data.folder import scan_tree
from cnnlab.errors import ConfigError, DataError
from cnnlab.train import splits_of
from tests.helpers import write_caltech, write_jpeg_tree


def caltech_config(root: Path, *extra: str):
    return load_config(None, ["data=caltech101", f"data.root={root}", "model=lenet5", "data.workers=0", *extra])


def test_scan_tree_ignores_hidden_non_image_and_empty(tmp_path: Path) -> None:
    write_jpeg_tree(tmp_path, {"cat": 3, "dog": 2})
    (tmp_path / "cat" / ".DS_Store").write_bytes(b"\x00")
    (tmp_path / "cat" / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "README").write_text("x")
    tree, notes = scan_tree(tmp_path)
    assert sorted(tree) == ["cat", "dog"] and len(tree["cat"]) == 3
    text = " | ".join(notes)
    assert "ignored 2 hidden file(s)" in text
    assert "notes.txt" in text and "empty" in text and "README" in text


def test_class_folder_links_back_into_the_tree_are_ignored_with_a_note(tmp_path: Path) -> None:
    """`loop -> .` (and `../tree`) would be a class holding every other class's images, `twin -> dogs` the
    same images under a second label: each is left out and named in one note; a link within a class stays."""
    root = write_jpeg_tree(tmp_path / "tree", {"cats": 3, "dogs": 2})
    (root / "loop").symlink_to(".")
    (root / "again").symlink_to("../tree")
    (root / "twin").symlink_to("dogs")
    (root / "cats" / "up").symlink_to("..")
    (root / "cats" / "same.jpg").symlink_to("image_0001.jpg")
    tree, notes = scan_tree(root)
    assert sorted(tree) == ["cats", "dogs"] and len(tree["cats"]) == 4 and len(tree["dogs"]) == 2
    loops = [note for note in notes if "leading back to the tree" in note]
    assert len(loops) == 1 and "ignored 3 class folder link(s)" in loops[0]
    assert f"loop -> {root.resolve()}" in loops[0] and f"twin -> {(root / 'dogs').resolve()}" in loops[0]


def test_caltech_excludes_background_by_default(tmp_path: Path) -> None:
    write_caltech(tmp_path, classes=3, per_class=10)
    config = caltech_config(tmp_path)
    assert config.data.exclude_classes == ("BACKGROUND_Google",)
    splits = splits_of(config)
    assert splits.spec.classes == ("class_00", "class_01", "class_02")
    assert splits.spec.sizes == {"train": 21, "val": 3, "test": 6}  # 20% test, then 10% val, per class
    kept = splits_of(caltech_config(tmp_path, "data.exclude_classes=[]"))
    assert "BACKGROUND_Google" in kept.spec.classes and kept.spec.num_classes == 4


def test_per_class_split_sizes_and_determinism(tmp_path: Path) -> None:
    write_caltech(tmp_path, classes=3, per_class=10)
    config = caltech_config(tmp_path, "data.train_per_class=5", "data.test_per_class=3", "data.val_per_class=1")
    first, second = splits_of(config), splits_of(config)
    assert first.spec.sizes == {"train": 15, "val": 3, "test": 9}
    assert first.split_record == second.split_record
    train, test = set(first.split_record["train"]), set(first.split_record["test"])
    assert not train & test and not train & set(first.split_record["val"])
    other = splits_of(caltech_config(tmp_path, "data.test_per_class=3", "data.split_seed=1"))
    assert other.split_record["test"] != first.split_record["test"]


def test_split_file_is_written_and_reused(tmp_path: Path) -> None:
    write_caltech(tmp_path / "data", classes=3, per_class=8)
    result = cnnlab.train(None, ["data=caltech101", f"data.root={tmp_path / 'data'}", "model=lenet5", "epochs=1",
                                 "batch_size=4", "data.workers=0"], runs_dir=tmp_path / "runs", name="a", quiet=True)
    record = json.loads((result.run_dir / "split.json").read_text())
    reused = splits_of(caltech_config(tmp_path / "data", f"data.split_file={result.run_dir / 'split.json'}",
                                        "data.split_seed=99"))
    assert reused.split_record["test"] == record["test"] and reused.split_record["train"] == record["train"]
    report = cnnlab.evaluate(result.run_dir)
    assert report["count"] == len(record["test"]) and report["acc"] == pytest.approx(result.test["acc"])


def test_imagefolder_with_train_val_test_folders(tmp_path: Path) -> None:
    for split, count in (("train", 6), ("val", 2), ("test", 3)):
        write_jpeg_tree(tmp_path / split, {"a": count, "b": count}, seed=len(split))
    config = load_config(None, ["data=imagefolder", f"data.root={tmp_path}", "model=lenet5", "data.workers=0"])
    splits = splits_of(config)
    assert splits.spec.sizes == {"train": 12, "val": 4, "test": 6} and splits.spec.classes == ("a", "b")
    with pytest.raises(ConfigError, match="data=imagefolder needs the tree's location"):
        load_raw(load_config(None, ["data=imagefolder"]).data)


def test_a_corrupt_file_stops_before_the_first_step(tmp_path: Path) -> None:
    write_caltech(tmp_path / "data", classes=2, per_class=6)
    bad = tmp_path / "data/caltech101/101_ObjectCategories/class_01/image_0003.jpg"
    bad.write_bytes(bad.read_bytes()[:200])
    args = ["data=caltech101", f"data.root={tmp_path / 'data'}", "model=lenet5", "epochs=1", "batch_size=4",
            "data.workers=0"]
    with pytest.raises(DataError, match=r"1 of 12 images cannot be used:\n  .*class_01/image_0003.jpg: truncated"):
        cnnlab.train(None, args, runs_dir=tmp_path / "runs", name="strict", quiet=True)
    result = cnnlab.train(None, [*args, "data.skip_bad=true"], runs_dir=tmp_path / "runs", name="lenient", quiet=True)
    info = cnnlab.load_run(result.run_dir).info
    assert result.status == "completed" and list(info["skipped_files"]) == [str(bad)]
    assert "truncated" in info["skipped_files"][str(bad)]
    assert sum(info["data"]["sizes"].values()) == 11


@pytest.mark.slow
@pytest.mark.parametrize("cache", ["none", "disk", "device"])
def test_alexnet_sized_input_trains_through_every_loader(tmp_path: Path, cache: str) -> None:
    """The acceptance case: a Caltech-101-shaped folder of JPEGs at 224x224, streamed by two worker
    processes into AlexNet (or read from the decoded cache), trains and is evaluated."""
    write_caltech(tmp_path / "data", classes=3, per_class=8)
    model = "alexnet" if cache == "none" else "lenet5"  # the real AlexNet once; the loaders are the point
    args = ["data=caltech101", f"data.root={tmp_path / 'data'}", f"model={model}", "data.image_size=224",
            "epochs=2", "batch_size=4", "lr=0.002", "data.workers=2", f"data.cache={cache}", "augment.color_jitter=0.2",
            "augment.erasing=0.25", "augment.rotation=10"]
    result = cnnlab.train(None, args, runs_dir=tmp_path / "runs", name=cache, quiet=True)
    assert result.status == "completed" and len(result.history) == 2 and result.test["count"] == 6
    spec = cnnlab.load_run(result.run_dir).spec
    assert spec.image_size == 224 and spec.eval_resize == 256
    splits = splits_of(caltech_config(tmp_path / "data", "data.image_size=224", f"data.cache={cache}"))
    kind = ImageSet if cache == "device" else FileList
    assert isinstance(splits.train, kind)
    if cache == "device":
        assert splits.train.images.shape[1:] == (3, 256, 256)


def test_cache_is_built_once_and_rebuilt_when_a_file_changes(tmp_path: Path, isolated_data_roots: Path) -> None:
    root = write_caltech(tmp_path / "data", classes=2, per_class=4)
    config = caltech_config(tmp_path / "data", "data.cache=disk", "data.image_size=32")
    splits_of(config)
    caches = sorted((isolated_data_roots / "cnnlab" / "decoded").glob("*.npy"))
    assert len(caches) == 1
    stamp = caches[0].stat().st_mtime_ns
    splits_of(config)
    assert caches[0].stat().st_mtime_ns == stamp  # reused, not rebuilt
    target = root / "class_00" / "image_0001.jpg"
    Image.new("RGB", (40, 30), (255, 0, 0)).save(target)
    splits = splits_of(config)
    assert len(list((isolated_data_roots / "cnnlab" / "decoded").glob("*.npy"))) == 2
    row = splits.cache.rows[str(target)]
    red = torch.from_numpy(splits.cache.array[row].copy())
    assert int(red[0].float().mean()) > 240 and int(red[1].float().mean()) < 15


def test_streamed_run_interrupted_and_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    """Worker-side crops and device-side draws are functions of (seed, epoch, index/batch): a resumed run
    over image files, with two worker processes, reproduces the uninterrupted one bit for bit."""
    from cnnlab.train import read_metrics
    from tests.train.test_resume_and_divergence import InterruptAt, untimed, weights

    write_caltech(tmp_path / "data", classes=3, per_class=10)
    args = ["data=caltech101", f"data.root={tmp_path / 'data'}", "model=lenet5", "data.image_size=32", "epochs=2",
            "batch_size=4", "data.workers=2", "augment.color_jitter=0.3", "augment.erasing=0.5", "augment.rotation=15"]
    reference = cnnlab.train(None, args, runs_dir=tmp_path / "runs", name="ref", quiet=True)
    stopped = cnnlab.train(None, args, runs_dir=tmp_path / "runs", name="res", quiet=True, callbacks=[InterruptAt(7)])
    assert stopped.status == "interrupted"
    resumed = cnnlab.train(resume=stopped.run_dir, quiet=True)
    ours, theirs = weights(resumed.run_dir), weights(reference.run_dir)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert untimed(read_metrics(resumed.run_dir / "metrics.csv")) == untimed(read_metrics(reference.run_dir / "metrics.csv"))


def test_skip_bad_flag_on_the_command_line(tmp_path: Path, capsys) -> None:
    from cnnlab.cli import main

    write_caltech(tmp_path / "data", classes=2, per_class=5)
    bad = tmp_path / "data/caltech101/101_ObjectCategories/class_00/image_0002.jpg"
    bad.write_bytes(b"")
    args = ["train", "data=caltech101", f"data.root={tmp_path / 'data'}", "model=lenet5", "epochs=1",
            "batch_size=2", "data.workers=0", "--runs-dir", str(tmp_path / "runs"), "--quiet"]
    assert main([*args, "--name", "strict"]) == 2
    assert f"{bad}: zero-byte" in capsys.readouterr().err
    assert main([*args, "--name", "lenient", "--skip-bad"]) == 0
