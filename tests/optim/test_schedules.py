"""Each schedule against its torch.optim.lr_scheduler counterpart, warm-up, per-iteration stepping, and
an interrupted + resumed run following exactly the schedule of an uninterrupted one."""

from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.config import ScheduleConfig
from cnnlab.optim import lr_factor
from cnnlab.train import read_metrics
from tests.train.test_resume_and_divergence import InterruptAt


def torch_rates(make_scheduler, steps: int, metrics=None) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = make_scheduler(optimizer)
    rates = []
    for i in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step(metrics[i]) if metrics is not None else scheduler.step()
    return rates


def ours(name: str, steps: int, history=(), **options) -> list[float]:
    config = ScheduleConfig(name=name, options=options)
    return [lr_factor(config, epoch, steps, history) for epoch in range(steps)]


S = torch.optim.lr_scheduler


@pytest.mark.parametrize("name,options,reference", [
    ("step", {"step_size": 3, "gamma": 0.5}, lambda o: S.StepLR(o, 3, 0.5)),
    ("multistep", {"milestones": (2, 5, 7), "gamma": 0.3}, lambda o: S.MultiStepLR(o, [2, 5, 7], 0.3)),
    ("exponential", {"gamma": 0.9}, lambda o: S.ExponentialLR(o, 0.9)),
    ("cosine", {"min_factor": 0.0}, lambda o: S.CosineAnnealingLR(o, 12)),
    ("polynomial", {"power": 2.0, "min_factor": 0.0}, lambda o: S.PolynomialLR(o, 12, 2.0)),
    # torch counts one-cycle in steps 0..total-1: epochs 0..12 of a 12-epoch run are its 13 steps
    ("onecycle", {"pct_start": 0.25, "div_factor": 25.0, "final_div_factor": 1e4},
     lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=13, pct_start=0.25, anneal_strategy="cos")),
])
def test_schedules_match_torch(name, options, reference) -> None:
    steps = 13 if name == "onecycle" else 12
    expected = torch_rates(reference, steps)
    got = [lr_factor(ScheduleConfig(name=name, options=options), epoch, 12) for epoch in range(steps)]
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_reduce_on_plateau_matches_torch() -> None:
    losses = [1.0, 0.8, 0.79, 0.85, 0.9, 0.81, 0.7, 0.72, 0.73, 0.74, 0.75, 0.69]
    expected = torch_rates(lambda o: S.ReduceLROnPlateau(o, factor=0.5, patience=2), len(losses), losses)
    history = [{"val_loss": v} for v in losses]
    assert ours("plateau", len(losses), history, factor=0.5, patience=2) == pytest.approx(expected)


def test_linear_warmup_then_schedule() -> None:
    config = ScheduleConfig(name="cosine", warmup_epochs=2, warmup_start=0.1, options={"min_factor": 0.0})
    assert lr_factor(config, 0, 10) == pytest.approx(0.1)
    assert lr_factor(config, 1, 10) == pytest.approx(0.55)
    assert lr_factor(config, 2, 10) == pytest.approx(1.0)  # the cosine starts where the warm-up ends
    assert lr_factor(config, 6, 10) == pytest.approx(0.5)  # half-way through the 8 remaining epochs
    assert lr_factor(config, 10, 10) == pytest.approx(0.0, abs=1e-12)


BASE = ["data=digits", "model=lenet5", "data.train_limit=320", "batch_size=32", "epochs=3", "lr=0.05"]


def test_per_iteration_schedule_and_resume(tmp_path: Path) -> None:
    """A warm-up stepped every iteration, interrupted mid-epoch and resumed: the same rates, losses, weights."""
    args = [*BASE, "schedule=polynomial", "schedule.warmup_epochs=1.5", "schedule.per_iteration=true"]
    reference = cnnlab.train(None, args, runs_dir=tmp_path, name="ref", quiet=True)
    stopped = cnnlab.train(None, args, runs_dir=tmp_path, name="res", quiet=True, callbacks=[InterruptAt(12)])
    resumed = cnnlab.train(resume=stopped.run_dir, quiet=True)
    strip = lambda rows: [{k: v for k, v in r.items() if "second" not in k} for r in rows]  # noqa: E731
    assert strip(read_metrics(resumed.run_dir / "metrics.csv")) == strip(read_metrics(reference.run_dir / "metrics.csv"))
    steps_ref = (reference.run_dir / "steps.csv").read_text()
    assert (resumed.run_dir / "steps.csv").read_text() == steps_ref and len(steps_ref.splitlines()) == 31
    lrs = [row["lr"] for row in read_metrics(reference.run_dir / "metrics.csv")]
    assert lrs[0] == pytest.approx(0.05 * 9 / 10 / 1.5, rel=1e-6)  # last step of epoch 1: 0.9 of the way up


def test_full_batch_gradient_descent(tmp_path: Path) -> None:
    result = cnnlab.train(None, [*BASE, "batch_size=full", "optimizer=sgd", "lr=0.5"], runs_dir=tmp_path, quiet=True)
    assert [row["step"] for row in result.history] == [1, 2, 3]  # one step per epoch


def test_multistep_milestones_as_fractions_of_the_run() -> None:
    from cnnlab.optim.schedules import multistep

    # He et al. 2016: /10 at 50% and 75% of training, whatever the number of epochs
    assert [multistep(e, epochs=8, milestones=(0.5, 0.75)) for e in range(8)] == pytest.approx(
        [1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])
    assert [multistep(e, epochs=8, milestones=(2, 5)) for e in range(8)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01])
