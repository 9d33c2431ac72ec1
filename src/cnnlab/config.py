"""Typed run configuration: frozen dataclasses, YAML load/save, dotted `key=value` overrides, validation.

Layers, later wins: the dataclass defaults, a YAML file, then `key=value` overrides (CLI or keyword
arguments). Every value remembers where it came from ('study.yaml:12', "override 'lr=abc'") so an error
can point at it. `model`, `optim` and `schedule` are *components*: a registry name plus the options of
that entry, typed by the entry's builder signature (the signature is the schema), so a new model or
optimizer brings its own validated config keys without touching this file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import ConfigError, closest
from .options import OptionSpec, coerce


@dataclass(frozen=True)
class DataConfig:
    name: str = "digits"
    root: str | None = None  # None: --data-root, then $CNNLAB_DATA, then the per-user cache
    val_fraction: float = 0.1  # carved from the training set, stratified; the test set is never touched
    split_seed: int = 0  # fixed apart from the run seed, so repeats of a study share one split
    # standard: per-channel mean/std of the training split; centered: x/255 - 0.5 in [-0.5, 0.5] (the
    # seed study's scaling); unit: x/255 in [0, 1]; imagenet: torchvision's ImageNet mean/std
    normalize: Literal["standard", "centered", "unit", "imagenet"] = "standard"
    image_size: int | None = None  # None: the native size, or the model's input size if it needs more
    resize: Literal["auto", "pad", "resize"] = "auto"  # auto: zero-pad small gaps (28->32), else resize
    channels: int | None = None  # None: native; 1 or 3 converts (gray->RGB repeats, RGB->gray luminance)
    shuffle: bool = True  # reshuffle the training set every epoch (the ablation study turns it off)
    train_limit: int | None = None  # keep the first N training images (after the split): quick runs

    def __post_init__(self) -> None:
        _check(0.0 <= self.val_fraction < 1.0, "data.val_fraction", self.val_fraction, "in [0, 1)")
        _check(self.image_size is None or self.image_size > 0, "data.image_size", self.image_size, "> 0")
        _check(self.channels in (None, 1, 3), "data.channels", self.channels, "1, 3 or null")
        _check(self.train_limit is None or self.train_limit > 0, "data.train_limit", self.train_limit, "> 0")


@dataclass(frozen=True)
class ModelConfig:
    name: str = "convnet"
    options: Mapping[str, Any] = field(default_factory=dict)  # the builder's keyword options, resolved


@dataclass(frozen=True)
class OptimConfig:
    name: str = "momentum"
    lr: float = 0.01  # base learning rate for the whole batch (not per image)
    weight_decay: float = 0.0
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.lr > 0, "optim.lr", self.lr, "> 0")
        _check(self.weight_decay >= 0, "optim.weight_decay", self.weight_decay, ">= 0")


@dataclass(frozen=True)
class ScheduleConfig:
    name: str = "constant"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 1024
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA, fp32 elsewhere
    channels_last: bool | None = None  # None: on for CUDA, off elsewhere
    compile: bool = False  # torch.compile the model (pays off for long runs of large models on a GPU)
    monitor: Literal["val_acc", "val_loss"] = "val_acc"  # what 'best' means for the best checkpoint
    restore_best: bool = False  # evaluate the test set with the best weights instead of the last
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower on GPU; CPU is already)

    def __post_init__(self) -> None:
        _check(self.epochs > 0, "train.epochs", self.epochs, "> 0")
        _check(self.batch_size > 0, "train.batch_size", self.batch_size, "> 0")
        _check(self.eval_batch_size > 0, "train.eval_batch_size", self.eval_batch_size, "> 0")


@dataclass(frozen=True)
class RunConfig:
    seed: int = 0
    device: str = "auto"  # auto: cuda > mps > cpu
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key} must be {expected}, got {value!r}")


PLAIN_SECTIONS = {"data": DataConfig, "train": TrainConfig}
COMPONENT_SECTIONS = ("model", "optim", "schedule")
SECTIONS = (*PLAIN_SECTIONS, *COMPONENT_SECTIONS)
TOP_LEVEL = ("seed", "device")
# Short spellings for the keys people type most: `model=convnet epochs=15 lr=0.1`.
ALIASES = {
    "model": "model.name",
    "data": "data.name",
    "dataset": "data.name",
    "optim": "optim.name",
    "optimizer": "optim.name",
    "schedule": "schedule.name",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "optim.lr",
    "weight_decay": "optim.weight_decay",
}
# Keys that do not change what is computed; left out of the hash that guards `--resume`.
PLACEMENT_KEYS = ("device",)

Layer = dict[str, tuple[Any, str]]  # dotted key -> (raw value, where it came from)


# ----------------------------------------------------------------------------------------- raw layers
def parse_overrides(items: Iterable[str], origin: str = "override") -> Layer:
    """`["model=convnet", "model.filters=[64,128,256]"]` -> a layer of dotted keys with YAML-typed values."""
    layer: Layer = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override '{item}' must look like key=value (for example epochs=15)")
        value = _parse_scalar(text)
        layer[_canonical_key(key, f"{origin} '{item}'")] = (value, f"{origin} '{item}'")
    return layer


def keyword_layer(values: Mapping[str, Any], origin: str = "keyword argument") -> Layer:
    """Python API keyword arguments (`epochs=15`, `**{"optim.lr": 0.1}`) as a layer."""
    return {_canonical_key(k, f"{origin} '{k}'"): (v, f"{origin} '{k}'") for k, v in values.items()}


def _parse_scalar(text: str) -> Any:
    if text.strip() == "":
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def load_yaml_layer(path: str | Path) -> Layer:
    """Read a YAML config file into a layer; each key's origin is 'file:line'."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file '{path}': {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
        lines = _key_lines(yaml.compose(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys (data:, model:, train: ...)")
    return flatten(data, lambda keys: f"{path}:{lines.get(keys, '?')}")


def flatten(data: Mapping[str, Any], origin_of: Any = lambda keys: "config") -> Layer:
    """A nested config mapping -> dotted keys. `model: convnet` means `model.name: convnet`."""
    layer: Layer = {}
    for key, value in data.items():
        key = str(key)
        if key in SECTIONS and isinstance(value, Mapping):
            for sub, sub_value in value.items():
                layer[f"{key}.{sub}"] = (sub_value, origin_of((key, str(sub))))
        else:
            origin = origin_of((key,))
            layer[_canonical_key(key, origin)] = (value, origin)
    return layer


def _key_lines(node: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    lines: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            keys = (*prefix, str(key_node.value))
            lines[keys] = key_node.start_mark.line + 1
            if len(keys) < 2:
                lines.update(_key_lines(value_node, keys))
    return lines


def _canonical_key(key: str, origin: str) -> str:
    if key in ALIASES:
        return ALIASES[key]
    head, _, rest = key.partition(".")
    if (head in SECTIONS and rest) or key in TOP_LEVEL:
        return key
    valid = [*TOP_LEVEL, *ALIASES, *(f"{s}.*" for s in SECTIONS)]
    guess = closest(key, [*TOP_LEVEL, *ALIASES, *_all_plain_keys()])
    hint = f"; did you mean '{guess}'?" if guess else ""
    raise ConfigError(f"unknown key '{key}' ({origin}){hint} Valid keys: {', '.join(valid)}")


def _all_plain_keys() -> list[str]:
    return [f"{s}.{f.name}" for s, cls in PLAIN_SECTIONS.items() for f in dataclasses.fields(cls)]


# ----------------------------------------------------------------------------------------- resolving
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
        data=_plain_section(DataConfig, "data", by_section["data"]),
        train=_plain_section(TrainConfig, "train", by_section["train"]),
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


def _known_dataset(name: str, origin: str) -> None:
    from .data import DATASETS

    try:
        DATASETS.get(name)
    except ConfigError as exc:
        raise ConfigError(f"{exc} ({origin})") from None


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
    try:
        registry.get(name)
    except ConfigError as exc:
        raise ConfigError(f"{exc} ({origin})") from None
    return name


def _model(values: Layer) -> ModelConfig:
    from .models import MODELS

    values = dict(values)
    name = _component_name("model", values, ModelConfig.name, MODELS)
    options = _component_options("model", name, MODELS.get(name).options, values)
    return ModelConfig(name=name, options=types.MappingProxyType(options))


def _optim(values: Layer) -> OptimConfig:
    from .optim import OPTIMIZERS

    values = dict(values)
    name = _component_name("optim", values, OptimConfig.name, OPTIMIZERS)
    info = OPTIMIZERS.get(name)
    common = {}
    for key in ("lr", "weight_decay"):
        if key in values:
            value, origin = values.pop(key)
            common[key] = coerce(value, float, f"optim.{key}", origin)
    common.setdefault("lr", info.default_lr)
    options = _component_options("optim", name, info.options, values)
    return OptimConfig(name=name, options=types.MappingProxyType(options), **common)


def _schedule(values: Layer) -> ScheduleConfig:
    from .optim import SCHEDULES

    values = dict(values)
    name = _component_name("schedule", values, ScheduleConfig.name, SCHEDULES)
    options = _component_options("schedule", name, SCHEDULES.get(name).options, values)
    return ScheduleConfig(name=name, options=types.MappingProxyType(options))


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
    out["model"] = {"name": config.model.name, **_plain_dict(config.model.options)}
    optim = config.optim
    out["optim"] = {"name": optim.name, "lr": optim.lr, "weight_decay": optim.weight_decay,
                    **_plain_dict(optim.options)}
    out["schedule"] = {"name": config.schedule.name, **_plain_dict(config.schedule.options)}
    out["train"] = _plain_dict(dataclasses.asdict(config.train))
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
