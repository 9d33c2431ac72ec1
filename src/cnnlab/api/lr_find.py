"""The learning-rate range test on a run's config (train/lr_find.py), and `optim.lr=find`: the test run
before training, its suggestion written into the run's config (so config.yaml, and a resume, hold the
number) and its result into run.json (`lr_find`)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import (
    RunConfig,
    flatten,
    keyword_layer,
    load_yaml_layer,
    parse_overrides,
    resolve,
    to_dict,
)
from ..errors import ConfigError
from ..io import atomic_write_text, check_name, make_dirs
from ..runs.lifecycle import prepare_session
from ..train.build import LoaderSpec, make_batches, make_optimizer
from ..train.lr_find import DEFAULT_RULE, MEASURED, RULES, RangeTest, Suggestion, exponential_rates, range_test

FIND = "find"  # optim.lr=find
LR_FIND_RULES = RULES  # rule -> how it reads the range test's curve (train/lr_find.py)
LR_FIND_RULE = DEFAULT_RULE  # the suggestion's rule unless one is asked for: the measured best
LR_FIND_MEASURED = MEASURED  # what the measurement of the rules says, in one line
FOLDER = "lr-find"  # runs/lr-find/<name>/: outside any run directory, so no run or study lists it


@dataclass(frozen=True)
class RangeSettings:
    start: float = 1e-7
    end: float = 10.0
    steps: int = 100
    rule: str = DEFAULT_RULE  # which reading of the curve is the suggestion (train/lr_find.py RULES)


@dataclass(frozen=True)
class LrFind:
    """What `lr_find` returns: the suggestion, the points, and where the CSV and the picture are."""

    suggestion: Suggestion
    test: RangeTest
    settings: RangeSettings
    csv: Path
    png: Path

    @property
    def lr(self) -> float | None:
        """The suggested rate; None when the test gives none (`suggestion.why` says why)."""
        return self.suggestion.lr

    @property
    def note(self) -> str | None:
        """What to say when the smoothed loss hardly fell over the range: the suggestion then rests on little
        (a small training set gives few batches in the decade where it learns; --start 1e-4 or more --steps
        help)."""
        if self.suggestion.falls or self.suggestion.lr is None:  # no suggestion: `why` says it
            return None
        return (f"the smoothed loss hardly fell between {self.settings.start:g} and {self.settings.end:g} (see "
                f"{self.png}); the suggestion rests on little: check the run with `cnnlab check --overfit`, or run "
                "`cnnlab lr-find --start 1e-4 --steps 200` and give optim.lr a number")

    def to_dict(self) -> dict[str, Any]:
        return {**self.suggestion.to_dict(), "start": self.settings.start, "end": self.settings.end,
                "steps": self.settings.steps, "steps_taken": len(self.test.rates), "stopped": self.test.stopped,
                "csv": str(self.csv), "png": str(self.png)}


def find_lr(config: RunConfig, folder: str | Path, settings: RangeSettings = RangeSettings()) -> LrFind:
    """The range test on `config`'s data, model and optimizer, built fresh as a run builds them (same seed):
    lr_find.csv and lr_find.png written into `folder`."""
    rates = exponential_rates(settings.start, settings.end, settings.steps)
    if settings.rule not in RULES:
        raise ConfigError(f"--rule must be one of {', '.join(RULES)}, not '{settings.rule}'")
    folder = make_dirs(folder)
    session = prepare_session(config)
    splits, runtime = session.splits, session.runtime
    batches = make_batches(splits.train, splits.spec, LoaderSpec.for_training(config), runtime, splits.cache)
    optimizer = make_optimizer(dataclasses.replace(config.optim, lr=settings.start), session.model)
    test = range_test(session.model, optimizer, batches, runtime, rates)
    suggestion = test.suggestion(settings.rule)
    smoothed = test.smoothed
    lines = ["lr,loss,smoothed_loss"] + [f"{r:.6g},{loss:.6g},{s:.6g}"
                                         for r, loss, s in zip(test.rates, test.losses, smoothed)]
    csv = folder / "lr_find.csv"
    atomic_write_text(csv, "\n".join(lines) + "\n")
    from ..viz.lr_find import plot_range_test

    marks = dict(suggestion.candidates)
    if suggestion.diverged_lr is not None:
        marks["diverged"] = suggestion.diverged_lr
    png = plot_range_test(test.rates, test.losses, smoothed, marks, suggestion.rule if suggestion.lr else "",
                          folder / "lr_find.png",
                          title=f"{config.model.name} on {config.data.name}, {config.optim.name}: {test.stopped}")
    return LrFind(suggestion, test, settings, csv, png)


def lr_find_folder(runs_dir: str | Path, name: str | None, config: RunConfig) -> Path:
    """runs/lr-find/NAME (default: model-data-time, the way runs are named)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(runs_dir) / FOLDER / check_name(name or f"{config.model.name}-{config.data.name}-{stamp}")


# --------------------------------------------------------------------------------------- optim.lr=find
def asks_lr_find(config: Any, overrides: Sequence[str], keywords: Mapping[str, Any]) -> bool:
    """Whether the config's layers (the file, then overrides, then keywords) leave optim.lr at 'find'."""
    value = None
    for layer in _layers(config, overrides, keywords):
        if "optim.lr" in layer:
            value = layer["optim.lr"][0]
    return isinstance(value, str) and value.strip().lower() == FIND


def config_for_lr_find(config: Any, overrides: Sequence[str], keywords: Mapping[str, Any]) -> RunConfig:
    """The config with optim.lr left out (the optimizer's default stands in until the test has run)."""
    layers = _layers(config, overrides, keywords)
    for layer in layers:
        layer.pop("optim.lr", None)
    return resolve(*layers)


def _layers(config: Any, overrides: Sequence[str], keywords: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The layers make_config resolves (config.load_config's order)."""
    if isinstance(config, RunConfig):
        first = [flatten(to_dict(config))]
    else:
        first = [load_yaml_layer(config)] if config else []
    return [*first, parse_overrides(overrides), keyword_layer(keywords)]


def lr_found_config(config: RunConfig, found: LrFind) -> RunConfig:
    """The config with the suggestion as optim.lr; a test that gives none stops the run, saying why."""
    if found.lr is None:
        raise ConfigError(f"optim.lr=find: no suggestion: {found.suggestion.why} (the range test's curve: "
                          f"{found.png})")
    return dataclasses.replace(config, optim=dataclasses.replace(config.optim, lr=found.lr))
