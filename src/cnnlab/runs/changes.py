"""What a resume may change (`--allow-config-change`), decided from the two configs alone, and its record.

A resumed run continues from a checkpoint: its weights, optimizer state, RNG and data position. A setting
takes effect from there on only if the training loop reads it again at every epoch: the epoch count, the base
learning rate and the schedule (pure functions of the position, optim/schedules.py, recomputed each epoch with
the new values, so metrics.csv's lr column shows them from the resumed epoch on), and what is logged or kept.
Everything else (the seed, the data and its split, the model, the optimizer and its other settings, the batch,
augmentation, precision) was read once when the run started, or is baked into the state the checkpoint holds:
changing it on a resume would write one thing into config.yaml and train another, so it is refused, naming it.
An accepted change is recorded in run.json's `config_changes` with the epoch and step it took effect from.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..config import RunConfig, config_hash, diff
from ..errors import ConfigError

# dotted keys (or sections, ending in '.') a resume can change, with what happens
RESUMABLE = {
    "train.epochs": "the run trains to the new count; the schedule spans it from the resumed epoch on",
    "optim.lr": "the base learning rate from the resumed epoch on (the lr column shows it)",
    "schedule.": "the schedule recomputed from the new values at every epoch from the resumed one on",
    "train.keep_epochs": "the epochs whose weights are kept from now on",
    "train.tensorboard": "what is logged from now on",
}


def changed_keys(old: RunConfig, new: RunConfig) -> list[str]:
    """The dotted keys whose values differ ('device' aside: where a run trains is no change to it)."""
    return [line.split(":", 1)[0] for line in diff(old, new) if not line.startswith("device:")]


def refused(keys: Sequence[str]) -> list[str]:
    """The keys of `keys` that cannot take effect in a resumed run."""
    return [key for key in keys if not any(key == name or (name.endswith(".") and key.startswith(name))
                                           for name in RESUMABLE)]


def check_resumable(run_path: Any, old: RunConfig, new: RunConfig) -> list[str]:
    """The changes ('key: old -> new') a resume of `run_path` from `old` to `new` makes; a ConfigError naming
    every key that cannot take effect."""
    changes = [line for line in diff(old, new) if not line.startswith("device:")]
    wrong = refused(changed_keys(old, new))
    if wrong:
        allowed = ", ".join(name + ("*" if name.endswith(".") else "") for name in RESUMABLE)
        raise ConfigError(
            f"refusing to resume '{run_path}' with {', '.join(wrong)} changed: "
            f"{'it is' if len(wrong) == 1 else 'they are'} read only when a run starts (or held in its checkpoint), "
            "so the resumed run would train with the old value while config.yaml says the new one. A resume can "
            f"change {allowed}. Start a new run for the others (another --name, or --overwrite)")
    return changes


def change_entry(changes: Sequence[str], old: RunConfig, new: RunConfig, state: dict[str, Any]) -> dict[str, Any]:
    """run.json's record of one resume's changes: the first epoch and step trained under them (`state`: the
    checkpoint's training position), what changed, and the config hashes before and after."""
    epoch, step = int(state.get("epoch", 0)), int(state.get("step", 0))
    return {"epoch": epoch + 1, "step": step + 1, "changes": list(changes), "from_hash": config_hash(old),
            "config_hash": config_hash(new), "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
