"""The standard callbacks (hooks.py has the hooks): metrics.csv, steps.csv, the console, checkpoints,
TensorBoard. A callback asks the trainer to stop with `trainer.request_stop(reason)`."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import HASH_SCHEME
from ..errors import ConfigError, DataError
from ..io import atomic_write_text, storage_error
from ..log import get as get_logger
from ..log import on_terminal
from .hooks import Callback, TrainerView
from .result import EMA_KEYS, FitResult
from .status import Status

LOG = get_logger(__name__)

METRIC_COLUMNS = (
    "epoch", "step", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "val_top5",
    "train_seconds", "val_seconds", "images_per_second",
)
EMA_COLUMNS = EMA_KEYS  # train.ema_decay: the averaged weights' validation loss, top-1, top-5

__all__ = ["METRIC_COLUMNS", "Callback", "Checkpointer", "Console", "MetricsCSV", "StepLosses", "TensorBoard",
           "hparams_of", "loss_text", "read_metrics", "read_step_losses"]


class MetricsCSV(Callback):
    """metrics.csv: one row per epoch. On resume, rows after the checkpoint's epoch are dropped, so the
    file always agrees with the weights. `ema`: the EMA weights' validation columns too (train.ema_decay)."""

    def __init__(self, path: Path, ema: bool = False) -> None:
        self.path = Path(path)
        self.columns = METRIC_COLUMNS + (EMA_COLUMNS if ema else ())

    def on_fit_start(self, trainer: TrainerView) -> None:
        rows = read_metrics(self.path) if self.path.exists() else []
        kept = [row for row in rows if int(row["epoch"]) <= trainer.state.epoch]
        _rewrite_csv(self.path, self.columns, [{k: _format(row.get(k)) for k in self.columns} for row in kept])

    def on_epoch_end(self, trainer: TrainerView, row: dict[str, Any]) -> None:
        with _appending(self.path) as handle:
            csv.DictWriter(handle, self.columns, extrasaction="ignore").writerow(
                {key: _format(row.get(key)) for key in self.columns}
            )


def _rewrite_csv(path: Path, columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """Replace a CSV file atomically (a resume truncates to the checkpoint's rows: never half of that)."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


@contextlib.contextmanager
def _appending(path: Path) -> Iterator[Any]:
    """Append rows; a full or read-only disk becomes a StorageError naming the file. (A row appended for an
    epoch whose checkpoint then failed is dropped on resume: rows after the checkpoint's epoch are cut.)"""
    try:
        with open(path, "a", newline="") as handle:
            yield handle
    except OSError as exc:
        raise storage_error(exc, path, "append to") from None


def _format(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # round-trips exactly: resume tests compare bitwise
    return value


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """metrics.csv as a list of dicts with numbers parsed (empty cells become None); a file that is not such a
    table (damaged: no text, no 'epoch' column, an epoch that is no whole number) is a DataError naming it."""
    try:
        with open(path, newline="") as handle:
            rows = [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"'{path}' is damaged ({type(exc).__name__}: {str(exc)[:100]}); restore it from a "
                        "copy") from None
    if any(not isinstance(row.get("epoch"), int) for row in rows):
        raise DataError(f"'{path}' is damaged (a row without a whole-number epoch); restore it from a copy")
    return rows


def _parse(text: str | None) -> Any:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


class StepLosses(Callback):
    """steps.csv: the training loss of every optimizer step (epoch, step, loss), for loss-per-iteration
    plots such as the optimizer comparison. On resume, rows after the checkpoint are dropped."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def on_fit_start(self, trainer: TrainerView) -> None:
        kept = []
        if self.path.exists():
            with open(self.path, newline="") as handle:
                kept = [row for row in csv.DictReader(handle) if int(row["epoch"]) <= trainer.state.epoch]
        _rewrite_csv(self.path, ("epoch", "step", "loss"), kept)

    def on_epoch_end(self, trainer: TrainerView, row: dict[str, Any]) -> None:
        losses = row.get("step_losses") or []
        first = row["step"] - len(losses) + 1
        with _appending(self.path) as handle:
            writer = csv.writer(handle)
            writer.writerows((row["epoch"], first + i, repr(loss)) for i, loss in enumerate(losses))


def read_step_losses(path: Path) -> list[tuple[int, int, float]]:
    with open(path, newline="") as handle:
        return [(int(r["epoch"]), int(r["step"]), float(r["loss"])) for r in csv.DictReader(handle)]


class Console(Callback):
    """One line per epoch on the 'cnnlab.train' logger; a rich progress bar beside those lines when they are
    printed onto a terminal (the command line's handler, cnnlab/log.py)."""

    def __init__(self) -> None:
        self.progress: Any = None
        self.task: Any = None

    def on_fit_start(self, trainer: TrainerView) -> None:
        if not on_terminal(LOG):
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TextColumn("loss {task.fields[loss]}  acc {task.fields[acc]}  {task.fields[speed]}"),
            TimeRemainingColumn(), transient=True,
        )
        self.progress.start()  # redirects stdout: the epoch lines print above the bar

    def on_epoch_start(self, trainer: TrainerView, epoch: int) -> None:
        if self.progress is not None:
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task(
                "train", total=trainer.steps_per_epoch, epoch=f"{epoch + 1}/{trainer.epochs}",
                loss="-", acc="-", speed="",
            )

    def on_progress(self, trainer: TrainerView, progress: dict[str, Any]) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(
                self.task, completed=progress["step_in_epoch"], loss=f"{progress['loss']:.4f}",
                acc=f"{100 * progress['acc']:.2f}%", speed=f"{progress['images_per_second']:,.0f} img/s",
            )

    def on_epoch_end(self, trainer: TrainerView, row: dict[str, Any]) -> None:
        if not LOG.isEnabledFor(logging.INFO):  # not even formatted when nobody prints it
            return
        parts = [f"epoch {row['epoch']}/{trainer.epochs}", f"train loss {loss_text(row['train_loss'])}",
                 f"acc {100 * row['train_acc']:.2f}%"]
        if row.get("val_loss") is not None:
            parts += [f"val loss {loss_text(row['val_loss'])}", f"acc {100 * row['val_acc']:.2f}%"]
        parts += [f"{row['train_seconds']:.1f}s", f"{row['images_per_second']:,.0f} img/s"]
        LOG.info("  ".join(parts))

    def on_fit_end(self, trainer: TrainerView, result: FitResult) -> None:
        self._close()

    def on_exception(self, trainer: TrainerView, error: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class Checkpointer(Callback):
    """checkpoints/last.safetensors after every epoch (and on interrupt, mid-epoch), the one it replaces
    kept as previous.safetensors; best.safetensors (weights) when the monitored metric improves;
    epoch_NNNN.safetensors (weights) after each epoch listed in train.keep_epochs. A diverged run writes
    nothing, so 'last' stays the last good state."""

    def __init__(self, directory: Path, config_hash: str, keep_epochs: Sequence[int] = (),
                 run_id: str | None = None) -> None:
        self.directory = Path(directory)
        self.config_hash = config_hash
        self.keep_epochs = set(keep_epochs)
        # whose checkpoints these are (run.json's run_id): a reader refuses one of another run (runs/identity.py)
        self.identity = {"config_hash": config_hash, "config_hash_scheme": HASH_SCHEME,
                         **({"run_id": run_id} if run_id else {})}

    def save_last(self, trainer: TrainerView) -> None:
        from .checkpoint import save_checkpoint

        tensors, meta = trainer.snapshot()
        meta.update(self.identity)  # checked on resume
        save_checkpoint(self.directory / "last.safetensors", tensors, meta,
                        previous=self.directory / "previous.safetensors")

    def on_epoch_end(self, trainer: TrainerView, row: dict[str, Any]) -> None:
        self.save_last(trainer)
        if row.get("is_best"):
            self._weights(trainer, row, self.directory / "best.safetensors")
        if row["epoch"] in self.keep_epochs:
            self._weights(trainer, row, self.directory / f"epoch_{row['epoch']:04d}.safetensors")

    def _weights(self, trainer: TrainerView, row: dict[str, Any], path: Path) -> None:
        from .checkpoint import save_checkpoint

        weights = trainer.weight_tensors()  # model.*, and ema.* with train.ema_decay
        metrics = {k: v for k, v in row.items() if k not in ("is_best", "step_losses")}
        meta = {"epoch": row["epoch"], "monitor": trainer.monitor, "metrics": metrics, **self.identity}
        save_checkpoint(path, weights, meta)

    def on_fit_end(self, trainer: TrainerView, result: FitResult) -> None:
        if result.status == Status.INTERRUPTED:
            self.save_last(trainer)


class TensorBoard(Callback):
    """Per-epoch scalars (losses, accuracies, learning rate, img/s) and per-step training loss in
    RUN_DIR/tensorboard, so `tensorboard --logdir runs` shows runs live; when the run has ended, its
    hyperparameters (`hparams`: the resolved config) with its final metrics for TensorBoard's HPARAMS tab.
    TensorBoard is an optional extra; asking for it without the package is a clear error before training
    starts."""

    def __init__(self, directory: Path, hparams: Mapping[str, Any] | None = None) -> None:
        self.directory = Path(directory)
        self.hparams = dict(hparams or {})
        self.writer: Any = None
        self.last_row: dict[str, Any] = {}

    @staticmethod
    def require() -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("train.tensorboard=true needs the tensorboard package: "
                              "pip install 'cnnlab[tensorboard]' (or set train.tensorboard=false)") from None
        return SummaryWriter

    def on_fit_start(self, trainer: TrainerView) -> None:
        self.writer = self.require()(str(self.directory))

    def on_epoch_end(self, trainer: TrainerView, row: dict[str, Any]) -> None:
        losses = row.get("step_losses") or []
        first = row["step"] - len(losses) + 1
        for index, loss in enumerate(losses):
            self.writer.add_scalar("loss/train_step", loss, first + index)
        for key in ("train_loss", "val_loss"):
            if row.get(key) is not None:
                self.writer.add_scalar(f"loss/{key}", row[key], row["epoch"])
        for key in ("train_acc", "val_acc", "val_top5"):
            if row.get(key) is not None:
                self.writer.add_scalar(f"accuracy/{key}", row[key], row["epoch"])
        self.writer.add_scalar("lr", row["lr"], row["epoch"])
        self.writer.add_scalar("speed/images_per_second", row["images_per_second"], row["epoch"])
        self.writer.flush()
        self.last_row = row

    def on_run_end(self, status: Status, reason: str, test: Mapping[str, Any] | None) -> None:
        """The hparams plugin's summaries (hparams and session, as SummaryWriter.add_hparams writes them, but
        into this run's own folder so its scalars sit beside them) and the final metrics as hparam/* scalars.
        Only for a finished run: an interrupted one writes them when it ends after its resume."""
        if not status.finished or not self.hparams:
            return
        from torch.utils.tensorboard.summary import hparams

        final = {f"hparam/{key}": self.last_row[key] for key in ("train_loss", "train_acc", "val_loss", "val_acc")
                 if self.last_row.get(key) is not None}
        final.update({f"hparam/test_{key}": test[key] for key in ("loss", "acc", "top5")
                      if test and test.get(key) is not None})
        writer = self.require()(str(self.directory))
        try:
            for summary in hparams(self.hparams, final):
                writer.file_writer.add_summary(summary)
            for key, value in final.items():
                writer.add_scalar(key, value, self.last_row.get("epoch"))
        finally:
            writer.close()

    def on_fit_end(self, trainer: TrainerView, result: FitResult) -> None:
        self._close()

    def on_exception(self, trainer: TrainerView, error: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def hparams_of(values: Mapping[str, Any]) -> dict[str, Any]:
    """Flat config values as TensorBoard takes hparams: numbers and strings as they are, anything else as
    its JSON text (true, null, [1.0, 1.0]; torch's writer would show a boolean as the number 1.0)."""
    return {key: value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else json.dumps(value)
            for key, value in values.items()}


def loss_text(value: float) -> str:
    """0.4213, or 3.2e+11 (a diverging loss in full would be twelve digits wide)."""
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.3g}"
