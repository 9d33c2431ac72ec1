"""Resolving layers into a validated RunConfig, and the plain (YAML/JSON) form of a RunConfig."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, closest
from ..options import OptionSpec, coerce
from .layers import (
    PLACEMENT_KEYS,
    SECTIONS,
    Layer,
    flatten,
    keyword_layer,
    load_yaml_layer,
    parse_overrides,
)
from .sections import (
    AUGMENT_OFF,
    AugmentConfig,
    DataConfig,
    ModelConfig,
    OptimConfig,
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
        model=_model(by_section["model"]),
        optim=_optim(by_section["optim"]),
        schedule=_schedule(by_section["schedule"]),
    )


def _field_type(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


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
    from ..data import DATASETS

    if not config.enabled:
        return AugmentConfig(enabled=False, **AUGMENT_OFF)
    recipe = {**AUGMENT_OFF, **DATASETS.get(dataset).augment}
    values = {k: getattr(config, k) for k in AUGMENT_OFF}
    return AugmentConfig(enabled=True, **{k: recipe[k] if v is None else v for k, v in values.items()})


def _data(config: DataConfig) -> DataConfig:
    """Fill the dataset's default class exclusions (Caltech-101 leaves BACKGROUND_Google out)."""
    from ..data import DATASETS

    if config.exclude_classes is None:
        return dataclasses.replace(config, exclude_classes=tuple(DATASETS.get(config.name).exclude_classes))
    return config


def _known_dataset(name: str, origin: str) -> None:
    from ..data import DATASETS

    DATASETS.get(name, origin)


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


def _component_name(section: str, values: Layer, default: str, registry: Any) -> str:
    value, origin = values.pop("name", (default, "default"))
    name = coerce(value, str, f"{section}.name", origin)
    registry.get(name, origin)
    return name


def _model(values: Layer) -> ModelConfig:
    from ..models import MODELS

    values = dict(values)
    name = _component_name("model", values, ModelConfig.name, MODELS)
    common: dict[str, Any] = {}
    for key in ("weights", "freeze", "reset_head"):
        if key in values:
            value, origin = values.pop(key)
            common[key] = coerce(value, _field_type(ModelConfig, key), f"model.{key}", origin)
    options = _component_options("model", name, MODELS.get(name).options, values)
    return ModelConfig(name=name, options=types.MappingProxyType(options), **common)


def _optim(values: Layer) -> OptimConfig:
    from ..optim import OPTIMIZERS

    values = dict(values)
    name = _component_name("optim", values, OptimConfig.name, OPTIMIZERS)
    info = OPTIMIZERS.get(name)
    common: dict[str, Any] = {}
    for key, kind in (("lr", float), ("weight_decay", float), ("no_decay_bias_norm", bool),
                      ("backbone_lr_factor", float)):
        if key in values:
            value, origin = values.pop(key)
            common[key] = coerce(value, kind, f"optim.{key}", origin)
    common.setdefault("lr", info.default_lr)
    common.setdefault("weight_decay", info.default_weight_decay)
    options = _component_options("optim", name, info.options, values)
    return OptimConfig(name=name, options=types.MappingProxyType(options), **common)


def _schedule(values: Layer) -> ScheduleConfig:
    from ..optim import SCHEDULES

    values = dict(values)
    name = _component_name("schedule", values, ScheduleConfig.name, SCHEDULES)
    common: dict[str, Any] = {}
    for key, kind in (("warmup_epochs", float), ("warmup_start", float), ("per_iteration", bool)):
        if key in values:
            value, origin = values.pop(key)
            common[key] = coerce(value, kind, f"schedule.{key}", origin)
    options = _component_options("schedule", name, SCHEDULES.get(name).options, values)
    return ScheduleConfig(name=name, options=types.MappingProxyType(options), **common)


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
    model = config.model
    out["model"] = {"name": model.name, "weights": model.weights, "freeze": model.freeze,
                    "reset_head": model.reset_head, **_plain_dict(model.options)}
    optim = config.optim
    out["optim"] = {"name": optim.name, "lr": optim.lr, "weight_decay": optim.weight_decay,
                    "no_decay_bias_norm": optim.no_decay_bias_norm, "backbone_lr_factor": optim.backbone_lr_factor,
                    **_plain_dict(optim.options)}
    schedule = config.schedule
    out["schedule"] = {"name": schedule.name, "warmup_epochs": schedule.warmup_epochs,
                       "warmup_start": schedule.warmup_start, "per_iteration": schedule.per_iteration,
                       **_plain_dict(schedule.options)}
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


def save_config(config: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


def config_hash(config: RunConfig) -> str:
    """A stable hash of everything that changes the computation (not where it runs)."""
    data = to_dict(config)
    for key in PLACEMENT_KEYS:
        data.pop(key, None)
    data["train"].pop("tensorboard", None)  # logging, not computation
    data["train"].pop("keep_epochs", None)  # which weights are kept, not what is computed
    if data["train"].get("divergence_threshold") == 20.0:  # the default since it exists: older runs keep their hash
        data["train"].pop("divergence_threshold")
    if config.stop.criterion == "none":  # runs from before early stopping existed keep their hash
        data.pop("stop")
    for key, default in (("freeze", "none"), ("reset_head", False)):  # the same for the transfer keys
        if data["model"][key] == default:
            data["model"].pop(key)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


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
