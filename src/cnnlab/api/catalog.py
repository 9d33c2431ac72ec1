"""What cnnlab has: models (with parameters and FLOPs), datasets, optimizers, and resolved configs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import to_dict
from ..data import DATASETS, DatasetInfo
from ..errors import ConfigError
from ..models import MODELS
from ..models.summary import ModelSummary, describe
from ..optim import OPTIMIZERS, OptimInfo
from .training import make_config


@dataclass(frozen=True)
class ModelEntry:
    name: str
    parameters: int
    input_size: tuple[int, int, int]
    flops: int
    description: str


def models(pattern: str = "*") -> list[ModelEntry]:
    """The registered models matching a shell pattern, each measured at its own input size."""
    entries = []
    for name in MODELS.names(pattern):
        info, summary = MODELS.get(name), describe(name)
        entries.append(ModelEntry(name, summary.parameters, info.input_size, summary.flops, info.description))
    if not entries:
        raise ConfigError(f"no model matches '{pattern}'; `cnnlab models` lists them all")
    return entries


def summary(model: str, options: Sequence[str] = (), input_shape: tuple[int, int, int] | None = None,
            num_classes: int | None = None) -> ModelSummary:
    """Layers, output shapes, parameters and FLOPs of `model` with `key=value` options."""
    return describe(model, options, input_shape, num_classes)


def datasets() -> list[DatasetInfo]:
    return [DATASETS.get(name) for name in DATASETS]


def optimizers() -> list[OptimInfo]:
    return [OPTIMIZERS.get(name) for name in OPTIMIZERS]


def resolved_config(config: str | Path | None = None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The whole config as a run would write it to config.yaml: defaults + file + overrides."""
    return to_dict(make_config(config, overrides))
