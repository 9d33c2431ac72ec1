"""Checkpoint files: one safetensors file per checkpoint, written atomically.

Tensors (weights under `model.`, optimizer state under `optim.`, RNG states under `rng.`, partial-epoch
accumulators under `partial.`) are stored as safetensors; everything else (epoch, step, optimizer
hyperparameters, metric history, config hash, and a CRC-32 of every tensor) is JSON in the file's metadata
header under 'cnnlab'. One file means one atomic rename: a crash leaves either the old checkpoint or the
new one, never half of each; the checksums catch what the disk or a copy damaged later, and the
checkpoint before the newest is kept (`previous`) so a damaged newest one costs an epoch, not the run.
Loading never unpickles anything.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import DataError
from ..io import atomic_write, keep_previous

FORMAT_VERSION = 2  # 2: a CRC-32 of every tensor's bytes in the header ("checksums"); 1 had none


def save_checkpoint(path: Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any],
                    previous: Path | None = None) -> None:
    """Write a checkpoint atomically; with `previous`, the file being replaced is kept there first."""
    payload = _storable(tensors)
    checksums = {name: _crc(t) for name, t in payload.items()}
    header = {"cnnlab": json.dumps({"format": FORMAT_VERSION, **meta, "checksums": checksums})}
    if previous is not None:
        keep_previous(Path(path), previous)
    atomic_write(Path(path), lambda tmp: _save_file(payload, tmp, header))


def _save_file(payload: dict[str, torch.Tensor], path: Path, header: dict[str, str]) -> None:
    """safetensors' writer reports a failing disk as a SafetensorError '... (os error 28)': give it back
    its OSError, so a full disk reads as a full disk."""
    try:
        save_file(payload, str(path), metadata=header)
    except SafetensorError as exc:
        code = re.search(r"os error (\d+)", str(exc))
        if code is None:
            raise
        number = int(code.group(1))
        raise OSError(number, os.strerror(number), str(path)) from None


def _storable(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Dense, contiguous CPU tensors that share no memory, as safetensors wants them. CPU tensors are passed
    as they are (no copy: a 60M-parameter AlexNet with momentum is 460 MB per checkpoint); a tensor that
    shares memory with an earlier one (tied weights) is copied."""
    seen: set[int] = set()
    payload = {}
    for name, tensor in tensors.items():
        tensor = tensor.detach().to("cpu").contiguous()
        key = tensor.untyped_storage().data_ptr()
        if tensor.numel() and key in seen:
            tensor = tensor.clone()
        seen.add(key)
        payload[name] = tensor
    return payload


def _crc(tensor: torch.Tensor) -> str:
    """CRC-32 of the tensor's bytes as safetensors stores them (little-endian, C order): ~1 GB/s, and
    any flipped bit changes it."""
    data = tensor.contiguous().view(-1).view(torch.uint8).numpy().data if tensor.numel() else b""
    return f"{zlib.crc32(data):08x}"


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata) of a checkpoint, every tensor checked against its stored checksum; a missing,
    truncated, empty or corrupt file raises DataError naming it and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint '{path}' does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"checkpoint '{path}' is empty (0 bytes): it was never completely written")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            meta = json.loads((handle.metadata() or {}).get("cnnlab", "{}"))
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError, json.JSONDecodeError) as exc:
        raise DataError(f"checkpoint '{path}' is corrupt or not a cnnlab checkpoint "
                        f"({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(meta, dict):
        raise DataError(f"checkpoint '{path}' has a corrupt header (not a JSON object)")
    checksums = meta.get("checksums") or {}
    for name, tensor in tensors.items():
        if name in checksums and checksums[name] != _crc(tensor):
            raise DataError(f"checkpoint '{path}' is corrupt: the bytes of tensor '{name}' do not match the "
                            "checksum written with them (a damaged disk, copy or transfer)")
    missing = sorted(set(checksums) - set(tensors))
    if missing:
        raise DataError(f"checkpoint '{path}' is corrupt: tensor '{missing[0]}' is missing")
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
