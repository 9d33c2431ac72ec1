"""Checkpoint files: one safetensors file per checkpoint, written atomically.

Tensors (weights under `model.`, optimizer state under `optim.`, RNG states under `rng.`, partial-epoch
accumulators under `partial.`) are stored as safetensors; everything else (epoch, step, optimizer
hyperparameters, metric history, config hash) is JSON in the file's metadata header under 'cnnlab'.
One file means one atomic rename: a crash leaves either the old checkpoint or the new one, never half
of each. Loading never unpickles anything.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import DataError

FORMAT_VERSION = 1


def atomic_write(path: Path, write: Any) -> None:
    """Call `write(tmp_path)`, fsync it, then rename over `path` and fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def save_checkpoint(path: Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    payload = {name: _storable(t) for name, t in tensors.items()}
    header = {"cnnlab": json.dumps({"format": FORMAT_VERSION, **meta})}
    atomic_write(Path(path), lambda tmp: save_file(payload, str(tmp), metadata=header))


def _storable(tensor: torch.Tensor) -> torch.Tensor:
    # safetensors wants dense, contiguous, unshared CPU tensors
    return tensor.detach().to("cpu", copy=True).contiguous()


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata) of a checkpoint; a missing or corrupt file raises DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint '{path}' does not exist")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            meta = json.loads((handle.metadata() or {}).get("cnnlab", "{}"))
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as exc:
        raise DataError(f"checkpoint '{path}' is corrupt or not a cnnlab checkpoint ({exc})") from None
    return tensors, meta


def split_prefix(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {name[len(prefix):]: t for name, t in tensors.items() if name.startswith(prefix)}


def optimizer_to_flat(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """torch's optimizer state_dict as (tensors 'optim.<param>.<key>', JSON-able rest)."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_flat(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in split_prefix(tensors, "optim.").items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for name, value in meta.get("scalars", {}).items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_tensors() -> dict[str, torch.Tensor]:
    states = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            states[f"rng.cuda.{index}"] = state
    return states


def restore_rng(tensors: Mapping[str, torch.Tensor]) -> None:
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])
    cuda = split_prefix(tensors, "rng.cuda.")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([cuda[str(i)] for i in range(len(cuda))])
