"""Each optimizer name is wired to the rule it claims (optim/torch_optimizers.py): two steps computed by hand for
the rules whose names are easiest to mix up (momentum or Nesterov, L2 in Adam or decoupled decay in AdamW), and
every torch-backed name, with non-default settings, stepping exactly as torch's own class with those settings.
A Rosenbrock descent cannot tell these apart: every one of them descends."""

from __future__ import annotations

import math

import pytest
import torch

from cnnlab.config import OptimConfig
from cnnlab.optim import OPTIMIZERS, build_optimizer

START = [1.0, -2.0]
SCALE = [3.0, 0.5]  # loss = sum(SCALE * p^2) / 2 + p[0]: gradient SCALE * p + (1, 0)


def gradient(p: list[float]) -> list[float]:
    return [SCALE[0] * p[0] + 1.0, SCALE[1] * p[1]]


def flat(path: list[list[float]]) -> list[float]:
    return [x for position in path for x in position]


def steps(name: str, lr: float, weight_decay: float, count: int = 2, **options) -> list[float]:
    """The positions after each of `count` steps of the registered optimizer `name`, one after the other."""
    info = OPTIMIZERS.get(name)
    config = OptimConfig(name=name, lr=lr, weight_decay=weight_decay,
                         options={**{k: v.default for k, v in info.options.items()}, **options})
    point = torch.nn.Parameter(torch.tensor(START, dtype=torch.float64))
    optimizer = build_optimizer(config, [point])
    out = []
    for _ in range(count):
        optimizer.zero_grad()
        (0.5 * (torch.tensor(SCALE, dtype=torch.float64) * point**2).sum() + point[0]).backward()
        optimizer.step()
        out.append(point.detach().tolist())
    return flat(out)


def test_momentum_and_nesterov_by_hand() -> None:
    lr, mu = 0.1, 0.9
    p, velocity, momentum_path = list(START), [0.0, 0.0], []
    for _ in range(2):  # heavy ball: v = mu v + g; p -= lr v
        g = gradient(p)
        velocity = [mu * v + gi for v, gi in zip(velocity, g)]
        p = [pi - lr * v for pi, v in zip(p, velocity)]
        momentum_path.append(p)
    p, velocity, nesterov_path = list(START), [0.0, 0.0], []
    for _ in range(2):  # Nesterov (Sutskever et al. 2013, as torch): v = mu v + g; p -= lr (g + mu v)
        g = gradient(p)
        velocity = [mu * v + gi for v, gi in zip(velocity, g)]
        p = [pi - lr * (gi + mu * v) for pi, gi, v in zip(p, g, velocity)]
        nesterov_path.append(p)
    assert steps("momentum", lr, 0.0, momentum=mu) == pytest.approx(flat(momentum_path), abs=1e-12)
    assert steps("nesterov", lr, 0.0, momentum=mu) == pytest.approx(flat(nesterov_path), abs=1e-12)
    assert momentum_path[0] != pytest.approx(nesterov_path[0])  # (the two differ from the first step on)


def adam_by_hand(lr: float, weight_decay: float, decoupled: bool, betas=(0.9, 0.999), eps=1e-8) -> list[list[float]]:
    """Kingma & Ba's Algorithm 1 with L2 added to the gradient (adam), or Loshchilov & Hutter's decoupled decay
    p -= lr x wd x p before the update (adamw)."""
    p, m, v, path = list(START), [0.0, 0.0], [0.0, 0.0], []
    for t in (1, 2):
        g = gradient(p)
        if decoupled:
            p = [pi * (1 - lr * weight_decay) for pi in p]
        else:
            g = [gi + weight_decay * pi for gi, pi in zip(g, p)]
        m = [betas[0] * mi + (1 - betas[0]) * gi for mi, gi in zip(m, g)]
        v = [betas[1] * vi + (1 - betas[1]) * gi * gi for vi, gi in zip(v, g)]
        m_hat = [mi / (1 - betas[0] ** t) for mi in m]
        v_hat = [vi / (1 - betas[1] ** t) for vi in v]
        p = [pi - lr * mh / (math.sqrt(vh) + eps) for pi, mh, vh in zip(p, m_hat, v_hat)]
        path.append(p)
    return path


def test_adam_adds_l2_to_the_gradient_and_adamw_decays_the_weights() -> None:
    lr, decay = 0.1, 0.5
    assert steps("adam", lr, decay) == pytest.approx(flat(adam_by_hand(lr, decay, decoupled=False)), abs=1e-9)
    assert steps("adamw", lr, decay) == pytest.approx(flat(adam_by_hand(lr, decay, decoupled=True)), abs=1e-9)
    assert steps("sgd", lr, decay, count=1) == pytest.approx(
        [pi - lr * (gi + decay * pi) for pi, gi in zip(START, gradient(START))], abs=1e-12)


# every torch-backed name against torch's class, with settings that differ from torch's defaults
TORCH = {
    "sgd": (torch.optim.SGD, {}, {}),
    "momentum": (torch.optim.SGD, {"momentum": 0.7, "dampening": 0.1}, {"momentum": 0.7, "dampening": 0.1}),
    "nesterov": (torch.optim.SGD, {"momentum": 0.7}, {"momentum": 0.7, "nesterov": True}),
    "adam": (torch.optim.Adam, {"betas": (0.8, 0.9), "eps": 1e-3}, {"betas": (0.8, 0.9), "eps": 1e-3}),
    "adamw": (torch.optim.AdamW, {"betas": (0.8, 0.9), "eps": 1e-3}, {"betas": (0.8, 0.9), "eps": 1e-3}),
    "adagrad": (torch.optim.Adagrad, {"lr_decay": 0.1, "eps": 1e-3, "initial_accumulator_value": 0.2},
                {"lr_decay": 0.1, "eps": 1e-3, "initial_accumulator_value": 0.2}),
    "adadelta": (torch.optim.Adadelta, {"rho": 0.5, "eps": 1e-3}, {"rho": 0.5, "eps": 1e-3}),
    "rmsprop": (torch.optim.RMSprop, {"alpha": 0.5, "eps": 1e-3, "momentum": 0.3, "centered": True},
                {"alpha": 0.5, "eps": 1e-3, "momentum": 0.3, "centered": True}),
    "adamax": (torch.optim.Adamax, {"betas": (0.8, 0.9), "eps": 1e-3}, {"betas": (0.8, 0.9), "eps": 1e-3}),
    "nadam": (torch.optim.NAdam, {"betas": (0.8, 0.9), "eps": 1e-3, "momentum_decay": 0.01},
              {"betas": (0.8, 0.9), "eps": 1e-3, "momentum_decay": 0.01}),
    "radam": (torch.optim.RAdam, {"betas": (0.8, 0.9), "eps": 1e-3}, {"betas": (0.8, 0.9), "eps": 1e-3}),
}


@pytest.mark.parametrize("name", sorted(TORCH))
def test_each_torch_backed_name_steps_exactly_as_torchs_own_class(name: str) -> None:
    assert name in OPTIMIZERS.names()
    cls, ours, theirs = TORCH[name]
    lr, decay = 0.05, 0.3
    expected = []
    point = torch.nn.Parameter(torch.tensor(START, dtype=torch.float64))
    optimizer = cls([point], lr=lr, weight_decay=decay, **theirs)
    for _ in range(3):
        optimizer.zero_grad()
        (0.5 * (torch.tensor(SCALE, dtype=torch.float64) * point**2).sum() + point[0]).backward()
        optimizer.step()
        expected.append(point.detach().tolist())
    assert steps(name, lr, decay, count=3, **ours) == flat(expected)  # bit for bit: the same class, the same settings


def test_every_registered_optimizer_is_checked_somewhere() -> None:
    home_made = {"lars", "qhadam", "aggmo", "lamb"}  # tests/optim/test_home_made.py: their papers' algorithms by hand
    assert set(OPTIMIZERS.names()) == set(TORCH) | home_made
