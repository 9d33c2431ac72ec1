"""One run, end to end: resolved config in, run directory out.

`start_run` / `resume_run` build data, model and optimizer from the config, train with the standard
callbacks (console, metrics.csv, checkpoints), score the test set, and write run.json and the curves.
The CLI and the Python API both call these, so the two can never disagree.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import RunConfig, config_hash
from ..data import (
    AugmentPlan,
    Batches,
    DataSpec,
    DataSplits,
    DeviceBatches,
    FileList,
    ImageSet,
    Split,
    choose_image_size,
    load_raw,
    prepare,
)
from ..data.scan import default_workers
from ..data.stream import FolderDataset, StreamBatches
from ..data.transforms import eval_transform, train_transform
from ..errors import ConfigError
from ..models import MODELS, build_model, count_parameters, model_fits
from ..models.transfer import freeze, reset_head
from ..models.weights import load_weights
from ..optim import build_optimizer
from .callbacks import Callback, Checkpointer, Console, MetricsCSV, StepLosses, TensorBoard
from .checkpoint import load_checkpoint, split_prefix
from .early_stop import EarlyStopping
from .run_dir import RUNNING, RunDir, versions
from .runtime import Runtime, resolve_runtime, seed_everything
from .trainer import COMPLETED, DIVERGED, INTERRUPTED, STOPPED_EARLY, Trainer

EXIT_CODES = {COMPLETED: 0, STOPPED_EARLY: 0, DIVERGED: 3}
STREAM_EVAL_BATCH = 256


@dataclass
class TrainResult:
    """What `cnnlab.train` returns: where the run went and how it ended."""

    run_dir: Path
    status: str
    reason: str
    test: dict[str, float] | None = None  # loss, acc, top5 on the test set (None if not reached)
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # wall time of all sessions, data loading and evaluation included
    train_seconds: float = 0.0  # time inside training epochs only
    images_per_second: float = 0.0
    interrupt_signal: int | None = None

    @property
    def accuracy(self) -> float | None:
        return None if self.test is None else self.test["acc"]

    @property
    def exit_code(self) -> int:
        if self.status == INTERRUPTED:
            return 128 + (self.interrupt_signal or 2)  # 130 for SIGINT, 143 for SIGTERM
        return EXIT_CODES.get(self.status, 1)


# ---------------------------------------------------------------------------------------------- data
def load_splits(config: RunConfig, image_size: int | None = None) -> DataSplits:
    """Read the dataset and shape it for the model (the input size is chosen here, see DataSpec)."""
    raw = load_raw(config.data)
    info = MODELS.get(config.model.name)
    if image_size is None and isinstance(raw.train, FileList):  # images of any size: the model's input
        image_size = config.data.image_size or info.input_size[-1]
    if image_size is None:
        channels = config.data.channels or raw.train.channels
        image_size = choose_image_size(
            raw.train.size[0], config.data.image_size,
            lambda s: model_fits(config.model.name, config.model.options, channels, s), info.input_size[-1],
        )
    return prepare(config.data, raw, image_size)


def make_batches(split: Split, splits: DataSplits, config: RunConfig, runtime: Runtime, *,
                 train: bool) -> Batches:
    """The loader of one split: on the device for in-memory data, through workers for image folders."""
    spec = splits.spec
    batch_size = config.train.batch_size if train else config.train.eval_batch_size
    if batch_size == "full":  # batch gradient descent: one step per epoch over the whole training set
        batch_size = len(split)
    if train and batch_size > len(split):
        raise ConfigError(
            f"train.batch_size={batch_size} is larger than the training set ({len(split)} images); "
            "lower it (full-batch gradient descent: batch_size equal to the training set)"
        )
    plan = AugmentPlan.from_config(config.augment) if train else None
    shuffle = train and config.data.shuffle
    if isinstance(split, ImageSet):
        return DeviceBatches(split, spec.mean, spec.std, batch_size, runtime.device, shuffle=shuffle,
                             drop_last=train, seed=config.seed, channels_last=runtime.channels_last,
                             augment=plan, size=spec.image_size)
    transform = train_transform(plan, spec.image_size) if train else eval_transform(spec.image_size, spec.eval_resize)
    if not train:  # decoded in workers and queued (prefetch) as float: 1024 x 3x224x224 would be 616 MB each
        batch_size = min(batch_size, STREAM_EVAL_BATCH)
    dataset = FolderDataset(split, transform, spec.channels, config.data.max_pixels, config.seed,
                            cache=splits.cache, draft=spec.eval_resize)
    workers = default_workers() if config.data.workers is None else config.data.workers
    return StreamBatches(dataset, spec.mean, spec.std, batch_size, runtime.device, shuffle=shuffle,
                         drop_last=train, seed=config.seed, channels_last=runtime.channels_last,
                         augment=plan.device_part() if plan else None, workers=workers)


def make_model(config: RunConfig, spec: DataSpec, runtime: Runtime) -> nn.Module:
    model = build_model(config.model.name, config.model.options, num_classes=spec.num_classes,
                        in_channels=spec.channels, image_size=spec.image_size)
    memory_format = torch.channels_last if runtime.channels_last else torch.preserve_format
    return model.to(device=runtime.device, memory_format=memory_format)


# ---------------------------------------------------------------------------------------------- runs
def start_run(config: RunConfig, run: RunDir, *, quiet: bool = False,
              callbacks: Sequence[Callback] = ()) -> TrainResult:
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_config(config)
    return _execute(config, run, None, quiet, callbacks)


def resume_run(config: RunConfig, run: RunDir, *, quiet: bool = False,
               callbacks: Sequence[Callback] = ()) -> TrainResult:
    if not run.last.is_file():
        raise ConfigError(
            f"'{run.path}' has no checkpoint to resume from ({run.last} is missing: the run stopped before "
            "its first checkpoint). Start it again as a new run."
        )
    run.write_config(config)
    return _execute(config, run, load_checkpoint(run.last), quiet, callbacks)


def _execute(config: RunConfig, run: RunDir, checkpoint: Any, quiet: bool,
             callbacks: Sequence[Callback]) -> TrainResult:
    started = time.perf_counter()
    runtime = resolve_runtime(config)
    seed_everything(config.seed)
    splits = load_splits(config)
    spec = splits.spec
    train = make_batches(splits.train, splits, config, runtime, train=True)
    val = make_batches(splits.val, splits, config, runtime, train=False) if splits.val is not None else None
    _record_data(run, splits)
    model = make_model(config, spec, runtime)
    if checkpoint is None and config.model.weights:
        report = load_weights(model, config.model.weights)
        run.update_info(weights=report.to_dict())
        if not quiet:
            print(f"weights: {report.summary()}")
    if checkpoint is None and config.model.reset_head:
        reset_head(model)
    if config.model.freeze != "none":  # on resume too: requires_grad is not part of a checkpoint
        run.update_info(freeze={"mode": config.model.freeze, **freeze(model, config.model.freeze)})
    optimizer = build_optimizer(config.optim, model)
    digest = config_hash(config)
    standard = [Console(quiet), MetricsCSV(run.metrics_path), StepLosses(run.path / "steps.csv"),
                Checkpointer(run.checkpoints, digest)]
    if config.train.tensorboard:
        standard.append(TensorBoard(run.path / "tensorboard"))
    if config.stop.criterion != "none":
        standard.append(EarlyStopping(config.stop, run))
    trainer = Trainer(model, optimizer, train, val, config, runtime, [*standard, *callbacks])
    trainer.num_classes = spec.num_classes
    previous = run.read_info() if checkpoint is not None else {}
    if checkpoint is not None:
        trainer.restore(*checkpoint)
    run.update_info(
        status=RUNNING, reason="", config_hash=digest, seed=config.seed, device=runtime.describe(),
        precision=runtime.precision, channels_last=runtime.channels_last, versions=versions(),
        parameters=count_parameters(model), data=spec.to_dict(), run_dir=str(run.path),
        started=previous.get("started", time.strftime("%Y-%m-%dT%H:%M:%S")), sessions=previous.get("sessions", 0) + 1,
    )
    status = trainer.fit()
    test = _score_test(trainer, run, splits, config, runtime) if status in (COMPLETED, STOPPED_EARLY) else None
    wall = previous.get("wall_seconds", 0.0) + time.perf_counter() - started
    return _finish(trainer, run, test, wall, spec)


def _record_data(run: RunDir, splits: DataSplits) -> None:
    """split.json (folder datasets: the exact file lists) and the files skipped as bad, for run.json."""
    if splits.split_record is not None:
        import json

        from .checkpoint import atomic_write_text

        atomic_write_text(run.path / "split.json", json.dumps(splits.split_record, indent=1) + "\n")
    if splits.bad_files or splits.notes:
        run.update_info(skipped_files=splits.bad_files, data_notes=list(splits.notes))


def restores_best(config: RunConfig) -> bool:
    """Whether the test score uses the best epoch's weights rather than the last."""
    return config.train.restore_best or (config.stop.criterion != "none" and config.stop.restore_best)


def _score_test(trainer: Trainer, run: RunDir, splits: DataSplits, config: RunConfig,
                runtime: Runtime) -> dict[str, float]:
    if restores_best(config) and run.best.is_file():
        tensors, _ = load_checkpoint(run.best)
        trainer.model.load_state_dict(split_prefix(tensors, "model."))
    metrics = trainer.evaluate(make_batches(splits.test, splits, config, runtime, train=False))
    return {k: metrics[k] for k in ("loss", "acc", "top5", "count")}


def _finish(trainer: Trainer, run: RunDir, test: dict[str, float] | None, wall: float, spec: DataSpec) -> TrainResult:
    state = trainer.state
    images = state.step * trainer.train_batches.batch_size
    speed = images / state.train_seconds if state.train_seconds > 0 else 0.0
    last = state.history[-1] if state.history else {}
    run.update_info(
        status=trainer.status, reason=trainer.reason, epochs_completed=state.epoch, steps=state.step,
        best_epoch=state.best_epoch, monitor=trainer.monitor,
        final={k: last.get(k) for k in ("train_loss", "train_acc", "val_loss", "val_acc", "val_top5")},
        test=test, train_seconds=state.train_seconds, wall_seconds=wall, images_per_second=speed,
        ended=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    if state.history:
        from ..viz.curves import plot_curves

        plot_curves(run.path)
    return TrainResult(run.path, trainer.status, trainer.reason, test, state.best_epoch, list(state.history),
                       wall, state.train_seconds, speed, trainer.interrupt_signal)
