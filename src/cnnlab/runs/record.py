"""`RunRecord`: the schema of run.json, read and written here only.

run.json is versioned (`schema`); files written before the schema existed (no `schema` key, version 1)
load with the same field names. Keys this version does not know (a newer cnnlab wrote them) are kept in
`extra` and written back unchanged, so an older cnnlab never deletes a newer one's facts.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import html
from ..errors import ConfigError
from ..html import percent
from ..io import atomic_write_json
from ..train.status import Status

SCHEMA = "cnnlab.run/2"


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
    divergence: dict[str, Any] | None = None  # rule (nonfinite | threshold), epoch, loss, threshold
    skipped_files: dict[str, str] | None = None  # data.skip_bad: file -> problem
    data_notes: list[str] | None = None  # what the data scan left out and why (hidden files, links)
    traceback: str | None = None  # status failed: where
    schema: str = SCHEMA  # cnnlab.run/N: the version of this layout
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------------------------- reading
    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "run.json") -> RunRecord:
        if not isinstance(data, dict):
            raise ConfigError(f"{origin}: not a run record (a JSON object is expected)")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        try:
            values["status"] = Status(values.get("status", Status.RUNNING))
        except ValueError:
            raise ConfigError(f"{origin}: unknown status {values.get('status')!r}") from None
        values.setdefault("schema", "cnnlab.run/1")
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
        atomic_write_json(path, self.to_dict())

    def updated(self, **values: Any) -> RunRecord:
        """A copy with `values` set; an unknown field name is a TypeError (a typo never reaches disk)."""
        return dataclasses.replace(self, **values)

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
        return "status" in data and "cnnlab" in (data.get("versions") or {})  # version 1 files
