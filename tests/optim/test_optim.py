import pytest
import torch

from cnnlab.config import OptimConfig, ScheduleConfig
from cnnlab.optim import (
    OPTIMIZERS,
    SCHEDULES,
    apply_schedule,
    build_optimizer,
    lr_factor,
)
from cnnlab.train.checkpoint import (
    load_checkpoint,
    optimizer_from_flat,
    optimizer_to_flat,
    save_checkpoint,
)


def rosenbrock(p: torch.Tensor) -> torch.Tensor:
    x, y = p[0, 0], p[0, 1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def config(name: str, lr: float | None = None) -> OptimConfig:
    info = OPTIMIZERS.get(name)
    return OptimConfig(name=name, lr=lr or info.default_lr, options={k: v.default for k, v in info.options.items()})


# learning rates at which each rule descends Rosenbrock's valley from (-1.5, 2) without blowing up
# (momentum rules take lr / (1 - mu) effective steps, hence a tenth of plain SGD's rate)
ROSENBROCK_LR = {"sgd": 8e-4, "momentum": 8e-5, "nesterov": 8e-5, "adam": 1e-2, "adagrad": 0.5, "adadelta": 1.0,
                 "rmsprop": 1e-2, "adamax": 2e-2, "nadam": 1e-2, "adamw": 1e-2, "radam": 1e-2, "qhadam": 1e-2,
                 "aggmo": 2e-4, "lars": 2.0, "lamb": 2e-2}


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_rosenbrock_descent(name: str) -> None:
    point = torch.nn.Parameter(torch.tensor([[-1.5, 2.0]]))  # a 1x2 "layer", so LARS/LAMB adapt it
    optimizer = build_optimizer(config(name, ROSENBROCK_LR[name]), [point])
    start = float(rosenbrock(point.detach()))
    for _ in range(2000):
        optimizer.zero_grad()
        rosenbrock(point).backward()
        optimizer.step()
    assert float(rosenbrock(point.detach())) < 0.1 * start
    assert torch.dist(point.detach(), torch.ones(1, 2)) < torch.dist(torch.tensor([[-1.5, 2.0]]), torch.ones(1, 2))


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_state_dict_round_trip_continues_identically(name: str, tmp_path) -> None:
    """Through a real checkpoint file (safetensors + JSON header), as a resumed run does."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    data = torch.randn(8, 4)

    def step(opt, m):
        opt.zero_grad()
        m(data).square().mean().backward()
        opt.step()

    optimizer = build_optimizer(config(name), model.parameters())
    for _ in range(3):
        step(optimizer, model)
    clone = torch.nn.Linear(4, 3)
    clone.load_state_dict(model.state_dict())
    restored = build_optimizer(config(name), clone.parameters())
    tensors, meta = optimizer_to_flat(optimizer)
    save_checkpoint(tmp_path / "opt.safetensors", tensors, {"optimizer": meta})
    tensors, meta = load_checkpoint(tmp_path / "opt.safetensors")
    restored.load_state_dict(optimizer_from_flat(tensors, meta["optimizer"]))
    for _ in range(3):
        step(optimizer, model)
        step(restored, clone)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), clone.parameters()))


def test_step_schedule_is_torch_steplr() -> None:
    schedule = ScheduleConfig(name="step", options={"step_size": 3, "gamma": 0.5})
    param = torch.nn.Parameter(torch.zeros(1))
    ours = build_optimizer(config("sgd", 0.8), [param])
    theirs = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.8)
    reference = torch.optim.lr_scheduler.StepLR(theirs, step_size=3, gamma=0.5)
    for epoch in range(10):
        apply_schedule(ours, lr_factor(schedule, epoch, 10))
        assert ours.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"])
        theirs.step()
        reference.step()


def test_every_schedule_but_onecycle_starts_at_the_base_rate() -> None:
    for name in SCHEDULES.names():
        info = SCHEDULES.get(name)
        options = {k: v.default for k, v in info.options.items()}
        start = info.factor(0, epochs=10, **options)
        assert start == pytest.approx(1 / 25 if name == "onecycle" else 1.0), name
