"""Keys that cannot act on a run's data are said, with the reason, before it trains (issue 33, item 6; the
whole config against every kind of data is tests/test_keys.py): the pure rules on hand-made cases, and the
case found, `data.test_per_class=100` on Fashion-MNIST, through the real program."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cnnlab  # noqa: F401  (the registries)
from cnnlab.config import AugmentConfig, DataConfig, RunConfig
from cnnlab.data.splits import class_selection
from cnnlab.data.unused import check_coarse_labels, unused_data_keys
from cnnlab.errors import ConfigError
from cnnlab.train.recipe import unused_augment_keys
from tests.helpers import write_mnist_like


def test_a_test_split_of_its_own_makes_the_carving_keys_inert() -> None:
    config = DataConfig(name="fashion-mnist", test_per_class=100, test_fraction=0.3)
    notes = unused_data_keys(config, own_test=10_000, files=False, train_size=54_000)
    assert [n.split(" has")[0] for n in notes] == ["data.test_fraction=0.3", "data.test_per_class=100"]
    assert "fashion-mnist has a test split of its own (10,000 images)" in notes[1]
    assert unused_data_keys(config, own_test=None, files=True, train_size=100) == []  # carved: both act


def test_file_keys_in_memory_and_memory_keys_on_files() -> None:
    memory = DataConfig(name="digits", cache="disk", cache_size=64, workers=2, skip_bad=True, max_pixels=1000)
    notes = unused_data_keys(memory, own_test=359, files=False, train_size=1295)
    assert [n.split("=")[0] for n in notes] == [f"data.{k}" for k in ("cache", "cache_size", "workers", "skip_bad",
                                                                       "max_pixels")]
    assert all("digits is held in memory" in n for n in notes)
    files = DataConfig(name="imagefolder", resize="pad", cache_size=64)
    notes = unused_data_keys(files, own_test=None, files=True, train_size=30)
    assert [n.split("=")[0] for n in notes] == ["data.resize", "data.cache_size"]
    assert unused_data_keys(DataConfig(name="imagefolder", cache="disk", cache_size=64), own_test=None, files=True,
                            train_size=30) == []


def test_a_train_limit_above_the_training_split_is_said() -> None:
    (note,) = unused_data_keys(DataConfig(train_limit=40), own_test=None, files=True, train_size=30)
    assert note.startswith("data.train_limit=40 keeps all 30 training images")
    assert unused_data_keys(DataConfig(train_limit=30), own_test=None, files=True, train_size=30) == []


def test_coarse_labels_and_unknown_exclusions_are_refused() -> None:
    with pytest.raises(ConfigError, match="data.coarse_labels=true applies to cifar100"):
        check_coarse_labels(DataConfig(name="cifar10", coarse_labels=True))
    check_coarse_labels(DataConfig(name="cifar100", coarse_labels=True))
    classes = ("cat", "dog", "bird")
    assert class_selection(classes, None, ("dog",)) == [0, 2]
    assert class_selection(classes, None, ("1",)) == [0, 2]  # an index, as data.classes takes
    with pytest.raises(ConfigError, match="data.exclude_classes: no class 'dgo'; did you mean 'dog'"):
        class_selection(classes, None, ("dgo",))
    assert class_selection(classes, None, ("BACKGROUND_Google",), ("BACKGROUND_Google",)) == [0, 1, 2]


def test_augment_keys_without_what_they_act_on_are_said() -> None:
    config = RunConfig(augment=AugmentConfig(mix_prob=0.5, mix_switch_prob=0.3, pca_lighting_scale="eigenvalue"))
    notes = unused_augment_keys(config)
    assert [n.split("=")[0] for n in notes] == ["augment.mix_prob", "augment.mix_switch_prob",
                                               "augment.pca_lighting_scale"]
    mixing = RunConfig(augment=AugmentConfig(mixup_alpha=0.2, cutmix_alpha=1.0, mix_prob=0.5, mix_switch_prob=0.3))
    assert unused_augment_keys(mixing) == []
    folder = cnnlab.make_config(None, ["data=imagefolder", "augment.crop_padding=4"])
    (note,) = unused_augment_keys(folder)
    assert note.startswith("augment.crop_padding=4 has no effect: imagefolder's files are cropped at random sizes")
    assert unused_augment_keys(cnnlab.make_config(None, ["data=imagefolder", "augment.crop_padding=4",
                                                         "augment.scale=[1, 1]"])) == []


def test_the_keys_of_a_distributed_run_are_said_in_a_run_of_one_process() -> None:
    from cnnlab.train.recipe import unused_distributed_keys

    config = cnnlab.make_config(None, ["model.sync_bn=true", "optim.lr_scaling=linear"])
    notes = unused_distributed_keys(config, 1)
    assert [n.split("=")[0] for n in notes] == ["model.sync_bn", "optim.lr_scaling"]
    assert unused_distributed_keys(config, 2) == []


@pytest.mark.slow
def test_test_per_class_on_fashion_mnist_is_said_at_the_start_of_the_run(tmp_path: Path) -> None:
    root = write_mnist_like(tmp_path / "fmnist", train=100, test=30)
    done = subprocess.run([sys.executable, "-m", "cnnlab", "train", "data=fashion-mnist", f"data.root={root}",
                           "data.test_per_class=100", "model=lenet5", "epochs=1", "batch_size=16", "--name", "t"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("data: fashion-mnist from") and lines[1].startswith(
        "note: data.test_per_class=100 has no effect: fashion-mnist has a test split of its own (30 images)")
