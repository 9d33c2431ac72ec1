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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import html
from ..config import RunConfig, config_hash
from ..errors import CnnlabError, ConfigError, DataError, PeerLost, command_line
from ..io import atomic_write_json, check_writable, owner_identity
from ..log import get as get_logger
from ..log import quiet as quieted
from ..models import count_parameters
from ..train import (
    Callback,
    Checkpointer,
    Console,
    FitResult,
    MetricsCSV,
    Status,
    StepLosses,
    TensorBoard,
    Trainer,
    distributed,
    tracking,
)
from ..train.build import (
    LoaderSpec,
    checkpoint_bytes,
    make_batches,
    make_optimizer,
)
from ..train.callbacks import hparams_of
from ..train.checkpoint import load_checkpoint, split_prefix
from ..train.distributed import World, world_from_env
from ..train.early_stop import EarlyStopping
from ..train.interrupts import STOP
from ..train.recipe import recipe_notes, recipe_record
from .changes import change_entry, check_resumable
from .directory import RunDir, create_run_dir
from .history import History
from .identity import check_checkpoint, new_run_id, recorded_files, run_metrics, run_step_losses
from .predictions import write_predictions
from .record import RunRecord
from .session import Session, prepare_session, restores_best, start_checks
from .versions import versions

LOG = get_logger(__name__)
__all__ = ["EXIT_CODES", "Session", "TrainResult", "prepare_session", "restores_best", "resume_run", "start_checks",
           "start_run"]  # prepare_session and restores_best live in runs/session.py; imported from here too
EXIT_CODES = {Status.COMPLETED: 0, Status.STOPPED_EARLY: 0, Status.DIVERGED: 3}


@dataclass
class TrainResult:
    """What `cnnlab.train` returns: where the run went, its record, and its epoch history."""

    run_dir: Path
    record: RunRecord
    history: History = field(default_factory=History)  # one row per epoch: a list of dicts and a table
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


def start_run(config: RunConfig, run: RunDir | None, *, runs_dir: str | Path | None = None,
              overwrite: bool = False, named: bool = True, quiet: bool = False,
              callbacks: Sequence[Callback] = (), facts: Mapping[str, Any] | None = None) -> TrainResult:
    """A new run into `run` (planned by runs.directory.plan_run_dir). In a distributed run (torchrun) the
    ranks other than 0 pass run=None: they train their share and write nothing. `quiet`: no per-epoch
    lines, data line or notes (cnnlab.log.quiet). `facts`: RunRecord fields known before the run starts
    (the lr finder's result)."""
    started = time.perf_counter()
    world = world_from_env()
    with quieted(quiet or not world.main):
        if not world.main:
            return _train(prepare_session(config, world=world), run, None, (), started, world)
        assert run is not None, "rank 0 trains into a run directory"  # only the other ranks pass none
        session = prepare_session(config, world=world)
        session.facts = dataclasses.replace(session.facts, checks=start_checks(session), **(facts or {}))
        runs_dir = Path(runs_dir) if runs_dir is not None else run.path.parent
        slots = 2 + (config.train.ema_decay > 0)  # the EMA: one more copy of the weights in each checkpoint
        check_writable(runs_dir, checkpoint_bytes(config.model, session.splits.spec, slots))
        session.tracked = tracking.check_store(config, run.path)
        owned = run.lock.held
        run = create_run_dir(run, runs_dir, overwrite, named)
        try:
            # run.json first: a process killed at any later moment leaves a folder that is recognisably a
            # cnnlab run (crashed, restartable), never one that --overwrite must refuse as someone else's
            run.save(RunRecord(owner=owner_identity(), run_dir=str(run.path), config_hash=config_hash(config),
                               started=time.strftime("%Y-%m-%dT%H:%M:%S"), run_id=new_run_id()))
            run.write_config(config)
            return _train(session, run, None, callbacks, started, world)
        finally:
            if not owned:
                run.release()


def resume_run(config: RunConfig, run: RunDir, *, quiet: bool = False, callbacks: Sequence[Callback] = (),
               checkpoint: str = "last", allow_config_change: bool = False) -> TrainResult:
    """Continue `run` from its `checkpoint` ('last' or 'previous') with `config` (already checked against
    the run's config.yaml). The checkpoint must be the run's own (runs/identity.py). With `allow_config_change`,
    the settings `config` changes must be ones a resume can apply (runs/changes.py); they are recorded in
    run.json's `config_changes` with the epoch they take effect from."""
    started = time.perf_counter()
    world = world_from_env()
    with quieted(quiet or not world.main):
        if not world.main:  # rank 0 owns the directory; the others only read the checkpoint
            state = _resume_checkpoint(run, checkpoint)
            return _train(prepare_session(config, resuming=True, world=world), run, state, (), started, world)
        owned = run.lock.held
        run.require_claim()
        try:
            saved = run.read_config()
            changes = check_resumable(run.path, saved, config) if allow_config_change else []
            state = _resume_checkpoint(run, checkpoint)
            session = prepare_session(config, resuming=True, world=world)
            session.tracked = tracking.check_store(config, run.path)
            record = run.record() or RunRecord()
            entries = [change_entry(changes, saved, config, state[1].get("state", {}))] if changes else []
            for entry in entries:
                LOG.info(f"note: from epoch {entry['epoch']} on: {'; '.join(changes)}")
            run.save(record.updated(run_id=record.run_id or new_run_id(),
                                    config_changes=[*record.config_changes, *entries]))
            run.write_config(config)
            return _train(session, run, state, callbacks, started, world)
        finally:
            if not owned:
                run.release()


def _resume_checkpoint(run: RunDir, which: str) -> tuple[dict[str, Any], dict[str, Any]]:
    path = {"last": run.last, "previous": run.previous}.get(which)
    if path is None:
        raise ConfigError(f"--checkpoint for a resume is last or previous, not '{which}'")
    if not path.is_file():
        raise ConfigError(
            f"'{run.path}' has no checkpoint to resume from ({path} is missing: the run stopped before its "
            "first checkpoint). Start it again as a new run (same --name with --overwrite)."
        )
    try:
        tensors, meta = load_checkpoint(path)
    except DataError as exc:
        offer = ""
        if which == "last" and run.previous.is_file():
            try:
                _, meta = load_checkpoint(run.previous)
                epoch = meta.get("state", {}).get("epoch")
                offer = (f"\nThe checkpoint before it, {run.previous} (epoch {epoch}), is intact: continue from "
                         f"it with `{command_line('train', '--resume', run.path, '--checkpoint', 'previous')}`.")
            except DataError:
                offer = f"\n{run.previous} is damaged too; start the run again."
        raise DataError(f"{exc}{offer}") from None
    if "optimizer" not in meta:  # weights only: `cnnlab average` made this run
        raise ConfigError(f"'{run.path}' holds averaged weights without a training state to continue from: train "
                          f"its source run further, or start a new run from them with model.weights={path}")
    # a checkpoint of another run (copied in, or the run's folder replaced) would otherwise continue silently
    # under settings and a history it never had: refused whatever --allow-config-change says; so are curves
    # files the resume would extend that are not the run's (or not readable)
    check_checkpoint(run, path, meta)
    run_metrics(run.path)
    run_step_losses(run.path)
    return tensors, meta


# ---------------------------------------------------------------------------------------- training
def _train(session: Session, run: RunDir | None, checkpoint: tuple[dict[str, Any], dict[str, Any]] | None,
           callbacks: Sequence[Callback], started: float, world: World = distributed.SINGLE) -> TrainResult:
    trainer = _trainer(session, run, checkpoint, callbacks, world)
    if not world.main:
        return _train_other_rank(trainer, run, world)
    assert run is not None, "rank 0 trains into a run directory"
    return _train_main(trainer, session, run, started, world)


def _trainer(session: Session, run: RunDir | None, checkpoint: tuple[dict[str, Any], dict[str, Any]] | None,
             callbacks: Sequence[Callback], world: World) -> Trainer:
    """The Trainer of a session, restored from `checkpoint`. Rank 0 gets the standard callbacks (console,
    metrics.csv, steps.csv, checkpoints, TensorBoard); every rank gets early stopping, which decides alike on
    every rank from the same all-reduced numbers."""
    config, runtime, splits = session.config, session.runtime, session.splits
    loader = dataclasses.replace(LoaderSpec.for_training(config), shard=(world.rank, world.size))
    train = make_batches(splits.train, splits.spec, loader, runtime, splits.cache)
    val_loader = LoaderSpec.for_evaluation(config)
    val = make_batches(splits.val, splits.spec, val_loader, runtime, splits.cache) if splits.val is not None else None
    scaled = config.optim.lr * distributed.lr_factor(config.optim.lr_scaling, world)
    optimizer = make_optimizer(dataclasses.replace(config.optim, lr=scaled), session.model)
    stopping: list[Callback] = [EarlyStopping(config.stop)] if config.stop.criterion != "none" else []
    standard: list[Callback] = []
    if world.main and run is not None:  # rank 0 writes the run directory; the others have none
        run_id = (run.record() or RunRecord()).run_id
        standard = [Console(), MetricsCSV(run.metrics_path, ema=config.train.ema_decay > 0), StepLosses(run.steps_path),
                    Checkpointer(run.checkpoints, config_hash(config), config.train.keep_epochs, run_id)]
        if config.train.tensorboard:
            standard.append(TensorBoard(run.path / "tensorboard", hparams_of(tracking.params_plain(config))))
        if session.tracked:
            standard.append(tracking.MLflowTracking(config, run.path))
    trainer = Trainer(session.model, optimizer, train, val, config, runtime, [*standard, *stopping, *callbacks],
                      world)
    trainer.num_classes = splits.spec.num_classes
    trainer.input_shape = (splits.spec.channels, splits.spec.image_size, splits.spec.image_size)
    if checkpoint is not None:
        trainer.restore(*checkpoint)
    return trainer


def _train_other_rank(trainer: Trainer, run: RunDir | None, world: World) -> TrainResult:
    """A rank other than 0: trains its share and writes nothing; its result is rank 0's."""
    try:
        result = trainer.fit()
    except Exception as exc:
        if distributed.lost_peer(exc, world):
            raise _peer_lost(exc, run) from None
        raise
    return TrainResult(run.path if run else Path("."), RunRecord().with_fit(result), History(result.history),
                       result.interrupt_signal)


def _train_main(trainer: Trainer, session: Session, run: RunDir, started: float, world: World) -> TrainResult:
    """Rank 0 (or the only process): run.json says 'running', then training, the test set, and the end."""
    config, splits = session.config, session.splits
    if splits.split_record is not None:  # folder datasets: the exact file lists, for evaluation later
        atomic_write_json(run.path / "split.json", splits.split_record)
    _say_notes(trainer, config)
    base = run.record() or RunRecord()
    facts = session.facts
    record = run.save(base.updated(
        status=Status.RUNNING, reason="", config_hash=config_hash(config), seed=config.seed,
        device=session.runtime.describe(), precision=session.runtime.precision,
        channels_last=session.runtime.channels_last, versions=versions(), parameters=count_parameters(session.model),
        data=splits.spec.to_dict(), run_dir=str(run.path), owner=owner_identity(),
        started=base.started or time.strftime("%Y-%m-%dT%H:%M:%S"), sessions=base.sessions + 1, ended=None,
        traceback=None, world_size=facts.world_size, weights=facts.weights, freeze=facts.freeze,
        skipped_files=facts.skipped_files, data_notes=facts.data_notes,
        checks=facts.checks or base.checks, lr_find=facts.lr_find or base.lr_find, recipe=recipe_record(config),
        speed=session.runtime.speed(config.train.compile),
    ))
    result: FitResult | None = None
    with STOP.watching():  # until run.json is final: a signal after the last epoch lets the run finish
        try:
            result = trainer.fit()
            test, predictions = _score_test(trainer, run, session) if result.status.scored else (None, None)
        except Exception as exc:
            failed = _record_failure(run, record, result, trainer, exc, world)
            _run_end(trainer, failed)
            raise
        wall = base.wall_seconds + time.perf_counter() - started
        record = run.save(record.with_fit(result).updated(
            test=test, wall_seconds=wall, ended=time.strftime("%Y-%m-%dT%H:%M:%S"), files=recorded_files(run),
            predictions=predictions if test is not None else record.predictions))
        _run_end(trainer, record)
    return TrainResult(run.path, record, History(result.history), result.interrupt_signal)


def _run_end(trainer: Trainer, record: RunRecord) -> None:
    """Each callback's on_run_end (trackers log the test metrics and the status); a callback that raises here
    is a warning: the run's record is final and must not turn into an error now."""
    for callback in trainer.callbacks:
        hook = getattr(callback, "on_run_end", None)  # a callback written before this hook may lack it
        try:
            if hook is not None:
                hook(record.status, record.reason, record.test)
        except Exception as exc:
            LOG.warning(f"{type(callback).__name__}: at the end of the run: {type(exc).__name__}: {exc}")


def _say_notes(trainer: Trainer, config: RunConfig) -> None:
    for note in recipe_notes(config, trainer.steps_per_epoch):
        LOG.info(f"note: {note}")
    if trainer.graphs is not None and not trainer.graphs.used:
        LOG.info(f"note: {trainer.graphs.why}; training eagerly")
    beyond = sorted(e for e in config.train.keep_epochs if e > config.train.epochs)
    if beyond:  # not an error: a resume may raise epochs, and a retraining shortens them
        LOG.info(f"note: train.keep_epochs {beyond} lie beyond epochs={config.train.epochs}: those weights are not "
                 "kept unless the run is resumed with more epochs")


def _peer_lost(exc: Exception, run: RunDir | None) -> PeerLost:
    """The one line a rank says when another rank is gone: what the backend saw, without its source paths."""
    where = command_line("train", "--resume", run.path) if run is not None else "cnnlab train --resume RUN_DIR"
    seen = distributed.peer_reason(exc)
    return PeerLost(f"another process of this distributed run ended ({seen}); the run continues from its last "
                    f"checkpoint with {where}")


def _record_failure(run: RunDir, record: RunRecord, result: FitResult | None, trainer: Trainer,
                    exc: Exception, world: World) -> RunRecord:
    """run.json says how the run failed: training raised (`result` None) or scoring the test set did. A rank
    whose peer died raises PeerLost instead and leaves run.json 'running': crashed, resumable, not failed.
    If the disk refuses the write (it is full), the run reads as crashed once this process is gone, which
    is as resumable, and the original error is the one to report."""
    if not isinstance(exc, CnnlabError) and distributed.lost_peer(exc, world):
        raise _peer_lost(exc, run) from None
    failed = record.with_fit(result) if result is not None else record.updated(
        graphs=trainer.graphs.to_dict() if trainer.graphs else None)
    if isinstance(exc, CnnlabError):
        failed = failed.updated(status=Status.FAILED, reason=str(exc).splitlines()[0])
    else:
        failed = failed.updated(status=Status.FAILED, reason=f"{type(exc).__name__}: {exc}",
                                traceback=traceback.format_exc(limit=12))
    failed = failed.updated(files=recorded_files(run))
    try:
        run.save(failed)
    except OSError:
        pass
    return failed


def _score_test(trainer: Trainer, run: RunDir, session: Session) -> tuple[dict[str, float], dict[str, Any]]:
    """The test score (run.json's `test`) and the record of the per-image results written with it."""
    config, splits = session.config, session.splits
    ema = trainer.scores_ema  # train.ema_eval: the EMA weights are the run's (recipe.ema.scored in run.json)
    if restores_best(config) and run.best.is_file():
        tensors, meta = load_checkpoint(run.best)
        check_checkpoint(run, run.best, meta)
        trainer.model.load_state_dict(split_prefix(tensors, "model."))
        if trainer.ema is not None:
            trainer.ema.load(tensors)
    evaluation = LoaderSpec.for_evaluation(config)
    metrics = trainer.evaluate(make_batches(splits.test, splits.spec, evaluation, session.runtime, splits.cache),
                               per_image=True, ema=ema)
    scored = {"test": metrics}  # for the verdicts: two runs compared image by image, on test and validation,
    if splits.val is not None:  # with the weights the test score used (what a greedy search carries forward)
        scored["val"] = trainer.evaluate(make_batches(splits.val, splits.spec, evaluation, session.runtime,
                                                      splits.cache), per_image=True, ema=ema)
    facts = write_predictions(run.path, scored, splits.spec.num_classes)
    return {k: metrics[k] for k in ("loss", "acc", "top5", "count")}, facts
