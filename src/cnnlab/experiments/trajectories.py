"""`cnnlab optim-paths`: optimizers' trajectories on 2-D test surfaces, using the very optimizer classes
training uses (built by the same factory), so what the picture shows is what a run does.

Surfaces: a saddle x^2 - y^2 (plain gradient descent creeps away from the saddle point; momentum and
adaptive methods escape faster), Rosenbrock's banana valley (1 - x)^2 + 100 (y - x^2)^2 (minimum (1, 1)),
Beale's function (minimum (3, 0.5)), and an elongated quadratic x^2/20 + y^2 (condition number 20, where
plain gradient descent zig-zags and momentum does not). Each optimizer has a learning rate per surface
that makes its path visible and stable there (`--lr name=value` to change one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import OptimConfig
from ..errors import ConfigError
from ..optim import OPTIMIZERS, build_optimizer


@dataclass(frozen=True)
class Surface:
    name: str
    function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    start: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    steps: int
    minimum: tuple[float, float] | None = None
    log_levels: bool = True
    rates: Mapping[str, float] = field(default_factory=dict)  # per optimizer


def _beale(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


# Rates chosen per surface from a grid (1e-4 ... 30) as the one ending lowest while staying on the plot
# (for the saddle: the one escaping furthest while staying visible); `--lr name=value` overrides.
_RATES = {
    "saddle": {"adadelta": 0.1, "adagrad": 0.03, "adam": 0.01, "adamax": 0.03, "adamw": 0.01, "aggmo": 0.01,
               "lamb": 0.03, "lars": 10.0, "momentum": 0.01, "nadam": 0.01, "nesterov": 0.01, "qhadam": 0.01,
               "radam": 0.1, "rmsprop": 0.003, "sgd": 0.03},
    "rosenbrock": {"adadelta": 3.0, "adagrad": 3.0, "adam": 1.0, "adamax": 1.0, "adamw": 1.0, "aggmo": 0.001,
                   "lamb": 0.1, "lars": 10.0, "momentum": 0.001, "nadam": 3.0, "nesterov": 0.001, "qhadam": 0.3,
                   "radam": 0.01, "rmsprop": 0.1, "sgd": 0.001},
    "beale": {"adadelta": 3.0, "adagrad": 1.0, "adam": 0.3, "adamax": 1.0, "adamw": 0.3, "aggmo": 1e-4,
              "lamb": 0.01, "lars": 1.0, "momentum": 0.003, "nadam": 0.3, "nesterov": 0.003, "qhadam": 0.3,
              "radam": 0.01, "rmsprop": 0.03, "sgd": 0.03},
    "quadratic": {"adadelta": 30.0, "adagrad": 3.0, "adam": 3.0, "adamax": 1.0, "adamw": 3.0, "aggmo": 1.0,
                  "lamb": 0.3, "lars": 10.0, "momentum": 1.0, "nadam": 0.3, "nesterov": 0.3, "qhadam": 1.0,
                  "radam": 1.0, "rmsprop": 0.3, "sgd": 0.3},
}

SURFACES = {
    "saddle": Surface("saddle", lambda x, y: x**2 - y**2, (-1.0, 0.001), (-1.5, 1.5), (-1.5, 1.5), 60,
                      log_levels=False, rates=_RATES["saddle"]),
    "rosenbrock": Surface("rosenbrock", lambda x, y: (1 - x) ** 2 + 100 * (y - x**2) ** 2, (-1.5, 2.0), (-2.0, 2.0),
                          (-1.0, 3.0), 500, (1.0, 1.0), rates=_RATES["rosenbrock"]),
    "beale": Surface("beale", _beale, (1.0, 1.5), (-4.5, 4.5), (-4.5, 4.5), 500, (3.0, 0.5), rates=_RATES["beale"]),
    "quadratic": Surface("quadratic", lambda x, y: x**2 / 20 + y**2, (-4.0, 1.5), (-5.0, 5.0), (-2.5, 2.5), 80,
                         (0.0, 0.0), rates=_RATES["quadratic"]),
}
DEFAULT_PATH_OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam")


def learning_rate(surface: Surface, optimizer: str, overrides: Mapping[str, float] | None = None) -> float:
    if overrides and optimizer in overrides:
        return overrides[optimizer]
    if optimizer in surface.rates:
        return surface.rates[optimizer]
    return OPTIMIZERS.get(optimizer).default_lr  # an optimizer added later: its own default


def trajectory(surface: Surface, optimizer: str, lr: float, steps: int | None = None) -> np.ndarray:
    """[steps + 1, 2] positions; stops early (rows repeat the last finite point) if the path blows up."""
    info = OPTIMIZERS.get(optimizer)
    point = torch.nn.Parameter(torch.tensor([list(surface.start)], dtype=torch.float64))
    options = {k: v.default for k, v in info.options.items()}
    config = OptimConfig(name=optimizer, lr=lr, weight_decay=0.0, options=options)
    opt = build_optimizer(config, [point])
    path = [surface.start]
    for _ in range(steps or surface.steps):
        opt.zero_grad()
        surface.function(point[0, 0], point[0, 1]).backward()
        opt.step()
        position = tuple(point.detach()[0].tolist())
        if not all(np.isfinite(position)) or max(abs(v) for v in position) > 1e6:
            position = path[-1]
        path.append(position)
    return np.array(path)


def optimizer_paths(surface_name: str, optimizers: Sequence[str] = DEFAULT_PATH_OPTIMIZERS,
                    rates: Mapping[str, float] | None = None, steps: int | None = None) -> dict[str, np.ndarray]:
    if surface_name not in SURFACES:
        raise ConfigError(f"unknown surface '{surface_name}'; surfaces: {', '.join(SURFACES)}")
    surface = SURFACES[surface_name]
    return {name: trajectory(surface, name, learning_rate(surface, name, rates), steps) for name in optimizers}
