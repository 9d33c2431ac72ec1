"""A run's config on disk (config.yaml: written atomically and only when it changed, read back whole or
refused) and the hash that says whether two configs compute the same thing.

The hash is of the settings that differ from their defaults, plus the names of the dataset and the
components (whose defaults they are). A setting that cnnlab gains later, at its default, leaves every
existing hash as it was, so a study's finished runs stay its runs without a list of "off" values kept by
hand; tests/test_config.py holds hashes of fixed configs to catch any other drift. Runs whose run.json
holds a hash of the scheme before this one are matched through their own config.yaml
(runs/directory.py, `RunDir.made_from`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import yaml

from ..errors import ConfigError
from ..io import atomic_write_text
from .components import component
from .layers import PLACEMENT_KEYS
from .resolve import COMPONENT_CLASSES, _flat_plain, _to_plain, from_dict, resolve, to_dict
from .sections import RunConfig
from .yaml_file import read_yaml

HASH_SCHEME = 2  # 1: the full config with a hand-kept list of keys dropped at their 'off' value
NAMES = ("data.name", "model.name", "optim.name", "schedule.name")  # always hashed: they choose the defaults
NOT_COMPUTATION = (*PLACEMENT_KEYS, "train.tensorboard", "train.keep_epochs",  # where it runs; what is logged, kept
                   "train.mlflow", "train.mlflow_uri", "train.mlflow_experiment", "train.mlflow_required")
# values that were a key's default before it changed, hashed as the default still: a run saved then resumes
# under its recorded hash. train.compile was false (eager) before auto (issue 35), which decides per run and
# keeps its decision in the checkpoint, so a resumed run computes as its first session did either way
FORMER_DEFAULTS: dict[str, tuple[Any, ...]] = {"train.compile": (False,)}
HEADER = "# cnnlab run config: the resolved settings of one run; written whole, its last line is '# end'\n"
FOOTER = "# end\n"
SECTIONS_ALWAYS_WRITTEN = ("seed", "device", "data", "augment", "model", "optim", "schedule", "train")


# ------------------------------------------------------------------------------------------ the file
def config_text(config: RunConfig) -> str:
    return HEADER + cast(str, yaml.safe_dump(to_dict(config), sort_keys=False)) + FOOTER  # PyYAML is untyped


def save_config(config: RunConfig, path: str | Path) -> bool:
    """Write `config` to `path` atomically, and only when the file does not already say exactly that
    (a resume with the same config leaves config.yaml untouched). True when it was written."""
    path, text = Path(path), config_text(config)
    try:
        if path.read_text() == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)
    return True


def read_config(path: str | Path) -> RunConfig:
    """The config a run saved. An empty, cut-off or otherwise incomplete file is a ConfigError, never the
    default config: files written since the header exist must end with its footer; older ones must have
    every section that every version of cnnlab wrote."""
    path = Path(path)
    data = read_yaml(path, "run config").data  # bounded like every YAML cnnlab reads (config/yaml_file.py)
    try:
        text = path.read_text()  # within the bound now: read again for the header and footer checks
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read '{path}': {getattr(exc, 'strerror', None) or exc}") from None
    if not text.strip() or data is None:
        raise _damaged(path, "it is empty")
    if not isinstance(data, Mapping):
        raise _damaged(path, "it is not a mapping of settings")
    if text.startswith(HEADER) and not text.endswith(FOOTER):
        raise _damaged(path, f"it is cut off (its last line is not '{FOOTER.strip()}')")
    missing = [section for section in SECTIONS_ALWAYS_WRITTEN if section not in data]
    if missing:
        raise _damaged(path, f"it is cut off or incomplete (no {', '.join(missing)})")
    return from_dict(data, origin=str(path))


def _damaged(path: Path, what: str) -> ConfigError:
    return ConfigError(f"{path}: the run's saved config is damaged: {what}. cnnlab writes it whole, so it was "
                       "changed afterwards; restore it from a copy (the run's settings were those of the command "
                       "or study that made it), or train the run again with --overwrite")


# ------------------------------------------------------------------------------------------ the hash
def config_hash(config: RunConfig) -> str:
    """A stable hash of what changes the computation (not where it runs, nor what is logged or kept)."""
    return settings_hash(_flat_plain(to_dict(config)), defaults_for(config))


def settings_hash(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    """The hash of flat `values` (dotted key -> plain value): the names, and every key whose value is not
    its default; stop.* only when a stopping criterion is on (they change nothing otherwise)."""
    stopping = values.get("stop.criterion", "none") != "none"
    kept = {key: value for key, value in values.items()
            if key not in NOT_COMPUTATION and (stopping or not key.startswith("stop."))
            and (key in NAMES or key not in defaults or (defaults[key] != value
                                                         and value not in FORMER_DEFAULTS.get(key, ())))}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def defaults_for(config: RunConfig) -> dict[str, Any]:
    """Every key's default (flat, plain) for this config's dataset and components: the dataset's
    augmentation recipe and excluded classes, each component's common-field defaults and option defaults
    (a required option has none, so it is always hashed)."""
    defaults = to_dict(resolve({"data.name": (config.data.name, "config hash")}))
    for section, cls in COMPONENT_CLASSES.items():
        name = getattr(config, section).name
        spec = component(section)
        entry = spec.lookup(name, "config hash")
        common = {f.name: f.default for f in dataclasses.fields(cls)
                  if f.name not in ("name", "options") and f.default is not dataclasses.MISSING}
        common.update(spec.defaults(entry))
        options = {key: option.default for key, option in spec.options(entry).items() if not option.required}
        defaults[section] = {"name": name, **{k: _to_plain(v) for k, v in {**common, **options}.items()}}
    return _flat_plain(defaults)
