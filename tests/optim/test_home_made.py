"""The home-made optimizers against their papers' update equations, applied by hand in plain Python on a
few numbers for several steps, and against the optimizers they reduce to."""

import math

import pytest
import torch

from cnnlab.optim.aggmo import AggMo
from cnnlab.optim.lamb import LAMB
from cnnlab.optim.lars import LARS
from cnnlab.optim.qhadam import QHAdam

W0 = [0.5, -1.25, 2.0]
TARGET = [1.0, 0.5, -0.5]


def grad_of(w: list[float]) -> list[float]:
    """Gradient of f(w) = sum((w - t)^2 * (i + 1)) / 2: g_i = (w_i - t_i)(i + 1)."""
    return [(wi - ti) * (i + 1) for i, (wi, ti) in enumerate(zip(w, TARGET))]


def run_torch(optimizer_class, steps: int, shape=(3,), **kwargs) -> list[float]:
    param = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64).view(shape))
    optimizer = optimizer_class([param], **kwargs)
    weights = torch.arange(1, 4, dtype=torch.float64).view(shape)
    for _ in range(steps):
        optimizer.zero_grad()
        ((param - torch.tensor(TARGET, dtype=torch.float64).view(shape)) ** 2 * weights).sum().mul(0.5).backward()
        optimizer.step()
    return param.detach().flatten().tolist()


def qhadam_by_hand(steps: int, lr: float, betas: tuple[float, float], nus: tuple[float, float], eps: float,
                   decay: float = 0.0) -> list[float]:
    """Algorithm 2 of Ma & Yarats 2019 on W0, written out, on g + decay x w (L2, as torch's Adam)."""
    (b1, b2), (v1, v2) = betas, nus
    w, m, s = list(W0), [0.0] * 3, [0.0] * 3
    for t in range(1, steps + 1):
        g = [gi + decay * wi for gi, wi in zip(grad_of(w), w)]
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        s = [b2 * si + (1 - b2) * gi * gi for si, gi in zip(s, g)]
        for i in range(3):
            numerator = (1 - v1) * g[i] + v1 * m[i] / (1 - b1**t)
            denominator = math.sqrt((1 - v2) * g[i] ** 2 + v2 * s[i] / (1 - b2**t)) + eps
            w[i] -= lr * numerator / denominator
    return w


def test_qhadam_follows_algorithm_2() -> None:
    lr, betas, nus, eps = 0.1, (0.9, 0.99), (0.7, 0.8), 1e-8
    w = qhadam_by_hand(5, lr, betas, nus, eps)
    assert run_torch(QHAdam, 5, lr=lr, betas=betas, nus=nus, eps=eps) == pytest.approx(w, abs=1e-6)


def test_qhadam_with_nus_one_is_adam() -> None:
    ours = run_torch(QHAdam, 8, lr=0.05, betas=(0.9, 0.999), nus=(1.0, 1.0), eps=1e-8)
    adam = run_torch(torch.optim.Adam, 8, lr=0.05, betas=(0.9, 0.999), eps=1e-8)
    assert ours == pytest.approx(adam, abs=1e-9)


def test_aggmo_follows_equation_2() -> None:
    lr, betas = 0.1, (0.0, 0.5, 0.9)
    w, velocities = list(W0), [[0.0] * 3 for _ in betas]
    for _ in range(6):
        g = grad_of(w)
        velocities = [[b * vi - gi for vi, gi in zip(v, g)] for b, v in zip(betas, velocities)]
        w = [wi + lr / len(betas) * sum(v[i] for v in velocities) for i, wi in enumerate(w)]
    assert run_torch(AggMo, 6, lr=lr, betas=betas) == pytest.approx(w, abs=1e-6)


def test_aggmo_with_one_beta_is_momentum_sgd() -> None:
    ours = run_torch(AggMo, 10, lr=0.05, betas=(0.9,), weight_decay=0.01)
    sgd = run_torch(torch.optim.SGD, 10, lr=0.05, momentum=0.9, weight_decay=0.01)
    assert ours == pytest.approx(sgd, abs=1e-9)


def test_lars_follows_algorithm_1() -> None:
    lr, momentum, eta, decay = 0.5, 0.9, 0.01, 0.1
    w, v = list(W0), [0.0] * 3
    for _ in range(5):
        g = grad_of(w)
        w_norm, g_norm = math.sqrt(sum(x * x for x in w)), math.sqrt(sum(x * x for x in g))
        local = eta * w_norm / (g_norm + decay * w_norm)
        v = [momentum * vi + lr * local * (gi + decay * wi) for vi, gi, wi in zip(v, g, w)]
        w = [wi - vi for wi, vi in zip(w, v)]
    got = run_torch(LARS, 5, shape=(1, 3), lr=lr, momentum=momentum, eta=eta, weight_decay=decay)
    assert got == pytest.approx(w, abs=1e-6)


def test_lars_without_trust_ratio_is_momentum_sgd() -> None:
    ours = run_torch(LARS, 10, shape=(1, 3), lr=0.05, momentum=0.9, weight_decay=0.01, trust=False)
    sgd = run_torch(torch.optim.SGD, 10, shape=(1, 3), lr=0.05, momentum=0.9, weight_decay=0.01)
    assert ours == pytest.approx(sgd, abs=1e-9)


def test_lars_leaves_biases_to_plain_momentum() -> None:
    """One-dimensional tensors (biases, BN) are excluded: no trust ratio, no weight decay."""
    ours = run_torch(LARS, 6, shape=(3,), lr=0.05, momentum=0.9, weight_decay=0.3)
    sgd = run_torch(torch.optim.SGD, 6, shape=(3,), lr=0.05, momentum=0.9)
    assert ours == pytest.approx(sgd, abs=1e-9)


def test_lamb_follows_algorithm_2() -> None:
    lr, (b1, b2), eps, decay = 0.1, (0.9, 0.99), 1e-6, 0.05
    w, m, v = list(W0), [0.0] * 3, [0.0] * 3
    for t in range(1, 6):
        g = grad_of(w)
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
        r = [(mi / (1 - b1**t)) / (math.sqrt(vi / (1 - b2**t)) + eps) + decay * wi for mi, vi, wi in zip(m, v, w)]
        trust = math.sqrt(sum(x * x for x in w)) / math.sqrt(sum(x * x for x in r))
        w = [wi - lr * trust * ri for wi, ri in zip(w, r)]
    got = run_torch(LAMB, 5, shape=(1, 3), lr=lr, betas=(b1, b2), eps=eps, weight_decay=decay)
    assert got == pytest.approx(w, abs=1e-6)


@pytest.mark.parametrize("cls,kwargs", [(QHAdam, {"nus": (2.0, 1.0)}), (AggMo, {"betas": ()}), (LARS, {"eta": 0.0}),
                                        (LAMB, {"betas": (1.0, 0.9)})])
def test_invalid_hyperparameters_are_refused(cls, kwargs) -> None:
    with pytest.raises(ValueError, match="invalid"):
        cls([torch.nn.Parameter(torch.zeros(2))], **kwargs)


def run_skipping(optimizer_class, order: tuple[int, int], steps: int = 7, **kwargs) -> list[list[float]]:
    """Two parameters; the second gets a gradient only on every third step (a branch that is not always
    used), so the two step counters differ. `order` permutes the parameter list given to the optimizer."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(3, dtype=torch.float64)),
              torch.nn.Parameter(torch.randn(2, 2, dtype=torch.float64))]
    optimizer = optimizer_class([params[i] for i in order], **kwargs)
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = (params[0] ** 2).sum() * 1.5
        if step % 3 == 0:
            loss = loss + ((params[1] - 1) ** 2).sum()
        loss.backward()
        optimizer.step()
    return [p.detach().flatten().tolist() for p in params]


def test_qhadam_counts_steps_per_parameter_like_adam() -> None:
    """A parameter that skips steps keeps its own bias correction (torch.optim.Adam's behaviour); one shared
    counter per group made the result wrong and dependent on the parameter order."""
    settings = {"lr": 0.05, "betas": (0.9, 0.999), "eps": 1e-8}
    adam = run_skipping(torch.optim.Adam, (0, 1), **settings)
    for order in ((0, 1), (1, 0)):
        ours = run_skipping(QHAdam, order, nus=(1.0, 1.0), **settings)
        for got, want in zip(ours, adam):
            assert got == pytest.approx(want, abs=1e-12)


def test_lamb_counts_steps_per_parameter() -> None:
    """LAMB on two parameters equals LAMB on each alone (per-layer trust ratio, per-parameter step)."""
    together = run_skipping(LAMB, (0, 1), lr=0.05, weight_decay=0.01, exclude_bias_norm=False)
    swapped = run_skipping(LAMB, (1, 0), lr=0.05, weight_decay=0.01, exclude_bias_norm=False)
    assert together == swapped

    torch.manual_seed(0)
    first = torch.nn.Parameter(torch.randn(3, dtype=torch.float64))
    second = torch.nn.Parameter(torch.randn(2, 2, dtype=torch.float64))
    alone = [LAMB([first], lr=0.05, weight_decay=0.01, exclude_bias_norm=False),
             LAMB([second], lr=0.05, weight_decay=0.01, exclude_bias_norm=False)]
    for step in range(7):
        for opt in alone:
            opt.zero_grad(set_to_none=True)
        ((first ** 2).sum() * 1.5).backward()
        alone[0].step()
        if step % 3 == 0:
            ((second - 1) ** 2).sum().backward()
            alone[1].step()
    assert together[0] == pytest.approx(first.detach().flatten().tolist(), abs=1e-12)
    assert together[1] == pytest.approx(second.detach().flatten().tolist(), abs=1e-12)


def two_layers() -> tuple[list[float], list[float]]:
    """Two 'layers' whose weights differ in scale by 1000: a per-layer ratio and a global one differ a lot."""
    return [0.002, -0.001, 0.003], [4.0, -3.0, 5.0, 1.0]


def grads_of(big: list[float]) -> list[float]:
    return [(x - 1.0) for x in big]


def test_lars_trust_ratio_is_per_layer() -> None:
    lr, momentum, eta, decay = 0.5, 0.9, 0.01, 0.0
    small, big = two_layers()
    layers = [list(small), list(big)]
    velocity = [[0.0] * 3, [0.0] * 4]
    for _ in range(4):
        grads = [[2.0 * x for x in layers[0]], grads_of(layers[1])]
        for i, (w, g) in enumerate(zip(layers, grads)):
            w_norm, g_norm = math.sqrt(sum(x * x for x in w)), math.sqrt(sum(x * x for x in g))
            local = eta * w_norm / (g_norm + decay * w_norm)  # this layer's own norms
            velocity[i] = [momentum * v + lr * local * gi for v, gi in zip(velocity[i], g)]
            layers[i] = [wi - vi for wi, vi in zip(w, velocity[i])]
    a = torch.nn.Parameter(torch.tensor([small], dtype=torch.float64))
    b = torch.nn.Parameter(torch.tensor([big], dtype=torch.float64))
    optimizer = LARS([a, b], lr=lr, momentum=momentum, eta=eta, weight_decay=decay)
    for _ in range(4):
        optimizer.zero_grad()
        ((a ** 2).sum() + ((b - 1.0) ** 2).sum() / 2).backward()
        optimizer.step()
    assert a.detach().flatten().tolist() == pytest.approx(layers[0], abs=1e-9)
    assert b.detach().flatten().tolist() == pytest.approx(layers[1], abs=1e-9)
    # a global norm (all weights and gradients as one vector) would have moved the small layer ~1000x more
    assert abs(a.detach().flatten()[0].item() - small[0]) < 1e-3 * abs(small[0]) * 50


def test_lamb_trust_ratio_is_per_layer() -> None:
    lr, (b1, b2), eps = 0.01, (0.9, 0.99), 1e-6
    small, big = two_layers()
    layers = [list(small), list(big)]
    moments = [([0.0] * 3, [0.0] * 3), ([0.0] * 4, [0.0] * 4)]
    for t in range(1, 5):
        grads = [[2.0 * x for x in layers[0]], grads_of(layers[1])]
        for i, (w, g) in enumerate(zip(layers, grads)):
            m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(moments[i][0], g)]
            v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(moments[i][1], g)]
            moments[i] = (m, v)
            r = [(mi / (1 - b1**t)) / (math.sqrt(vi / (1 - b2**t)) + eps) for mi, vi in zip(m, v)]
            trust = math.sqrt(sum(x * x for x in w)) / math.sqrt(sum(x * x for x in r))  # this layer's norms
            layers[i] = [wi - lr * trust * ri for wi, ri in zip(w, r)]
    a = torch.nn.Parameter(torch.tensor([small], dtype=torch.float64))
    b = torch.nn.Parameter(torch.tensor([big], dtype=torch.float64))
    optimizer = LAMB([a, b], lr=lr, betas=(b1, b2), eps=eps, weight_decay=0.0)
    for _ in range(4):
        optimizer.zero_grad()
        ((a ** 2).sum() + ((b - 1.0) ** 2).sum() / 2).backward()
        optimizer.step()
    assert a.detach().flatten().tolist() == pytest.approx(layers[0], rel=1e-9, abs=1e-12)
    assert b.detach().flatten().tolist() == pytest.approx(layers[1], rel=1e-9, abs=1e-12)
