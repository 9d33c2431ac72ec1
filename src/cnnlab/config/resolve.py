"""Resolving layers into a validated RunConfig, and the plain (YAML/JSON) form of a RunConfig."""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError, closest
from ..options import OptionSpec, coerce
from .components import component, dataset_defaults
from .layers import (
    SECTIONS,
    Layer,
    flatten,
    keyword_layer,
    load_yaml_layer,
    parse_overrides,
)
from .sections import (
    AUGMENT_OFF,
    MIXING,
    MIXING_OFF,
    AugmentConfig,
    DataConfig,
    ModelConfig,
    OptimConfig,
    Options,
    RunConfig,
    ScheduleConfig,
    StopConfig,
    TrainConfig,
)


def resolve(*layers: Layer) -> RunConfig:
    """Merge layers (later wins) over the defaults and build a validated RunConfig."""
    merged: Layer = {}
    for layer in layers:
        merged.update(layer)
    by_section: dict[str, Layer] = {s: {} for s in SECTIONS}
    top: dict[str, Any] = {}
    for key, (value, origin) in merged.items():
        head, _, rest = key.partition(".")
        if rest:
            by_section[head][rest] = (value, origin)
        else:
            top[key] = coerce(value, _field_type(RunConfig, key), key, origin)
    return RunConfig(
        seed=top.get("seed", RunConfig.seed),
        device=top.get("device", RunConfig.device),
        data=(data := _data(_plain_section(DataConfig, "data", by_section["data"]))),
        augment=_augment(_plain_section(AugmentConfig, "augment", by_section["augment"]), data.name),
        train=_plain_section(TrainConfig, "train", by_section["train"]),
        stop=_plain_section(StopConfig, "stop", by_section["stop"]),
        model=_component("model", by_section["model"]),
        optim=_component("optim", by_section["optim"]),
        schedule=_component("schedule", by_section["schedule"]),
    )


def _field_type(cls: type, name: str) -> Any:
    return _type_hints(cls)[name]


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """A config class's field types, read once: get_type_hints evaluates every annotation's text each call,
    which was a third of the time of planning a study of 10,000 runs."""
    return typing.get_type_hints(cls)


def _plain_section(cls: type, section: str, values: Layer) -> Any:
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, (value, origin) in values.items():
        if key not in fields:
            guess = closest(key, fields)
            hint = f"; did you mean '{section}.{guess}'?" if guess else ""
            raise ConfigError(
                f"unknown key '{section}.{key}' ({origin}){hint} Valid {section} keys: {', '.join(sorted(fields))}"
            )
        kwargs[key] = coerce(value, _field_type(cls, key), f"{section}.{key}", origin)
    if section == "data" and "name" in kwargs:
        _known_dataset(kwargs["name"], values["name"][1])
    return cls(**kwargs)


def _augment(config: AugmentConfig, dataset: str) -> AugmentConfig:
    """Fill unset augmentation fields from the dataset's recipe (or switch all off when disabled)."""
    # how, not whether: no dataset recipe sets it; nor does any recipe mix batches
    kept: dict[str, Any] = {"pca_lighting_scale": config.pca_lighting_scale, **{k: getattr(config, k) for k in MIXING}}
    if not config.enabled:
        return AugmentConfig(enabled=False, **AUGMENT_OFF, **{**kept, **MIXING_OFF})
    recipe = {**AUGMENT_OFF, **dataset_defaults(dataset).augment}
    values: dict[str, Any] = {k: getattr(config, k) for k in AUGMENT_OFF}
    return AugmentConfig(enabled=True, **{k: recipe[k] if v is None else v for k, v in values.items()}, **kept)


def _data(config: DataConfig) -> DataConfig:
    """Fill the dataset's default class exclusions (Caltech-101 leaves BACKGROUND_Google out)."""
    if config.exclude_classes is None:
        excluded = tuple(dataset_defaults(config.name).exclude_classes)
        return dataclasses.replace(config, exclude_classes=excluded)
    return config


def _known_dataset(name: str, origin: str) -> None:
    dataset_defaults(name, origin)


def _component_options(
    section: str, name: str, specs: Mapping[str, OptionSpec], values: Layer
) -> dict[str, Any]:
    """Validate `values` against an entry's option specs; fill defaults; return the full option set."""
    options = {}
    for key, (value, origin) in values.items():
        if key not in specs:
            guess = closest(key, specs)
            hint = f"; did you mean '{section}.{guess}'?" if guess else ""
            valid = ", ".join(sorted(specs)) or "(none)"
            raise ConfigError(
                f"'{section}.{key}' ({origin}) is not an option of {section} '{name}'{hint} "
                f"Options of '{name}': {valid}"
            )
        options[key] = coerce(value, specs[key].annotation, f"{section}.{key}", origin)
    for key, spec in specs.items():
        if key not in options:
            if spec.required:
                raise ConfigError(f"{section} '{name}' needs '{section}.{key}' ({spec.annotation})")
            options[key] = spec.default
    return options


def common_fields(cls: type) -> tuple[str, ...]:
    """A component section's own fields (weights, lr, warmup_epochs, ...): all but `name` and `options`."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in ("name", "options"))


COMPONENT_CLASSES: dict[str, Any] = {"model": ModelConfig, "optim": OptimConfig, "schedule": ScheduleConfig}


def _component(section: str, values: Layer) -> Any:
    """A component section: the registry name, the section's own fields, then the entry's options."""
    cls = COMPONENT_CLASSES[section]
    spec = component(section)
    values = dict(values)
    value, origin = values.pop("name", (cls.name, "default"))
    name = coerce(value, str, f"{section}.name", origin)
    entry = spec.lookup(name, origin)
    common: dict[str, Any] = dict(spec.defaults(entry))
    for key in common_fields(cls):
        if key in values:
            value, origin = values.pop(key)
            common[key] = coerce(value, _field_type(cls, key), f"{section}.{key}", origin)
    options = _component_options(section, name, spec.options(entry), values)
    return cls(name=name, options=Options(options), **common)


# ----------------------------------------------------------------------------------------- public
def load_config(
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    keywords: Mapping[str, Any] | None = None,
) -> RunConfig:
    """defaults <- YAML file <- `key=value` overrides <- keyword arguments."""
    layers = [load_yaml_layer(path)] if path else []
    layers.append(parse_overrides(overrides))
    if keywords:
        layers.append(keyword_layer(keywords))
    return resolve(*layers)


def to_dict(config: RunConfig) -> dict[str, Any]:
    """The nested, plain (YAML/JSON-safe) form written to every run directory."""
    out: dict[str, Any] = {"seed": config.seed, "device": config.device}
    out["data"] = _plain_dict(dataclasses.asdict(config.data))
    out["augment"] = _plain_dict(dataclasses.asdict(config.augment))
    for section, cls in COMPONENT_CLASSES.items():
        part = getattr(config, section)
        out[section] = {"name": part.name, **{k: _to_plain(getattr(part, k)) for k in common_fields(cls)},
                        **_plain_dict(part.options)}
    out["train"] = _plain_dict(dataclasses.asdict(config.train))
    out["stop"] = _plain_dict(dataclasses.asdict(config.stop))
    return out


def _plain_dict(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _to_plain(v) for k, v in values.items()}


def _to_plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_to_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    return value


def from_dict(data: Mapping[str, Any], origin: str = "config") -> RunConfig:
    return resolve(flatten(data, lambda keys: origin))


def diff(old: RunConfig, new: RunConfig) -> list[str]:
    """Dotted keys whose values differ, as 'key: old -> new'."""
    a, b = _flat_plain(to_dict(old)), _flat_plain(to_dict(new))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _flat_plain(data: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out
