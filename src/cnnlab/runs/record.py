"""`RunRecord`: the schema of run.json, read and written here only.

run.json is versioned (`schema`); files written before the schema existed (no `schema` key, version 1)
load with the same field names. Keys this version does not know (a newer cnnlab wrote them) are kept in
`extra` and written back unchanged, so an older cnnlab never deletes a newer one's facts. A newer schema
version (`cnnlab.run/3` for this one) means the fields changed meaning: it is refused on read, so this
cnnlab never resumes (and rewrites) such a run, and says which cnnlab wrote it.

Every field is checked on read against its annotation, and the numbers tables compute with against their
range (a count is a whole number >= 0, an accuracy lies in [0, 1], seconds are finite): a record edited by
hand, or damaged, is one ConfigError naming the file, the field and what it should hold, never a
TypeError deep inside a table or a report.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import html
from .._version import __version__
from ..errors import ConfigError
from ..html import percent
from ..io import atomic_write_json
from ..train.result import FitResult
from ..train.status import Status

VERSION = 2  # of the run.json schema this cnnlab reads and writes
SCHEMA = f"cnnlab.run/{VERSION}"
SCHEMA_PATTERN = re.compile(r"cnnlab\.run/([1-9][0-9]{0,8})")
LARGEST = 2**63  # no number cnnlab writes (a count, a seed, seconds) comes near a 64-bit integer's range


@dataclass
class RunRecord:
    status: Status = Status.RUNNING  # where the run stands (the values below)
    reason: str = ""  # why it ended so, in one line (the criterion, the signal, the error)
    config_hash: str | None = None  # the resolved config's, less keys that change no result; --resume checks it
    seed: int | None = None  # the config's seed
    device: str | None = None  # the device's name ('cpu', 'NVIDIA H100 80GB HBM3', ...)
    precision: str | None = None  # fp32 or bf16 (autocast)
    channels_last: bool | None = None  # whether it trained in NHWC memory format
    world_size: int = 1  # processes of the latest session (torchrun); batch_size is their global batch
    versions: dict[str, str] = field(default_factory=dict)  # cnnlab, torch, torchvision, numpy, python
    parameters: int | None = None  # the model's parameter count
    data: dict[str, Any] | None = None  # the DataSpec: classes, input size, mean/std, split sizes, source
    run_dir: str | None = None  # where the run was written
    owner: dict[str, Any] | None = None  # pid, host, since: the process of the latest session
    started: str | None = None  # local time of the first session's start (ISO 8601)
    ended: str | None = None  # local time the latest session ended; null while running
    sessions: int = 0  # processes that trained it (1 + the resumes)
    epochs_completed: int = 0  # whole epochs trained, all sessions
    steps: int = 0  # optimizer steps, all sessions
    best_epoch: int | None = None  # the epoch of best.safetensors (by monitor)
    monitor: str | None = None  # what 'best' meant (val_acc, val_loss, ...)
    final: dict[str, Any] | None = None  # the last epoch's train/val loss and accuracy
    test: dict[str, Any] | None = None  # loss, acc, top5, count on the test set
    train_seconds: float = 0.0  # inside training epochs, all sessions
    wall_seconds: float = 0.0  # all sessions, data loading and evaluation included
    images_per_second: float = 0.0  # training images per second of train_seconds
    weights: dict[str, Any] | None = None  # what model.weights loaded (models/weights.py WeightsReport)
    freeze: dict[str, Any] | None = None  # model.freeze: mode and parameter counts
    early_stop: dict[str, Any] | None = None  # criterion, fired, epoch, why, values
    graphs: dict[str, Any] | None = None  # train.graphs: used, or why the run trained eagerly
    # how it computed, auto resolved (train/runtime.py, train/speed.py): precision, channels_last, threads,
    # allocator, and compile: used, why, the eager and compiled step times measured
    speed: dict[str, Any] | None = None
    divergence: dict[str, Any] | None = None  # rule (nonfinite | threshold), epoch, loss, threshold
    skipped_files: dict[str, str] | None = None  # data.skip_bad: file -> problem
    data_notes: list[str] | None = None  # what the data scan left out and why (hidden files, links)
    checks: dict[str, Any] | None = None  # train/checks.py at the start: initial_loss, labels, balance, inputs, leakage
    lr_find: dict[str, Any] | None = None  # optim.lr=find: the range test's suggestion and where its plot is
    # the recipe knobs in use (config.yaml has them all): effective batch, label smoothing, mixing, and for an
    # EMA which weights the test score used (ema.scored: ema or raw); null when none is on
    recipe: dict[str, Any] | None = None
    averaged: dict[str, Any] | None = None  # cnnlab average: the source run, its epochs averaged, batch norm redone?
    # who the run is: a random id given when it starts, written into every checkpoint it saves, so a file from
    # another run (copied in, or left by a replaced folder) is recognised on read (runs/identity.py)
    run_id: str | None = None
    # RUN/predictions.safetensors as written: its sha256, and per split the image count, the accuracy it implies
    # and the class count its predictions lie below (runs/predictions.py checks the file against these on read)
    predictions: dict[str, Any] | None = None
    # settings a resume changed (--allow-config-change): one entry per resume that changed some, in order, with the
    # epoch and step from which they took effect, the changes ('key: old -> new') and the config hash after them
    config_changes: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] | None = None  # sha256 of metrics.csv and steps.csv as the latest session left them
    traceback: str | None = None  # status failed: where
    schema: str = SCHEMA  # cnnlab.run/N: the version of this layout
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------------------------- reading
    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "run.json") -> RunRecord:
        if not isinstance(data, dict):
            raise ConfigError(f"{origin}: not a run record (a JSON object is expected)")
        refuse_newer_schema(data, origin)
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        try:
            values["status"] = Status(values.get("status", Status.RUNNING))
        except (ValueError, TypeError):  # TypeError: an unhashable value (a list, an object)
            raise ConfigError(f"{origin}: field 'status' is {_shown(values.get('status'))}, expected one of "
                              f"{', '.join(s.value for s in Status)}") from None
        values.setdefault("schema", "cnnlab.run/1")
        check_fields(cls, values, origin)
        return cls(**values, extra=extra)

    @classmethod
    def load(cls, path: Path) -> RunRecord | None:
        """The record of run.json at `path`, or None when there is none; a corrupt file is a ConfigError."""
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"cannot read '{path}': {exc.strerror}") from None
        except UnicodeDecodeError as exc:  # bytes that are no text: as corrupt as any other
            text = f"\0 {exc.reason}"
        try:
            return cls.from_dict(json.loads(text), str(path))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: corrupt run.json ({exc}); the run's checkpoints and metrics.csv are "
                              "intact; remove run.json to treat the run as crashed and resume it") from None

    # ------------------------------------------------------------------------------------- writing
    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        data["status"] = self.status.value
        return {**self.extra, **data}

    def save(self, path: Path) -> None:
        refuse_newer_schema({"schema": self.schema, "versions": self.versions}, str(path))
        atomic_write_json(path, self.to_dict())

    def updated(self, **values: Any) -> RunRecord:
        """A copy with `values` set; an unknown field name is a TypeError (a typo never reaches disk)."""
        return dataclasses.replace(self, **values)

    def with_fit(self, result: FitResult) -> RunRecord:
        """A copy saying how training ended (`Trainer.fit()`'s result): the one way a fit reaches run.json."""
        return dataclasses.replace(
            self, status=result.status, reason=result.reason, epochs_completed=result.epochs, steps=result.steps,
            best_epoch=result.best_epoch, monitor=result.monitor, final=dict(result.final),
            train_seconds=result.train_seconds, images_per_second=result.images_per_second,
            divergence=result.divergence.to_dict() if result.divergence else None,
            early_stop=result.early_stop.to_dict() if result.early_stop else None,
            graphs=result.graphs.to_dict() if result.graphs else None,
            speed={**(self.speed or {}), "compile": result.compile} if result.compile else self.speed)

    def summary(self) -> dict[str, Any]:
        """What a person asks of a run first, by name (None: not known), for tables and notebooks."""
        test = self.test or {}
        loss = test.get("loss")
        return {"status": self.status.value, "reason": self.reason or None, "test top-1": percent(test.get("acc")),
                "test top-5": percent(test.get("top5")), "test loss": None if loss is None else round(loss, 4),
                "best epoch": self.best_epoch, "epochs": self.epochs_completed,
                "train seconds": round(self.train_seconds, 1), "img/s": f"{self.images_per_second:,.0f}",
                "seed": self.seed, "device": self.device, "parameters": self.parameters}

    def _repr_html_(self) -> str:  # a notebook shows a record as a table
        return html.fields(self.summary(), "run.json")

    # ------------------------------------------------------------------------------------- meaning
    @staticmethod
    def is_cnnlab(data: Any) -> bool:
        """Whether a parsed run.json was written by cnnlab (any schema version)."""
        if not isinstance(data, dict):
            return False
        if str(data.get("schema", "")).startswith("cnnlab.run/"):
            return True
        versions = data.get("versions")
        return "status" in data and isinstance(versions, dict) and "cnnlab" in versions  # version 1 files


# ------------------------------------------------------------------------------------------ checks
# the parts of a field's object that tables and reports compute with: what each must hold (null allowed)
PARTS = {
    "test": {"acc": "fraction", "top5": "fraction", "loss": "number", "count": "count"},
    "final": {"train_loss": "number", "train_acc": "fraction", "val_loss": "number", "val_acc": "fraction",
              "val_top5": "fraction", "ema_val_loss": "number", "ema_val_acc": "fraction", "ema_val_top5": "fraction"},
    "freeze": {"frozen": "count", "trainable": "count"},
}
COUNTS = ("world_size", "parameters", "sessions", "epochs_completed", "steps", "best_epoch")
DURATIONS = ("train_seconds", "wall_seconds", "images_per_second")  # and a rate: finite, >= 0
KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {  # name -> (test, words)
    "count": (lambda v: _is_int(v) and v >= 0, "a whole number >= 0"),
    "fraction": (lambda v: _is_number(v) and 0 <= v <= 1, "a number from 0 to 1"),
    "number": (lambda v: _is_number(v) or (isinstance(v, float) and not math.isfinite(v)), "a number"),
    "seconds": (lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
}


def schema_version(schema: Any) -> int | None:
    """The version number of a schema name ('cnnlab.run/2' -> 2); None when it is not one."""
    match = SCHEMA_PATTERN.fullmatch(schema) if isinstance(schema, str) else None
    return int(match.group(1)) if match else None


def refuse_newer_schema(data: dict[str, Any], origin: str) -> None:
    """A ConfigError for a record of a schema this cnnlab does not know: a newer one (say which cnnlab
    wrote it), or a value that is no schema at all."""
    schema = data.get("schema", "cnnlab.run/1")
    version = schema_version(schema)
    if version is None:
        raise ConfigError(f"{origin}: field 'schema' is {_shown(schema)}, expected 'cnnlab.run/N' (this cnnlab "
                          f"writes '{SCHEMA}')")
    if version > VERSION:
        versions = data.get("versions")
        writer = versions.get("cnnlab") if isinstance(versions, dict) else None
        by = f"cnnlab {writer}" if isinstance(writer, str) and writer != __version__ else "a newer cnnlab"
        raise ConfigError(f"{origin} was written by {by} in run schema '{schema}'; this cnnlab {__version__} "
                          f"knows the schemas up to '{SCHEMA}'. Read, resume or tabulate this run with "
                          f"{'that cnnlab or a later one' if by != 'a newer cnnlab' else 'a cnnlab that knows it'}"
                          " (nothing was changed)")


def check_fields(cls: type, values: dict[str, Any], origin: str) -> None:
    """Each value against its field's annotation, then the ranges of the numbers tables compute with; one
    ConfigError that names every field that is wrong."""
    hints = _hints(cls)
    wrong = {name: (value, _words(hints[name])) for name, value in values.items()
             if name != "status" and not _fits(value, hints[name])}
    for name in COUNTS:
        if name not in wrong and values.get(name) is not None and not KINDS["count"][0](values[name]):
            wrong[name] = (values[name], KINDS["count"][1])
    for name in DURATIONS:
        if name not in wrong and name in values and not KINDS["seconds"][0](values[name]):
            wrong[name] = (values[name], KINDS["seconds"][1])
    for name, parts in PARTS.items():
        for part, kind in parts.items():
            value = (values.get(name) or {}).get(part) if name not in wrong else None
            test, words = KINDS[kind]
            if value is not None and not test(value):
                wrong[f"{name}.{part}"] = (value, f"{words} or null")
    if wrong:
        said = "; ".join(f"field '{name}' is {_shown(value)}, expected {expected}"
                         for name, (value, expected) in wrong.items())
        raise ConfigError(f"{origin}: {said}. run.json was changed after cnnlab wrote it: correct "
                          f"{'that field' if len(wrong) == 1 else 'those fields'}, or restore the file from a copy")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -LARGEST <= value <= LARGEST


def _is_number(value: Any) -> bool:
    """A finite int or float within LARGEST (a table's mean and std of such numbers cannot overflow)."""
    if isinstance(value, float):
        return math.isfinite(value) and abs(value) <= LARGEST
    return _is_int(value)


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value is of an annotation's type (int, float, str, bool, None, unions, dict[str, X],
    list[X], Any)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in args)
    if origin is dict:
        return isinstance(value, dict) and all(_fits(item, args[1]) for item in value.values())
    if origin is list:
        return isinstance(value, list) and all(_fits(item, args[0]) for item in value)
    if hint is float:
        return _is_number(value) or (isinstance(value, float) and not math.isfinite(value))
    if hint is int:
        return _is_int(value)
    if hint is type(None):
        return value is None
    if hint in (str, bool):
        return type(value) is hint
    if hint in (dict, list):  # unparameterised: the container only
        return isinstance(value, hint)
    return True  # a type JSON does not hold as such (a field added later as a tuple, an enum): its reader's


def _words(hint: Any) -> str:
    """An annotation as a message says it: 'a whole number or null', 'an object of text values', ..."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_words(arg) for arg in args)
    if origin is dict:
        return "an object" if args[1] is Any else f"an object of {_words(args[1]).removeprefix('a ')} values"
    if origin is list:
        return f"a list of {_words(args[0]).removeprefix('a ')} items"
    return {int: "a whole number", float: "a number", str: "text", bool: "true or false", dict: "an object",
            list: "a list", type(None): "null"}.get(hint, "a value")


def _shown(value: Any) -> str:
    """A JSON value as the user wrote it, cut to a line."""
    text = json.dumps(value)
    kind = {str: "text", bool: "a boolean", list: "a list", dict: "an object", type(None): "null"}.get(type(value))
    return (text if len(text) <= 60 else text[:57] + "...") + (f" ({kind})" if kind and value is not None else "")
