"""What train.compile=auto measured on this machine, kept for the next run of the same step.

A probe compiles a scratch copy of the network (17-38 s for the seed convnet on 2 cores) to time its
compiled step. On a CPU where the compiled step loses (the AMD EPYC of docs/explanation/speed.md: 0.35-0.5x
of eager), every run long enough to be probed would pay that compile again only to train eagerly: 30 runs of
a study, 30 compiles. The ratio compiled/eager a probe measured depends on the machine and the step, not
on the run, so it is kept in one JSON file, keyed by what the step is (the CPU, the threads, torch's
version, the network's structure, the batch's shape, the precision and the memory format): a later run
of the same step times only its eager step and applies the kept ratio (train/speed.py's cached_choice),
and run.json says that the ratio was measured before and when.

The file is CNNLAB_CACHE_DIR/compile_probes.json (else $XDG_CACHE_HOME/cnnlab, else ~/.cache/cnnlab);
`CNNLAB_CACHE_DIR=off` keeps nothing and reads nothing. A file that cannot be read or parsed is treated as
empty and replaced; a cache that cannot be written is skipped silently (it only saves time).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.roots import cnnlab_cache_home
from ..errors import StorageError
from ..io import atomic_write_json
from .cpu import cpu_model_name

FILE = "compile_probes.json"
KEEP = 200  # entries kept (the most recent): a cache, not an archive


def cache_file() -> Path | None:
    """Where the probes are kept, or None when CNNLAB_CACHE_DIR=off."""
    chosen = os.environ.get("CNNLAB_CACHE_DIR", "")
    if chosen == "off":
        return None
    return Path(chosen) / FILE if chosen else cnnlab_cache_home() / FILE


def step_key(model: nn.Module, batch_shape: tuple[int, ...], precision: str, channels_last: bool) -> str:
    """What decides a compiled step's speed relative to eager's, as one digest."""
    described = {"cpu": cpu_model_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
                 "model": hashlib.sha256(repr(model).encode()).hexdigest(), "batch": list(batch_shape),
                 "precision": precision, "channels_last": channels_last}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:32]


def _entries(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recall(key: str, path: Path | None) -> dict[str, Any] | None:
    """The probe kept for `key` (eager_ms, compiled_ms, compile_seconds, measured), or None."""
    if path is None:
        return None
    entry = _entries(path).get(key)
    needed = ("eager_ms", "compiled_ms", "compile_seconds", "measured")
    if not isinstance(entry, dict) or not all(isinstance(entry.get(k), (int, float, str)) for k in needed):
        return None
    if not (float(entry["eager_ms"]) > 0 and float(entry["compiled_ms"]) > 0):
        return None
    return entry


def remember(key: str, path: Path | None, eager_ms: float, compiled_ms: float, compile_seconds: float) -> None:
    """Keep a probe's measurement (the newest KEEP entries); a cache that cannot be written is skipped."""
    if path is None:
        return
    entries = _entries(path)
    entries.pop(key, None)
    entries[key] = {"eager_ms": eager_ms, "compiled_ms": compiled_ms, "compile_seconds": compile_seconds,
                    "measured": time.strftime("%Y-%m-%d")}
    kept = dict(list(entries.items())[-KEEP:])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, kept)
    except (OSError, StorageError):
        pass
