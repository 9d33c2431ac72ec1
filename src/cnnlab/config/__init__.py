"""Typed run configuration: frozen dataclasses, YAML load/save, dotted `key=value` overrides, validation.

Layers, later wins: the dataclass defaults, a YAML file, then `key=value` overrides (CLI or keyword
arguments). Every value remembers where it came from ('study.yaml:12', "override 'lr=abc'") so an error
can point at it. `model`, `optim` and `schedule` are *components*: a registry name plus the options of
that entry, typed by the entry's builder signature (the signature is the schema), so a new model or
optimizer brings its own validated config keys without touching this file.
"""

from .layers import (
                       ALIASES,
                       SECTIONS,
                       Layer,
                       flatten,
                       keyword_layer,
                       load_yaml_layer,
                       parse_overrides,
)
from .resolve import (
                       diff,
                       from_dict,
                       load_config,
                       resolve,
                       to_dict,
)
from .saved import HASH_SCHEME, config_hash, read_config, save_config
from .sections import (
                       AugmentConfig,
                       DataConfig,
                       ModelConfig,
                       OptimConfig,
                       RunConfig,
                       ScheduleConfig,
                       StopConfig,
                       TrainConfig,
)

__all__ = [
    "ALIASES", "HASH_SCHEME", "SECTIONS", "AugmentConfig", "DataConfig", "Layer", "ModelConfig", "OptimConfig",
    "RunConfig", "ScheduleConfig", "StopConfig", "TrainConfig", "config_hash", "diff", "flatten", "from_dict",
    "keyword_layer", "load_config", "load_yaml_layer", "parse_overrides", "read_config", "resolve", "save_config",
    "to_dict",
]
