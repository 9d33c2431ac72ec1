"""`cnnlab check` (train/checks.py on a config: the cheap checks, leakage over every split, and the
overfit-one-batch test) and `cnnlab lr-find` (api/lr_find.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..errors import ConfigError
from ..runs.lifecycle import prepare_session
from ..train.build import make_optimizer, train_batch_size
from ..train.checks import SAMPLE_IMAGES, Check, cheap_checks, overfit_one_batch, sample_batch
from ..train.lr_find import DEFAULT_RULE
from .lr_find import FIND, LrFind, RangeSettings, asks_lr_find, config_for_lr_find, find_lr, lr_find_folder
from .training import make_config


@dataclass
class CheckReport:
    config: RunConfig
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "failed"]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "warning"]


def check(config: str | Path | RunConfig | None = None, overrides: Sequence[str] = (), *, overfit: bool = False,
          overfit_steps: int = 200, leakage: bool = True, examples: int = 5, **keywords: Any) -> CheckReport:
    """The checks of train/checks.py on the run `config` would start: labels, loss at initialisation,
    class balance, input statistics, leakage (over image files too, unless `leakage=False`), and with
    `overfit` the one-batch test (`overfit_steps` at most). Nothing is written; the model is not kept."""
    if overfit_steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {overfit_steps}")
    if asks_lr_find(config, overrides, keywords):
        raise ConfigError(f"optim.lr={FIND} is for `cnnlab train`; `cnnlab check` needs a number (find one with "
                          "`cnnlab lr-find`)")
    cfg = make_config(config, overrides, **keywords)
    session = prepare_session(cfg)
    report = CheckReport(cfg, cheap_checks(session.model, session.splits, session.runtime, cfg, leakage, examples))
    if overfit:
        splits = session.splits
        size = min(train_batch_size(cfg.train.batch_size, len(splits.train)), SAMPLE_IMAGES)
        images, labels = sample_batch(splits.train, splits.spec, session.runtime, size, cfg.seed)
        optimizer = make_optimizer(cfg.optim, session.model)
        report.checks.append(overfit_one_batch(session.model, optimizer, images, labels, session.runtime,
                                               overfit_steps))
    return report


def lr_find(config: str | Path | RunConfig | None = None, overrides: Sequence[str] = (), *, start: float = 1e-7,
            end: float = 10.0, steps: int = 100, name: str | None = None, runs_dir: str | Path = "runs",
            rule: str = DEFAULT_RULE, **keywords: Any) -> LrFind:
    """Smith's range test on the run `config` would start (train/lr_find.py); writes
    RUNS_DIR/lr-find/NAME/lr_find.csv and lr_find.png. The model is built fresh and restored after the test.
    The suggestion is `rule`'s reading of the curve (valley, steepest, minimum/10: train/lr_find.py); the
    others are in `.suggestion.alternatives`; `.lr` is None when the test gives none (`.suggestion.why`)."""
    if asks_lr_find(config, overrides, keywords):  # the test sets every lr itself: optim.lr=find is welcome
        cfg = config_for_lr_find(config, overrides, keywords)
    else:
        cfg = make_config(config, overrides, **keywords)
    return find_lr(cfg, lr_find_folder(runs_dir, name, cfg), RangeSettings(start, end, steps, rule))
