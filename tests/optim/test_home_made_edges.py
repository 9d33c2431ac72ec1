"""The home-made optimizers at their edges: their papers' default settings, the exact boundaries of what they
accept, weight decay in QHAdam, LAMB and LARS leaving biases to a plain step whatever their place in the
parameter list, and the trust ratio where a norm is zero. These are the cases mutation testing
(docs/mutation.md) showed tests/optim/test_home_made.py could not tell apart from wrong code."""

from __future__ import annotations

import math

import pytest
import torch

from cnnlab.optim import OPTIMIZERS
from cnnlab.optim.aggmo import AggMo
from cnnlab.optim.base import trust_ratio
from cnnlab.optim.lamb import LAMB
from cnnlab.optim.lars import LARS
from cnnlab.optim.qhadam import QHAdam
from tests.optim.test_home_made import W0, grad_of, qhadam_by_hand, run_torch


def one_parameter() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(2))]


def test_each_class_defaults_to_its_papers_settings_as_registered() -> None:
    assert LARS(one_parameter()).defaults == {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "eta": 0.001,
                                              "exclude_bias_norm": True, "trust": True}
    assert QHAdam(one_parameter()).defaults == {"lr": 1e-3, "betas": (0.995, 0.999), "nus": (0.7, 1.0), "eps": 1e-8,
                                                "weight_decay": 0.0}
    assert AggMo(one_parameter()).defaults == {"lr": 0.1, "betas": (0.0, 0.9, 0.99), "weight_decay": 0.0}
    assert LAMB(one_parameter()).defaults == {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": 0.01,
                                              "exclude_bias_norm": True}
    for name, cls in (("lars", LARS), ("qhadam", QHAdam), ("aggmo", AggMo), ("lamb", LAMB)):  # and the CLI's
        info = OPTIMIZERS.get(name)
        built = info.factory(one_parameter(), lr=info.default_lr, weight_decay=info.default_weight_decay,
                             **{k: v.default for k, v in info.options.items()})
        assert type(built) is cls and built.defaults == cls(one_parameter(), lr=info.default_lr,
                                                             weight_decay=info.default_weight_decay).defaults


ACCEPTED = [
    (LARS, {"momentum": 0.0}), (LARS, {"lr": 1e-12, "eta": 1e-12}),
    (QHAdam, {"eps": 0.0, "betas": (0.0, 0.0), "nus": (0.0, 0.0)}), (QHAdam, {"nus": (1.0, 1.0)}),
    (AggMo, {"betas": (0.0,)}), (AggMo, {"betas": (0.999,)}),
    (LAMB, {"eps": 0.0, "betas": (0.0, 0.0)}),
]
REFUSED = [
    (LARS, {"lr": 0.0}), (LARS, {"momentum": 1.0}), (LARS, {"momentum": -0.1}), (LARS, {"eta": 0.0}),
    (QHAdam, {"lr": 0.0}), (QHAdam, {"eps": -1e-9}), (QHAdam, {"betas": (1.0, 0.9)}), (QHAdam, {"betas": (0.9, 1.0)}),
    (QHAdam, {"nus": (-0.1, 1.0)}), (QHAdam, {"nus": (0.7, 1.01)}),
    (AggMo, {"lr": 0.0}), (AggMo, {"betas": ()}), (AggMo, {"betas": (0.0, 0.9, 1.0)}), (AggMo, {"betas": (-0.5,)}),
    (LAMB, {"lr": 0.0}), (LAMB, {"eps": -1e-9}), (LAMB, {"betas": (1.0, 0.9)}), (LAMB, {"betas": (0.9, 1.0)}),
    (LAMB, {"betas": (-0.1, 0.9)}),
]


@pytest.mark.parametrize("cls,kwargs", ACCEPTED, ids=lambda v: getattr(v, "__name__", str(v)))
def test_the_edges_of_the_valid_settings_are_accepted(cls, kwargs) -> None:
    cls(one_parameter(), **kwargs)


@pytest.mark.parametrize("cls,kwargs", REFUSED, ids=lambda v: getattr(v, "__name__", str(v)))
def test_just_outside_the_valid_settings_is_refused(cls, kwargs) -> None:
    with pytest.raises(ValueError, match=f"invalid {cls.__name__} hyperparameters"):
        cls(one_parameter(), **kwargs)


def test_trust_ratio_is_one_where_a_norm_is_zero() -> None:
    ratio = torch.tensor([2.0, 2.0, 2.0, 2.0])
    weight_norm = torch.tensor([0.0, 3.0, 0.0, 3.0])
    other_norm = torch.tensor([3.0, 0.0, 0.0, 3.0])
    assert trust_ratio(ratio, weight_norm, other_norm).tolist() == [1.0, 1.0, 1.0, 2.0]


def test_qhadam_adds_weight_decay_to_the_gradient() -> None:
    lr, betas, nus, eps, decay = 0.1, (0.9, 0.99), (0.7, 0.8), 1e-8, 0.3
    w = qhadam_by_hand(4, lr, betas, nus, eps, decay)
    got = run_torch(QHAdam, 4, lr=lr, betas=betas, nus=nus, eps=eps, weight_decay=decay)
    assert got == pytest.approx(w, abs=1e-6)


def test_lamb_leaves_a_bias_to_a_plain_adam_step_without_decay() -> None:
    lr, (b1, b2), eps, decay = 0.1, (0.9, 0.99), 1e-6, 0.05
    w, m, v = list(W0), [0.0] * 3, [0.0] * 3
    for t in range(1, 5):  # a one-dimensional tensor: no trust ratio, no weight decay (exclude_bias_norm)
        g = grad_of(w)
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
        w = [wi - lr * (mi / (1 - b1**t)) / (math.sqrt(vi / (1 - b2**t)) + eps) for wi, mi, vi in zip(w, m, v)]
    got = run_torch(LAMB, 4, shape=(3,), lr=lr, betas=(b1, b2), eps=eps, weight_decay=decay)
    assert got == pytest.approx(w, abs=1e-6)


def test_lars_steps_a_bias_listed_before_a_weight_plainly_and_the_weight_with_its_trust_ratio() -> None:
    lr, momentum, decay, eta = 0.5, 0.9, 0.1, 0.01
    bias = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    weight = torch.nn.Parameter(torch.tensor([[3.0, 4.0]], dtype=torch.float64))
    optimizer = LARS([bias, weight], lr=lr, momentum=momentum, weight_decay=decay, eta=eta)
    (bias.sum() * 2 + (weight * torch.tensor([[1.0, -1.0]], dtype=torch.float64)).sum()).backward()
    optimizer.step()
    # bias: gradient (2, 2), no decay, rate 1: one step of lr x g from a zero velocity
    assert bias.detach().tolist() == pytest.approx([1.0 - lr * 2, -2.0 - lr * 2])
    # weight: ||w|| = 5, ||g|| = sqrt 2; rate = eta ||w|| / (||g|| + decay ||w||); step lr x rate x (g + decay w)
    rate = eta * 5 / (math.sqrt(2) + decay * 5)
    expected = [3.0 - lr * rate * (1 + decay * 3), 4.0 - lr * rate * (-1 + decay * 4)]
    assert weight.detach().flatten().tolist() == pytest.approx(expected)
