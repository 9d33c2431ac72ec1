"""Raw config layers: YAML files and `key=value` overrides flattened to dotted keys, each value with
the place it came from ('study.yaml:12', "override 'lr=abc'") so errors can point at it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError, closest, command_line
from .sections import AugmentConfig, DataConfig, StopConfig, TrainConfig
from .yaml_file import InvalidYaml, load_yaml, read_yaml

PLAIN_SECTIONS = {"data": DataConfig, "augment": AugmentConfig, "train": TrainConfig, "stop": StopConfig}
COMPONENT_SECTIONS = ("model", "optim", "schedule")
SECTIONS = (*PLAIN_SECTIONS, *COMPONENT_SECTIONS)
TOP_LEVEL = ("seed", "device")
# Short spellings for the keys people type most: `model=convnet epochs=15 lr=0.1`.
ALIASES = {
    "model": "model.name",
    "data": "data.name",
    "dataset": "data.name",
    "augment": "augment.enabled",
    "optim": "optim.name",
    "optimizer": "optim.name",
    "schedule": "schedule.name",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "optim.lr",
    "weight_decay": "optim.weight_decay",
    "early_stop": "stop.criterion",
}
# Keys that do not change what is computed; left out of the hash that guards `--resume`.
PLACEMENT_KEYS = ("device",)

Layer = dict[str, tuple[Any, str]]  # dotted key -> (raw value, where it came from)


def parse_overrides(items: Iterable[str], origin: str = "override") -> Layer:
    """`["model=convnet", "model.filters=[64,128,256]"]` -> a layer of dotted keys with YAML-typed values."""
    layer: Layer = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override '{item}' must look like key=value (for example epochs=15)")
        value = _parse_scalar(text, f"{origin} '{item}'")
        layer[canonical_key(key, f"{origin} '{item}'")] = (value, f"{origin} '{item}'")
    return layer


def keyword_layer(values: Mapping[str, Any], origin: str = "keyword argument") -> Layer:
    """Python API keyword arguments (`epochs=15`, `**{"optim.lr": 0.1}`) as a layer."""
    return {canonical_key(k, f"{origin} '{k}'"): (v, f"{origin} '{k}'") for k, v in values.items()}


def _parse_scalar(text: str, where: str) -> Any:
    if text.strip() == "":
        return None
    try:
        return load_yaml(text, where, numbered=False).data
    except InvalidYaml:  # `name=a: b`, `text=[x`: the words as typed (over a limit or a repeated key: an error)
        return text


def load_yaml_layer(path: str | Path) -> Layer:
    """Read a YAML config file into a layer; each key's origin is 'file:line'."""
    path = Path(path)
    document = read_yaml(path, "config file")
    data, lines = document.data, document.key_lines()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys (data:, model:, train: ...)")
    study = [key for key in ("variations", "stages", "base", "grid", "zip", "seeds") if key in data]
    if study:
        run = command_line("study", "run", path)
        raise ConfigError(f"'{path}' is a study file (it has {study[0]}:), not a run config: run it with "
                          f"`{run}`, or give this command a run config (a study's base: block "
                          "is one)")
    return flatten(data, lambda keys: f"{path}:{lines.get(keys, '?')}")


def flatten(data: Mapping[str, Any], origin_of: Any = lambda keys: "config") -> Layer:
    """A nested config mapping -> dotted keys. `model: convnet` means `model.name: convnet`. One key given
    twice in two spellings (`epochs: 3` and `train: {epochs: 5}`) is refused, as YAML's repeated keys are."""
    layer: Layer = {}
    for key, value in data.items():
        key = str(key)
        if key in SECTIONS and isinstance(value, Mapping):
            for sub, sub_value in value.items():
                add_key(layer, f"{key}.{sub}", sub_value, origin_of((key, str(sub))))
        else:
            origin = origin_of((key,))
            add_key(layer, canonical_key(key, origin), value, origin)
    return layer


def add_key(layer: Layer, key: str, value: Any, origin: str) -> None:
    """layer[key] = (value, origin), unless the layer has that key already (from another spelling)."""
    if key in layer:
        raise ConfigError(f"'{key}' is given twice: {layer[key][1]} and {origin} (one as a short or dotted "
                          "name, one inside its section?); keep one")
    layer[key] = (value, origin)


def canonical_key(key: str, origin: str) -> str:
    """The dotted config key of `key` (aliases expanded), or a ConfigError naming `origin`."""
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
