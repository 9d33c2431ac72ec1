"""The values of a study file, each checked where it is read: its base (a mapping or a config file), its variations,
grid and zip points, its seeds, and the run names they make (experiments/study.py plans the study from them).
Each error names the study file's line (`where`) and what the value should be."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import flatten, load_yaml_layer
from ..config.layers import Layer, add_key, canonical_key
from ..errors import ConfigError
from ..io import check_name
from ..options import coerce


def zip_points(pairs: Any, where: Any) -> list[dict[str, Any]]:
    """`zip: {optim.lr: [0.1, 0.01], schedule.step_size: [20, 30]}` -> the points (0.1, 20), (0.01, 30)."""
    if not isinstance(pairs, Mapping):
        raise ConfigError(f"{where(('zip',))}: zip must map keys to lists of equal length")
    lengths = {len(v) if isinstance(v, list) else -1 for v in pairs.values()}
    if pairs and (len(lengths) != 1 or min(lengths) < 1):
        sizes = sorted(len(v) if isinstance(v, list) else 0 for v in pairs.values())
        raise ConfigError(f"{where(('zip',))}: zip needs non-empty lists of one length (the i-th values go "
                          f"together), got lengths {sizes}")
    keys = distinct_keys([canonical_key(str(key), where(("zip",))) for key in pairs], where(("zip",)))
    return [dict(zip(keys, values)) for values in zip(*pairs.values())] or [{}]


def base_layer(base: Any, path: Path | None, where: Any) -> Layer:
    if base is None:
        return {}
    if isinstance(base, str):  # a config file, relative to the study file
        base_path = Path(base) if path is None or Path(base).is_absolute() else path.parent / base
        return load_yaml_layer(base_path)
    if not isinstance(base, Mapping):
        raise ConfigError(f"{where(('base',))}: base must be a config mapping or the path of a config file")
    return flatten(base, lambda keys: f"{where(('base',))} base")


def variation_layers(variations: Any, where: Any) -> dict[str, Layer]:
    if not isinstance(variations, Mapping):
        raise ConfigError(f"{where(('variations',))}: variations must map names to override mappings")
    layers: dict[str, Layer] = {}
    if "baseline" not in variations and all(variations.values()):  # an empty variation is the baseline itself
        layers["baseline"] = {}
    for name, overrides in variations.items():
        name = str(name)
        try:
            check_name(name, "variation name")
        except ConfigError as exc:
            raise ConfigError(f"{where(('variations', name))}: {exc}") from None
        unique_name(name, layers, where(("variations", name)))
        if overrides is None:
            overrides = {}
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"{where(('variations',))}: variation '{name}' must be a mapping of key: value")
        origin = f"{where(('variations', name))} variation '{name}'"
        layers[name] = dotted_layer(overrides, origin)
    return layers


def dotted_layer(values: Mapping[str, Any], origin: str) -> Layer:
    """{'model.filters': [..], 'optimizer': 'adam', 'data': {'shuffle': False}} -> a config layer."""
    nested = {str(k): v for k, v in values.items() if isinstance(v, Mapping)}
    layer = flatten(nested, lambda keys: origin)
    for key, value in values.items():
        if not isinstance(value, Mapping):
            add_key(layer, canonical_key(str(key), origin), value, origin)
    return layer


def unique_name(name: str, taken: Mapping[str, Any], where: str) -> str:
    """`name`, unless taken: `1:` and `'1':` are two YAML keys but one name (one run directory)."""
    if name in taken:
        raise ConfigError(f"{where}: the name '{name}' is given twice (as a number and as text?); "
                          "give each its own name")
    return name


def run_seeds(seeds: list[int], origin: str, *layers: Layer) -> tuple[list[int], str]:
    """The seeds of the runs made from these layers (variation, grid/zip point; or the winners so far and a
    greedy alternative), and where they came from. A `seed:` in one of them (the last one that has it)
    replaces the study's seeds: one run, with that seed. Otherwise one run per seed of the study."""
    for layer in reversed(layers):
        if "seed" in layer:
            value, where = layer["seed"]
            return [coerce(value, int, "seed", where)], where
    return seeds, origin


def grid_points(grid: Any, where: Any) -> list[dict[str, Any]]:
    if not isinstance(grid, Mapping):
        raise ConfigError(f"{where(('grid',))}: grid must map keys to lists of values")
    keys = list(grid)
    for key in keys:
        if not isinstance(grid[key], list) or not grid[key]:
            raise ConfigError(f"{where(('grid',))}: grid '{key}' must be a non-empty list of values")
    canonical = distinct_keys([canonical_key(str(key), where(("grid",))) for key in keys], where(("grid",)))
    return [dict(zip(canonical, values)) for values in itertools.product(*(grid[k] for k in keys))] or [{}]


def distinct_keys(keys: list[str], where: str) -> list[str]:
    """Keys of a grid or zip, each once: `lr:` and `optim.lr:` are one key in two spellings."""
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise ConfigError(f"{where}: '{twice[0]}' is given twice (a short and a dotted name?); keep one")
    return keys


def study_seeds(data: Mapping[str, Any], base: Layer, where: Any) -> list[int]:
    """The study's seeds: seeds: [...], repeats: N (seeds 0..N-1), or the base's (or an override's) seed."""
    if "seeds" in data and "repeats" in data:
        raise ConfigError(f"{where(('seeds',))}: give seeds: [...] or repeats: N, not both")
    if "seed" in base:
        value, origin = base["seed"]
        given = next((key for key in ("seeds", "repeats") if key in data), None)
        if given is not None:
            raise ConfigError(f"seed is set for the whole study twice: at {origin} and by {given}: "
                              f"({where((given,))}); give the study's seeds once, as seeds: [...] (a variation's "
                              "own seed: replaces them for that variation)")
        return [coerce(value, int, "seed", origin)]
    if "seeds" in data:
        seeds = data["seeds"]
        if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds) or not seeds:
            raise ConfigError(f"{where(('seeds',))}: seeds must be a list of integers")
        return seeds
    repeats = data.get("repeats", 1)
    if not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(f"{where(('repeats',))}: repeats must be a positive integer")
    return list(range(repeats))


def run_name(variation: str, point: Mapping[str, Any], seed: int, with_seed: bool) -> str:
    parts = [variation] if variation else []
    for key, value in point.items():
        section, _, field_name = key.rpartition(".")
        short = section if field_name == "name" else field_name  # schedule.name=step -> schedulestep
        parts.append(re.sub(r"[^A-Za-z0-9_.+-]", "", f"{short}{value}".replace(" ", "")))
    if with_seed:
        parts.append(f"seed{seed}")
    return check_name("__".join(parts) or "run", "run name")
