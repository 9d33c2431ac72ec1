"""A run's session, before it trains: its data, model and starting weights, built and checked before anything
is written (`prepare_session`), what run.json will say of it (`SessionFacts`), and the cheap checks at its start.
runs/lifecycle.py trains it into a run directory; `cnnlab check` and `lr-find` use it without one."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..config import RunConfig
from ..data import DataSplits
from ..errors import ConfigError
from ..log import get as get_logger
from ..models.transfer import freeze, reset_head
from ..models.weights import load_weights
from ..train import Runtime, TensorBoard, distributed, resolve_runtime, seed_everything, tracking
from ..train.build import make_model, splits_of, train_batch_size
from ..train.checks import cheap_checks
from ..train.distributed import World
from ..train.early_stop import check as check_early_stop
from ..train.step import steps_per_epoch

LOG = get_logger("cnnlab.runs.lifecycle")  # the run's messages, as they were before this module was split off


@dataclass(frozen=True)
class SessionFacts:
    """What run.json says of a session before it trains (RunRecord fields of the same names)."""

    world_size: int = 1
    weights: dict[str, Any] | None = None  # what model.weights loaded (a WeightsReport)
    freeze: dict[str, Any] | None = None  # model.freeze: the mode and parameter counts
    skipped_files: dict[str, str] | None = None  # data.skip_bad: file -> problem
    data_notes: list[str] | None = None
    checks: dict[str, Any] | None = None  # train/checks.py at the start (a resume keeps the start's)
    lr_find: dict[str, Any] | None = None  # optim.lr=find: the range test's suggestion


@dataclass
class Session:
    """Everything a run trains with, built and checked before the run directory is touched."""

    config: RunConfig
    runtime: Runtime
    splits: DataSplits
    model: nn.Module
    facts: SessionFacts
    tracked: bool = False  # logs to MLflow: asked for, and its store probed writable before the first epoch


def restores_best(config: RunConfig) -> bool:
    """Whether the test score uses the best epoch's weights rather than the last."""
    return config.train.restore_best or (config.stop.criterion != "none" and config.stop.restore_best)


def prepare_session(config: RunConfig, resuming: bool = False, world: World = distributed.SINGLE) -> Session:
    """Data, model (with its starting weights), and every check that needs them; creates no file."""
    runtime = resolve_runtime(config)
    seed_everything(config.seed)
    splits = splits_of(config)
    check_early_stop(config.stop, splits.val is not None)
    if config.train.tensorboard:
        TensorBoard.require()
    if tracking.wanted(config):
        tracking.require()
    model = make_model(config.model, splits.spec, runtime)
    if world.active:
        distributed.rank_batch(train_batch_size(config.train.batch_size, len(splits.train)), world)
        if config.model.sync_bn:
            if runtime.device.type != "cuda":
                raise ConfigError("model.sync_bn=true needs CUDA devices (SyncBatchNorm runs on NCCL); on the CPU "
                                  "each process keeps its own batch-norm statistics: leave it false")
            # torch leaves convert_sync_batchnorm unannotated
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[no-untyped-call]
        distributed.init(world, runtime.device)
    # where the data came from, always said: a copy found elsewhere is never a silent surprise
    sizes = ", ".join(f"{count:,} {name}" for name, count in splits.spec.sizes.items() if count)
    LOG.info(f"data: {splits.spec.dataset} from {splits.spec.source} ({sizes})")
    for note in splits.notes:  # what the data left out, and the data keys that cannot act on it: said, not only kept
        LOG.info(f"note: {note}")
    facts = SessionFacts(world_size=world.size)
    if splits.bad_files or splits.notes:
        facts = dataclasses.replace(facts, skipped_files=splits.bad_files, data_notes=list(splits.notes))
    if not resuming and config.model.weights:
        report = load_weights(model, config.model.weights, config.model.name,
                              progress=LOG.isEnabledFor(logging.INFO))  # off under --quiet and in studies' runs
        facts = dataclasses.replace(facts, weights=report.to_dict())
        LOG.info(f"weights: {report.summary()}")
    if not resuming and config.model.reset_head:
        reset_head(model)
    if config.model.freeze != "none":  # on resume too: requires_grad is not part of a checkpoint
        facts = dataclasses.replace(facts, freeze={"mode": config.model.freeze, **freeze(model, config.model.freeze)})
    steps_per_epoch(len(splits.train) // train_batch_size(config.train.batch_size, len(splits.train)),
                    config.train.grad_accum_steps)  # refused before the run directory exists
    return Session(config, runtime, splits, model, facts)


def start_checks(session: Session) -> dict[str, Any]:
    """The cheap checks (train/checks.py) for run.json's `checks`; a warning is one line, never an error."""
    try:
        checks = cheap_checks(session.model, session.splits, session.runtime, session.config)
    except Exception as exc:  # a check must not stop a run; whatever broke it, training meets it next
        LOG.warning(f"check: skipped ({type(exc).__name__}: {exc})")
        return {"skipped": f"{type(exc).__name__}: {exc}"}
    for check in checks:
        if check.status != "ok":
            LOG.warning(f"check: {check.name.replace('_', ' ')}: {check.summary}")
    return {check.name: check.to_dict() for check in checks}
