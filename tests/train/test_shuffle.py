"""`data.shuffle` in a real run: the batches the trainer trains on, recorded as it takes them. With
`data.shuffle=false` (the EQ2425 report's columns before 5.C) every epoch is the training split in its own
order; with the default each epoch is its own permutation of it."""

from __future__ import annotations

from pathlib import Path

import torch

import cnnlab
from cnnlab.api import make_config
from cnnlab.train import splits_of
from tests.helpers import FAST


class BatchRecorder(cnnlab.Callback):
    """Records the labels of every training batch the trainer takes, per epoch."""

    def __init__(self) -> None:
        self.epochs: list[list[torch.Tensor]] = []

    def on_fit_start(self, trainer) -> None:
        batches = trainer.train_batches.batches

        def recorded(epoch: int = 0, start: int = 0):
            self.epochs.append([])
            for images, labels in batches(epoch, start):
                self.epochs[-1].append(labels.cpu().clone())
                yield images, labels

        trainer.train_batches.batches = recorded


def trained_order(tmp_path: Path, name: str, *overrides: str) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The labels of each epoch's training batches, in the order trained, and the training split's labels."""
    args = [*FAST, "epochs=2", *overrides]
    recorder = BatchRecorder()
    result = cnnlab.train(None, args, runs_dir=tmp_path, name=name, quiet=True, callbacks=[recorder])
    assert result.status == "completed" and len(recorder.epochs) == 2
    split = splits_of(make_config(None, args)).train
    return [torch.cat(epoch) for epoch in recorder.epochs], split.labels.cpu()


def test_shuffle_false_trains_on_the_dataset_in_its_order_every_epoch(tmp_path: Path) -> None:
    epochs, labels = trained_order(tmp_path, "ordered", "data.shuffle=false")
    assert len(labels) == 256 and len(epochs[0]) == 256  # 8 full batches of 32
    assert torch.equal(epochs[0], labels) and torch.equal(epochs[1], labels)


def test_shuffle_true_trains_each_epoch_in_a_new_order(tmp_path: Path) -> None:
    epochs, labels = trained_order(tmp_path, "shuffled")
    assert not torch.equal(epochs[0], labels) and not torch.equal(epochs[0], epochs[1])
    assert all(torch.equal(epoch.sort().values, labels.sort().values) for epoch in epochs)  # the same images
