"""What the config needs to know about the registries, handed to it by them (so `config` imports none).

`model`, `optim` and `schedule` sections are components: a registry name plus that entry's options, typed
by its builder's signature. `data`, `models` and `optim` each register their section here when they are
imported (`import cnnlab` imports them all): how a name is looked up, which options an entry takes, and
the defaults an entry brings (an optimizer's learning rate; a dataset's augmentation recipe and the
classes it leaves out).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..options import OptionSpec


@dataclass(frozen=True)
class Component:
    section: str
    lookup: Callable[[str, str], Any]  # (name, origin) -> entry; raises ConfigError listing the valid names
    options: Callable[[Any], Mapping[str, OptionSpec]] = lambda entry: entry.options
    defaults: Callable[[Any], Mapping[str, Any]] = lambda entry: {}  # values for the section's common fields


@dataclass(frozen=True)
class DatasetDefaults:
    """A dataset's standard augmentation recipe (AugmentConfig fields) and the classes it leaves out."""

    augment: Mapping[str, Any] = field(default_factory=dict)
    exclude_classes: tuple[str, ...] = ()


COMPONENTS: dict[str, Component] = {}
_DATASETS: dict[str, Callable[[str, str], DatasetDefaults]] = {}


def register_component(component: Component) -> None:
    COMPONENTS[component.section] = component


def register_datasets(lookup: Callable[[str, str], DatasetDefaults]) -> None:
    _DATASETS["lookup"] = lookup


def component(section: str) -> Component:
    if section not in COMPONENTS:
        raise ConfigError(f"no '{section}' registry is loaded: import cnnlab (not cnnlab.config alone)")
    return COMPONENTS[section]


def dataset_defaults(name: str, origin: str = "") -> DatasetDefaults:
    if "lookup" not in _DATASETS:
        raise ConfigError("no dataset registry is loaded: import cnnlab (not cnnlab.config alone)")
    return _DATASETS["lookup"](name, origin)
