"""One run, end to end: a resolved config in, a run directory out.

`start_run` checks everything it can before it creates anything (config, data, model and weights, the
early-stopping setup, that the disk takes the checkpoints), then creates the run directory, takes its
lock, and trains with the standard callbacks (console, metrics.csv, steps.csv, checkpoints). `resume_run`
takes the lock of an existing run and continues from its last checkpoint (or the one before it). Both
score the test set when the run finishes and keep run.json (the RunRecord) true at every step: a run
that raises is recorded as failed, with the reason, before the error reaches the caller.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from .. import html
from ..config import RunConfig, config_hash
from ..data import DataSplits
from ..errors import CnnlabError, ConfigError, DataError, PeerLost
from ..io import atomic_write_json, check_writable, owner_identity
from ..models import count_parameters
from ..models.transfer import freeze, reset_head
from ..models.weights import load_weights
from ..train import (
    Callback,
    Checkpointer,
    Console,
    MetricsCSV,
    Runtime,
    Status,
    StepLosses,
    TensorBoard,
    Trainer,
    distributed,
    resolve_runtime,
    seed_everything,
)
from ..train.build import (
    LoaderSpec,
    checkpoint_bytes,
    make_batches,
    make_model,
    make_optimizer,
    splits_of,
    train_batch_size,
)
from ..train.checkpoint import load_checkpoint, split_prefix
from ..train.distributed import World, world_from_env
from ..train.early_stop import EarlyStopping
from ..train.early_stop import check as check_early_stop
from ..train.interrupts import STOP
from .directory import RunDir, create_run_dir
from .predictions import write_predictions
from .record import RunRecord
from .versions import versions

EXIT_CODES = {Status.COMPLETED: 0, Status.STOPPED_EARLY: 0, Status.DIVERGED: 3}


@dataclass
class TrainResult:
    """What `cnnlab.train` returns: where the run went, its record, and its epoch history."""

    run_dir: Path
    record: RunRecord
    history: list[dict[str, Any]] = field(default_factory=list)
    interrupt_signal: int | None = None

    status = property(lambda self: self.record.status)
    reason = property(lambda self: self.record.reason)
    test = property(lambda self: self.record.test)  # loss, acc, top5, count (None if not reached)
    best_epoch = property(lambda self: self.record.best_epoch)
    seconds = property(lambda self: self.record.wall_seconds)
    train_seconds = property(lambda self: self.record.train_seconds)
    images_per_second = property(lambda self: self.record.images_per_second)

    @property
    def accuracy(self) -> float | None:
        return None if self.test is None else self.test["acc"]

    @property
    def exit_code(self) -> int:
        if self.status == Status.INTERRUPTED:
            return 128 + (self.interrupt_signal or 2)  # 130 for SIGINT, 143 for SIGTERM
        return EXIT_CODES.get(self.status, 1)

    def _repr_html_(self) -> str:  # a notebook shows the result as a table (cnnlab/html.py)
        return html.fields({"run directory": str(self.run_dir), **self.record.summary()}, "cnnlab.train")


@dataclass
class Session:
    """Everything a run trains with, built and checked before the run directory is touched."""

    config: RunConfig
    runtime: Runtime
    splits: DataSplits
    model: nn.Module
    facts: dict[str, Any]  # RunRecord fields known before training: weights, freeze, skipped files


def restores_best(config: RunConfig) -> bool:
    """Whether the test score uses the best epoch's weights rather than the last."""
    return config.train.restore_best or (config.stop.criterion != "none" and config.stop.restore_best)


# ---------------------------------------------------------------------------------------- sessions
def prepare_session(config: RunConfig, resuming: bool = False, quiet: bool = True,
                    world: World = distributed.SINGLE) -> Session:
    """Data, model (with its starting weights), and every check that needs them; creates no file."""
    runtime = resolve_runtime(config)
    seed_everything(config.seed)
    splits = splits_of(config)
    check_early_stop(config.stop, splits.val is not None)
    if config.train.tensorboard:
        TensorBoard.require()
    model = make_model(config.model, splits.spec, runtime)
    if world.active:
        distributed.rank_batch(train_batch_size(config.train.batch_size, len(splits.train)), world)
        if config.model.sync_bn:
            if runtime.device.type != "cuda":
                raise ConfigError("model.sync_bn=true needs CUDA devices (SyncBatchNorm runs on NCCL); on the CPU "
                                  "each process keeps its own batch-norm statistics: leave it false")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        distributed.init(world, runtime.device)
    if not quiet:  # where the data came from, always said: a copy found elsewhere is never a silent surprise
        sizes = ", ".join(f"{count:,} {name}" for name, count in splits.spec.sizes.items() if count)
        print(f"data: {splits.spec.dataset} from {splits.spec.source} ({sizes})")
    facts: dict[str, Any] = {}
    if splits.bad_files or splits.notes:
        facts.update(skipped_files=splits.bad_files, data_notes=list(splits.notes))
    if not resuming and config.model.weights:
        report = load_weights(model, config.model.weights)
        facts["weights"] = report.to_dict()
        if not quiet:
            print(f"weights: {report.summary()}")
    if not resuming and config.model.reset_head:
        reset_head(model)
    if config.model.freeze != "none":  # on resume too: requires_grad is not part of a checkpoint
        facts["freeze"] = {"mode": config.model.freeze, **freeze(model, config.model.freeze)}
    train_batch_size(config.train.batch_size, len(splits.train))
    return Session(config, runtime, splits, model, facts)


def start_run(config: RunConfig, run: RunDir | None, *, runs_dir: str | Path | None = None,
              overwrite: bool = False, named: bool = True, quiet: bool = False,
              callbacks: Sequence[Callback] = ()) -> TrainResult:
    """A new run into `run` (planned by runs.directory.plan_run_dir). In a distributed run (torchrun) the
    ranks other than 0 pass run=None: they train their share and write nothing."""
    started = time.perf_counter()
    world = world_from_env()
    if not world.main:
        return _train(prepare_session(config, world=world), run, None, True, (), started, world)
    session = prepare_session(config, quiet=quiet, world=world)
    runs_dir = Path(runs_dir) if runs_dir is not None else run.path.parent
    check_writable(runs_dir, checkpoint_bytes(config.model, session.splits.spec))
    owned = run.lock.held
    run = create_run_dir(run, runs_dir, overwrite, named)
    try:
        # run.json first: a process killed at any later moment leaves a folder that is recognisably a
        # cnnlab run (crashed, restartable), never one that --overwrite must refuse as someone else's
        run.save(RunRecord(owner=owner_identity(), run_dir=str(run.path), config_hash=config_hash(config),
                           started=time.strftime("%Y-%m-%dT%H:%M:%S")))
        run.write_config(config)
        return _train(session, run, None, quiet, callbacks, started, world)
    finally:
        if not owned:
            run.release()


def resume_run(config: RunConfig, run: RunDir, *, quiet: bool = False, callbacks: Sequence[Callback] = (),
               checkpoint: str = "last") -> TrainResult:
    """Continue `run` from its `checkpoint` ('last' or 'previous') with `config` (already checked)."""
    started = time.perf_counter()
    world = world_from_env()
    if not world.main:  # rank 0 owns the directory; the others only read the checkpoint
        state = _resume_checkpoint(run, checkpoint)
        return _train(prepare_session(config, resuming=True, world=world), run, state, True, (), started, world)
    owned = run.lock.held
    run.require_claim()
    try:
        state = _resume_checkpoint(run, checkpoint)
        session = prepare_session(config, resuming=True, quiet=quiet, world=world)
        run.write_config(config)
        return _train(session, run, state, quiet, callbacks, started, world)
    finally:
        if not owned:
            run.release()


def _resume_checkpoint(run: RunDir, which: str) -> tuple[dict, dict]:
    path = {"last": run.last, "previous": run.previous}.get(which)
    if path is None:
        raise ConfigError(f"--checkpoint for a resume is last or previous, not '{which}'")
    if not path.is_file():
        raise ConfigError(
            f"'{run.path}' has no checkpoint to resume from ({path} is missing: the run stopped before its "
            "first checkpoint). Start it again as a new run (same --name with --overwrite)."
        )
    try:
        return load_checkpoint(path)
    except DataError as exc:
        offer = ""
        if which == "last" and run.previous.is_file():
            try:
                _, meta = load_checkpoint(run.previous)
                epoch = meta.get("state", {}).get("epoch")
                offer = (f"\nThe checkpoint before it, {run.previous} (epoch {epoch}), is intact: continue from "
                         f"it with `cnnlab train --resume {run.path} --checkpoint previous`.")
            except DataError:
                offer = f"\n{run.previous} is damaged too; start the run again."
        raise DataError(f"{exc}{offer}") from None


# ---------------------------------------------------------------------------------------- training
def _train(session: Session, run: RunDir | None, checkpoint: tuple[dict, dict] | None, quiet: bool,
           callbacks: Sequence[Callback], started: float, world: World = distributed.SINGLE) -> TrainResult:
    config, runtime, splits = session.config, session.runtime, session.splits
    loader = dataclasses.replace(LoaderSpec.for_training(config), shard=(world.rank, world.size))
    train = make_batches(splits.train, splits.spec, loader, runtime, splits.cache)
    val_loader = LoaderSpec.for_evaluation(config)
    val = make_batches(splits.val, splits.spec, val_loader, runtime, splits.cache) if splits.val is not None else None
    scaled = config.optim.lr * distributed.lr_factor(config.optim.lr_scaling, world)
    optimizer = make_optimizer(dataclasses.replace(config.optim, lr=scaled), session.model)
    stopping: list[Callback] = [EarlyStopping(config.stop)] if config.stop.criterion != "none" else []
    if not world.main:  # the same decisions from the same all-reduced numbers; no file written
        trainer = Trainer(session.model, optimizer, train, val, config, runtime, stopping, world)
        trainer.num_classes = splits.spec.num_classes
        if checkpoint is not None:
            trainer.restore(*checkpoint)
        try:
            status = trainer.fit()
        except Exception as exc:
            if distributed.lost_peer(exc, world):
                raise _peer_lost(exc, run) from None
            raise
        return TrainResult(run.path if run else Path("."), RunRecord(status=status, reason=trainer.reason),
                           list(trainer.state.history), trainer.interrupt_signal)
    if splits.split_record is not None:  # folder datasets: the exact file lists, for evaluation later
        atomic_write_json(run.path / "split.json", splits.split_record)
    digest = config_hash(config)
    standard: list[Callback] = [Console(quiet), MetricsCSV(run.metrics_path), StepLosses(run.steps_path),
                                Checkpointer(run.checkpoints, digest, config.train.keep_epochs)]
    if config.train.tensorboard:
        standard.append(TensorBoard(run.path / "tensorboard"))
    trainer = Trainer(session.model, optimizer, train, val, config, runtime, [*standard, *stopping, *callbacks],
                      world)
    trainer.num_classes = splits.spec.num_classes
    if checkpoint is not None:
        trainer.restore(*checkpoint)
    graphs = trainer.facts.get("graphs")
    if graphs and not graphs["used"] and not quiet:
        print(f"note: {graphs['why']}; training eagerly")
    beyond = sorted(e for e in config.train.keep_epochs if e > config.train.epochs)
    if beyond and not quiet:  # not an error: a resume may raise epochs, and a retraining shortens them
        print(f"note: train.keep_epochs {beyond} lie beyond epochs={config.train.epochs}: those weights are not kept "
              "unless the run is resumed with more epochs")
    session.facts["world_size"] = world.size
    base = run.record() or RunRecord()
    record = run.save(base.updated(
        status=Status.RUNNING, reason="", config_hash=digest, seed=config.seed, device=runtime.describe(),
        precision=runtime.precision, channels_last=runtime.channels_last, versions=versions(),
        parameters=count_parameters(session.model), data=splits.spec.to_dict(), run_dir=str(run.path),
        owner=owner_identity(), started=base.started or time.strftime("%Y-%m-%dT%H:%M:%S"),
        sessions=base.sessions + 1, ended=None, traceback=None, **session.facts,
    ))
    with STOP.watching():  # until run.json is final: a signal after the last epoch lets the run finish
        try:
            status = trainer.fit()
            test = _score_test(trainer, run, splits, config, runtime) if status.scored else None
        except CnnlabError as exc:
            _record_failure(run, record.updated(status=Status.FAILED, reason=str(exc).splitlines()[0],
                                                **trainer.facts))
            raise
        except Exception as exc:
            if distributed.lost_peer(exc, world):  # run.json stays 'running': crashed, resumable, not failed
                raise _peer_lost(exc, run) from None
            _record_failure(run, record.updated(status=Status.FAILED, reason=f"{type(exc).__name__}: {exc}",
                                                traceback=traceback.format_exc(limit=12), **trainer.facts))
            raise
        wall = base.wall_seconds + time.perf_counter() - started
        return _finish(trainer, run, record, test, wall)


def _peer_lost(exc: Exception, run: RunDir | None) -> PeerLost:
    """The one line a rank says when another rank is gone: what the backend saw, without its source paths."""
    where = f"cnnlab train --resume {run.path}" if run is not None else "cnnlab train --resume RUN_DIR"
    seen = distributed.peer_reason(exc)
    return PeerLost(f"another process of this distributed run ended ({seen}); the run continues from its last "
                    f"checkpoint with {where}")


def _record_failure(run: RunDir, record: RunRecord) -> None:
    """Write the failure into run.json if the disk lets us; if not (it is full), the run reads as crashed
    once this process is gone, which is as resumable, and the original error is the one to report."""
    try:
        run.save(record)
    except OSError:
        pass


def _score_test(trainer: Trainer, run: RunDir, splits: DataSplits, config: RunConfig,
                runtime: Runtime) -> dict[str, float]:
    if restores_best(config) and run.best.is_file():
        tensors, _ = load_checkpoint(run.best)
        trainer.model.load_state_dict(split_prefix(tensors, "model."))
    loader = make_batches(splits.test, splits.spec, LoaderSpec.for_evaluation(config), runtime, splits.cache)
    metrics = trainer.evaluate(loader, per_image=True)
    write_predictions(run.path, {"test": metrics})  # for the verdicts: two runs compared image by image
    return {k: metrics[k] for k in ("loss", "acc", "top5", "count")}


def _finish(trainer: Trainer, run: RunDir, record: RunRecord, test: dict[str, float] | None,
            wall: float) -> TrainResult:
    state = trainer.state
    images = state.step * trainer.train_batches.batch_size
    speed = images / state.train_seconds if state.train_seconds > 0 else 0.0
    last = state.history[-1] if state.history else {}
    record = run.save(record.updated(
        status=trainer.status, reason=trainer.reason, epochs_completed=state.epoch, steps=state.step,
        best_epoch=state.best_epoch, monitor=trainer.monitor,
        final={k: last.get(k) for k in ("train_loss", "train_acc", "val_loss", "val_acc", "val_top5")},
        test=test, train_seconds=state.train_seconds, wall_seconds=wall, images_per_second=speed,
        ended=time.strftime("%Y-%m-%dT%H:%M:%S"), **trainer.facts,
    ))
    return TrainResult(run.path, record, list(state.history), trainer.interrupt_signal)
