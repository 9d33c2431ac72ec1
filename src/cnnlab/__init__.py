"""cnnlab: build, train, tune, evaluate, compare and explain CNNs for image classification.

The names below load on first use (PEP 562), so `import cnnlab` and the `cnnlab` program's start are light
until torch is needed: the program can then decide how a Ctrl-C during that start ends (cnnlab/_entry.py).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from ._version import __version__

_EXPORTS = {
    ".api": ("check", "evaluate", "export", "load_run", "lr_find", "make_config", "predict", "study", "train", "tune"),
    ".config": ("RunConfig",),
    ".data": ("DATASETS",),
    ".errors": ("CnnlabError", "ConfigError", "DataError", "RunBusy", "StorageError"),
    ".log": ("show_messages",),
    ".models": ("MODELS",),
    ".optim": ("OPTIMIZERS", "SCHEDULES"),
    ".runs": ("History", "Run", "RunRecord", "Status", "TrainResult"),
    ".train": ("Callback",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "DATASETS", "MODELS", "OPTIMIZERS", "SCHEDULES", "Callback", "CnnlabError", "ConfigError", "DataError", "History",
    "Run", "RunBusy", "RunConfig", "RunRecord", "Status", "StorageError", "TrainResult", "__version__", "check",
    "evaluate", "export", "load_run", "lr_find", "make_config", "predict", "show_messages", "study", "train", "tune",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'cnnlab' has no attribute '{name}'")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value  # found once
    return value


def __dir__() -> list[str]:  # the public names, not this file's helpers
    return sorted(__all__)


class _Package(types.ModuleType):
    """`cnnlab.train` and `cnnlab.evaluate` are functions and also the names of subpackages: importing a
    subpackage binds it onto its parent, which would hide the function. The function keeps the name (as
    when this file imported the API eagerly and bound it last)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _WHERE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:  # what type checkers and editors see
    from .api import evaluate, export, load_run, make_config, predict, study, train, tune
    from .api.checks import check, lr_find  # (cnnlab.api.lr_find is also a module's name)
    from .config import RunConfig
    from .data import DATASETS
    from .errors import CnnlabError, ConfigError, DataError, RunBusy, StorageError
    from .log import show_messages
    from .models import MODELS
    from .optim import OPTIMIZERS, SCHEDULES
    from .runs import History, Run, RunRecord, Status, TrainResult
    from .train import Callback
