"""Checkpoint files at their edges: real safetensors files written and damaged by the test (a flipped byte, a
header naming a tensor the file lacks, a foreign file), tied weights, an optimizer whose state holds plain numbers,
the RNG states; the cases mutation testing (docs/mutation.md) showed tests/train/test_checkpoint.py could not tell
apart from a wrong train/checkpoint.py."""

from __future__ import annotations

import errno
import json
import os
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from cnnlab.errors import DataError
from cnnlab.train.checkpoint import (
    _save_file,
    load_checkpoint,
    optimizer_from_flat,
    optimizer_to_flat,
    restore_rng,
    rng_tensors,
    save_checkpoint,
)


def test_the_header_holds_each_tensors_crc32_of_its_little_endian_bytes(tmp_path: Path) -> None:
    tensors = {"model.w": torch.arange(6, dtype=torch.float32).view(2, 3), "model.empty": torch.zeros(0)}
    save_checkpoint(tmp_path / "c.safetensors", tensors, {"epoch": 1})
    _, meta = load_checkpoint(tmp_path / "c.safetensors")
    as_bytes = np.arange(6, dtype="<f4").tobytes()
    assert meta["checksums"] == {"model.w": f"{zlib.crc32(as_bytes):08x}", "model.empty": "00000000"}


def test_a_flipped_byte_in_a_tensor_is_found(tmp_path: Path) -> None:
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, {"model.w": torch.ones(64)}, {"epoch": 3})
    data = bytearray(path.read_bytes())
    data[-7] ^= 0x10  # inside the last tensor's bytes (the header comes first)
    path.write_bytes(bytes(data))
    with pytest.raises(DataError) as damaged:
        load_checkpoint(path)
    assert str(damaged.value) == (f"checkpoint '{path}' is corrupt: the bytes of tensor 'model.w' do not match the "
                                  "checksum written with them (a damaged disk, copy or transfer)")


def test_a_tensor_the_header_lists_but_the_file_lacks_is_found(tmp_path: Path) -> None:
    path = tmp_path / "cut.safetensors"
    header = {"format": 2, "checksums": {"model.w": f"{zlib.crc32(np.ones(2, '<f4').tobytes()):08x}",
                                         "model.gone": "00000000"}}
    save_file({"model.w": torch.ones(2)}, str(path), metadata={"cnnlab": json.dumps(header)})
    with pytest.raises(DataError) as missing:
        load_checkpoint(path)
    assert str(missing.value) == f"checkpoint '{path}' is corrupt: tensor 'model.gone' is missing"


def test_empty_foreign_and_odd_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(DataError) as error:
        load_checkpoint(empty)
    assert str(error.value) == f"checkpoint '{empty}' is empty (0 bytes): it was never completely written"
    one = tmp_path / "one.safetensors"
    one.write_bytes(b"\x00")
    with pytest.raises(DataError, match=r"one.safetensors' is corrupt or not a cnnlab checkpoint \(SafetensorError: "):
        load_checkpoint(one)
    # a safetensors file another program wrote (no cnnlab header): its tensors, no metadata, nothing to check
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.ones(3)}, str(foreign))
    tensors, meta = load_checkpoint(foreign)
    assert meta == {} and torch.equal(tensors["w"], torch.ones(3))
    listed = tmp_path / "list.safetensors"
    save_file({"w": torch.ones(3)}, str(listed), metadata={"cnnlab": "[1, 2]"})
    with pytest.raises(DataError) as odd:
        load_checkpoint(listed)
    assert str(odd.value) == f"checkpoint '{listed}' has a corrupt header (not a JSON object)"
    garbled = tmp_path / "garbled.safetensors"
    save_file({"w": torch.ones(3)}, str(garbled), metadata={"cnnlab": "{not json"})
    with pytest.raises(DataError, match=r"is corrupt or not a cnnlab checkpoint \(JSONDecodeError: Expecting"):
        load_checkpoint(garbled)


def test_tied_weights_are_stored_once_each(tmp_path: Path) -> None:
    shared = torch.randn(4, 3)
    tensors = {"model.embed": shared, "model.decode": shared, "model.again": shared, "model.other": torch.ones(2)}
    save_checkpoint(tmp_path / "tied.safetensors", tensors, {})  # safetensors refuses tensors that share memory
    loaded, _ = load_checkpoint(tmp_path / "tied.safetensors")
    assert all(torch.equal(loaded[name], value) for name, value in tensors.items())
    assert torch.equal(shared, tensors["model.embed"])  # the caller's tensor is untouched


def test_a_failing_disk_reads_as_the_os_error_it_is(tmp_path: Path) -> None:
    """safetensors reports a write failure as a SafetensorError '... (os error N)'; it comes back as OSError N
    (here a real one: writing to a path that is a directory)."""
    target = tmp_path / "a_directory"
    target.mkdir()
    with pytest.raises(OSError) as error:
        _save_file({"w": torch.ones(2)}, target, {"cnnlab": "{}"})
    assert type(error.value) is IsADirectoryError and error.value.errno == errno.EISDIR
    assert error.value.strerror == os.strerror(errno.EISDIR) and error.value.filename == str(target)


class Traced(torch.optim.Optimizer):
    """An optimizer whose state holds plain numbers and a key with a dot in it, beside tensors."""

    def __init__(self, params) -> None:
        super().__init__(params, {"lr": 0.1})

    @torch.no_grad()
    def step(self, closure=None) -> None:
        for group in self.param_groups:
            for param in group["params"]:
                state = self.state[param]
                state["count"] = state.get("count", 0) + 1
                state["trace.fast"] = state.get("trace.fast", torch.zeros_like(param)) * 0.5 + param.grad
                param -= group["lr"] * state["trace.fast"]


def test_optimizer_state_with_numbers_and_dotted_keys_round_trips(tmp_path: Path) -> None:
    weights = [torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))]
    optimizer = Traced(weights)
    for _ in range(2):
        optimizer.zero_grad()
        sum((w**2).sum() for w in weights).backward()
        optimizer.step()
    tensors, meta = optimizer_to_flat(optimizer)
    assert sorted(tensors) == ["optim.0.trace.fast", "optim.1.trace.fast"]
    assert meta["scalars"] == {"0.count": 2, "1.count": 2}
    save_checkpoint(tmp_path / "opt.safetensors", tensors, {"optimizer": meta})
    tensors, stored = load_checkpoint(tmp_path / "opt.safetensors")
    state = optimizer_from_flat(tensors, stored["optimizer"])
    assert state["state"][0]["count"] == 2 and torch.equal(state["state"][1]["trace.fast"],
                                                           optimizer.state[weights[1]]["trace.fast"])
    restored = Traced([torch.nn.Parameter(w.detach().clone()) for w in weights])
    restored.load_state_dict(state)
    assert restored.state_dict()["state"][0]["count"] == 2
    # a checkpoint from before plain numbers were kept has no 'scalars'
    assert optimizer_from_flat(tensors, {"param_groups": stored["optimizer"]["param_groups"]})["state"][0] == {
        "trace.fast": tensors["optim.0.trace.fast"]}


def test_the_rng_state_restores_the_same_draws() -> None:
    saved = rng_tensors()
    assert set(saved) == {"rng.torch"} or all(k == "rng.torch" or k.startswith("rng.cuda.") for k in saved)
    first = torch.rand(5)
    restore_rng(saved)
    assert torch.equal(torch.rand(5), first)
    now = torch.get_rng_state()
    restore_rng({"model.w": torch.ones(1)})  # no RNG state saved: the generator is left as it is
    assert torch.equal(torch.get_rng_state(), now)


def test_a_long_reader_error_is_cut_at_200_characters(tmp_path: Path) -> None:
    import struct

    from safetensors import safe_open

    path = tmp_path / "odd.safetensors"  # a header naming a dtype that does not exist, 300 letters long
    header = json.dumps({"w": {"dtype": "Q" * 300, "shape": [1], "data_offsets": [0, 4]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    with pytest.raises(Exception) as reader:
        with safe_open(str(path), framework="pt", device="cpu"):
            pass
    assert len(str(reader.value)) > 200
    with pytest.raises(DataError) as error:
        load_checkpoint(path)
    assert str(error.value) == (f"checkpoint '{path}' is corrupt or not a cnnlab checkpoint "
                                f"(SafetensorError: {str(reader.value)[:200]})")


def test_optimizer_state_of_plain_numbers_only_and_dotted_number_keys() -> None:
    trace = torch.ones(2)
    meta = {"param_groups": [{"params": [0, 1]}], "scalars": {"0.seen.steps": 3, "1.count": 2}}
    state = optimizer_from_flat({"optim.0.trace.fast": trace, "model.w": torch.zeros(1)}, meta)
    assert state == {"state": {0: {"trace.fast": trace, "seen.steps": 3}, 1: {"count": 2}},
                     "param_groups": [{"params": [0, 1]}]}


def test_a_gpu_runs_rng_states_do_not_stop_a_resume_on_the_cpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("on a machine with CUDA the states are restored (tests/test_gpu.py)")
    saved = {"rng.torch": torch.get_rng_state(), "rng.cuda.0": torch.zeros(16, dtype=torch.uint8)}
    first = torch.rand(3)
    restore_rng(saved)  # the CUDA state has no device to go to: left out, the CPU state restored
    assert torch.equal(torch.rand(3), first)
