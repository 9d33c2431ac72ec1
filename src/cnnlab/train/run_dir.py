"""The run directory: the only thing results are read from (tables, plots, eval, resume).

runs/<name>/config.yaml     the resolved config
runs/<name>/run.json        status, reason, best epoch, metrics, timings, img/s, seed, versions, device
runs/<name>/metrics.csv     one row per epoch
runs/<name>/checkpoints/    last.safetensors, best.safetensors
runs/<name>/plots/          curves.png, confusion_<split>.png
"""

from __future__ import annotations

import json
import platform
import re
import time
from pathlib import Path
from typing import Any

import yaml

from ..config import RunConfig, from_dict, save_config
from ..errors import ConfigError
from .checkpoint import atomic_write_text

RUNNING = "running"


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.yaml")
    info_path = property(lambda self: self.path / "run.json")
    metrics_path = property(lambda self: self.path / "metrics.csv")
    checkpoints = property(lambda self: self.path / "checkpoints")
    plots = property(lambda self: self.path / "plots")
    last = property(lambda self: self.checkpoints / "last.safetensors")
    best = property(lambda self: self.checkpoints / "best.safetensors")

    def exists(self) -> bool:
        return self.config_path.is_file()

    def require(self) -> RunDir:
        if not self.path.is_dir():
            raise ConfigError(f"run directory '{self.path}' does not exist")
        if not self.exists():
            raise ConfigError(f"'{self.path}' is not a cnnlab run directory (no config.yaml in it)")
        return self

    def read_config(self) -> RunConfig:
        try:
            data = yaml.safe_load(self.config_path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{self.config_path}: invalid YAML ({exc})") from None
        return from_dict(data or {}, origin=str(self.config_path))

    def write_config(self, config: RunConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        save_config(config, self.config_path)

    def read_info(self) -> dict[str, Any]:
        if not self.info_path.is_file():
            return {}
        try:
            return json.loads(self.info_path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{self.info_path}: corrupt run.json ({exc})") from None

    def update_info(self, **values: Any) -> dict[str, Any]:
        info = {**self.read_info(), **values}
        atomic_write_text(self.info_path, json.dumps(info, indent=2, default=_jsonable) + "\n")
        return info


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, set)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)


def default_run_name(config: RunConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{config.model.name}-{config.data.name}-{stamp}"


def new_run_dir(runs_dir: str | Path, name: str | None, config: RunConfig, overwrite: bool = False) -> RunDir:
    """A fresh run directory. An explicit name that exists is refused (unless `overwrite`); a default
    name that collides gets a -2, -3 ... suffix."""
    runs_dir = Path(runs_dir)
    if name is not None:
        if not re.fullmatch(r"[\w.+-]+(/[\w.+-]+)*", name):
            raise ConfigError(f"run name '{name}' may only use letters, digits, '.', '_', '+', '-' and '/'")
        run = RunDir(runs_dir / name)
        if run.path.exists() and any(run.path.iterdir()) and not overwrite:
            raise ConfigError(
                f"run directory '{run.path}' already exists. Resume it with --resume {run.path}, "
                "choose another --name, or pass --overwrite to replace it"
            )
        if run.path.exists() and overwrite:
            _clear(run)
        return run
    base = default_run_name(config)
    candidate, index = runs_dir / base, 2
    while candidate.exists():
        candidate, index = runs_dir / f"{base}-{index}", index + 1
    return RunDir(candidate)


def _clear(run: RunDir) -> None:
    import shutil

    for child in run.path.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def versions() -> dict[str, str]:
    import numpy
    import torch
    import torchvision

    from .. import __version__

    return {"cnnlab": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}
