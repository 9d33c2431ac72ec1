"""A fault injector around the real program: `python inject.py FAULT N cnnlab-args...` patches one
thing, then runs `cnnlab` exactly as the command line does (cnnlab.cli.main). torchrun can run this file as
its script.

Faults, with what N means:
- nan-data: from epoch N on (counting from 1), the first training batch of each epoch holds NaN pixels;
- nan-weights: at the start of epoch N a weight of the model becomes NaN;
- hold-step: the N-th optimizer step waits, after writing `holding-step`, until the process is signalled;
- late-rank: under torchrun, rank N sleeps (`late-rank`) before cnnlab starts while the others wait for it
  where the ranks meet (`meeting`);
- slow-test, slow-curves, slow-plots, slow-setup: the final scoring of the test split (`scoring-test`), the
  drawing of a run's curves after run.json is final (`drawing-curves`), a search's plots (`drawing-plots`),
  a study's data check (`checking-data`) wait, after writing that marker file into the working directory,
  until the process is signalled or N milliseconds have passed.
"""

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


def hold(marker: str, milliseconds: int) -> None:
    """Write the file `marker` into the working directory, then wait until the process has taken a signal
    (cnnlab's stop request is set), or `milliseconds` at most: a test's signal lands at exactly this moment
    however slow the machine is (fixed sleeps raced against a loaded CI machine: a pause could end, or an
    epoch could end, before the test got round to signalling)."""
    import time
    from pathlib import Path

    from cnnlab.train.interrupts import STOP

    Path(marker).write_text(str(time.time()))
    deadline = time.monotonic() + milliseconds / 1000
    while STOP.signal is None and time.monotonic() < deadline:
        time.sleep(0.02)


def hold_step(number: int) -> None:
    """The NUMBER-th optimizer step of this process (of each rank under torchrun) is held, announced by
    `holding-step`, until a signal lands (or 60 s pass; a SIGKILL simply ends it there): a signal mid-epoch
    at a known step on any machine."""
    import itertools

    real = trainer.Trainer._step
    count = itertools.count(1)

    def step(self, images, labels):
        if next(count) == number:
            hold("holding-step", 60_000)
        return real(self, images, labels)

    trainer.Trainer._step = step


def announced_pause(module, name: str, marker: str, milliseconds: int) -> None:
    """`module.name` runs after `hold(marker, milliseconds)`."""
    real = getattr(module, name)

    def paused(*args, **kwargs):
        hold(marker, milliseconds)
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


def slow_setup(milliseconds: int) -> None:
    """A study's data check (before its first run) waits, announced by `checking-data`."""
    from cnnlab.experiments import runner

    announced_pause(runner, "check_data", "checking-data", milliseconds)


def slow_plots(milliseconds: int) -> None:
    """A search's plots are drawn after a pause (announced by `drawing-plots`): a signal lands after its last
    trial."""
    from cnnlab.viz import search

    announced_pause(search, "plot_search", "drawing-plots", milliseconds)


def late_rank(rank: int) -> None:
    """Under torchrun: rank RANK sleeps before cnnlab starts (no handler of its own yet, as while Python and
    torch load), announced by `late-rank`; the other ranks announce `meeting` as they go into
    torch.distributed's meeting of the ranks, where they wait for it."""
    import os
    import time
    from pathlib import Path

    import torch.distributed as dist

    if int(os.environ.get("RANK", "0")) == rank:
        Path("late-rank").write_text(str(time.time()))
        time.sleep(120)
        return
    real = dist.init_process_group

    def meeting(*args, **kwargs):
        Path("meeting").write_text(str(time.time()))
        return real(*args, **kwargs)

    dist.init_process_group = meeting


if __name__ == "__main__":
    fault, epoch, *args = sys.argv[1:]
    {"nan-data": nan_data, "nan-weights": nan_weights, "hold-step": hold_step, "late-rank": late_rank, "slow-test": slow_test,
     "slow-curves": slow_curves, "slow-plots": slow_plots,
     "slow-setup": slow_setup}[fault](int(epoch))
    sys.exit(main(args))
