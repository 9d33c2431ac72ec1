"""A fault injector around the real program: `python inject.py FAULT EPOCH cnnlab-args...` patches one
thing, then runs `cnnlab` exactly as the command line does (cnnlab.cli.main).

Faults: nan-data (from EPOCH on, the first training batch of each epoch holds NaN pixels),
nan-weights (at the start of EPOCH a weight of the model becomes NaN), slow-steps (EPOCH is then a number of
milliseconds each step sleeps), slow-test (EPOCH is the milliseconds the final scoring of the test split
sleeps, after it wrote `scoring-test` into the working directory), slow-curves (likewise for drawing the
curves after run.json is final, announced by `drawing-curves`). EPOCH counts from 1. torchrun can run this file as its script."""

import sys

import torch

from cnnlab.cli import main
from cnnlab.data import loader
from cnnlab.runs import lifecycle
from cnnlab.train import trainer


def nan_data(epoch: int) -> None:
    real = loader.DeviceBatches.batches

    def batches(self, at_epoch=0, start=0):
        for index, (images, labels) in enumerate(real(self, at_epoch, start)):
            if self.drop_last and at_epoch + 1 >= epoch and index == 0:
                images = images.clone()
                images[0, 0, 0, 0] = float("nan")
            yield images, labels

    loader.DeviceBatches.batches = batches


def nan_weights(epoch: int) -> None:
    real = trainer.Trainer._run_epoch

    def run_epoch(self, at_epoch):
        if at_epoch + 1 == epoch:
            with torch.no_grad():
                next(self.model.parameters()).view(-1)[0] = float("nan")
        return real(self, at_epoch)

    trainer.Trainer._run_epoch = run_epoch


def slow_steps(milliseconds: int) -> None:
    """Every optimizer step takes at least this long: time for a signal to land mid-epoch."""
    import time

    real = trainer.Trainer._step

    def step(self, images, labels):
        time.sleep(milliseconds / 1000)
        return real(self, images, labels)

    trainer.Trainer._step = step


def announced_pause(module, name: str, marker: str, milliseconds: int) -> None:
    """`module.name` runs after writing the file `marker` into the working directory and sleeping: time for
    a test to send a signal at exactly that moment."""
    import time
    from pathlib import Path

    real = getattr(module, name)

    def paused(*args, **kwargs):
        Path(marker).write_text(str(time.time()))
        time.sleep(milliseconds / 1000)
        return real(*args, **kwargs)

    setattr(module, name, paused)


def slow_test(milliseconds: int) -> None:
    """The test split is scored after a pause: a signal lands after the last epoch, while run.json still
    says 'running'."""
    announced_pause(lifecycle, "_score_test", "scoring-test", milliseconds)


def slow_curves(milliseconds: int) -> None:
    """The curves are drawn after a pause: a signal lands after run.json says 'completed' and before
    plots/curves.png exists."""
    from cnnlab.api import training

    announced_pause(training, "draw_curves", "drawing-curves", milliseconds)


if __name__ == "__main__":
    fault, epoch, *args = sys.argv[1:]
    {"nan-data": nan_data, "nan-weights": nan_weights, "slow-steps": slow_steps, "slow-test": slow_test,
     "slow-curves": slow_curves}[fault](int(epoch))
    sys.exit(main(args))
