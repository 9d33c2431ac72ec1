from pathlib import Path

import pytest
import torch

from cnnlab.errors import DataError
from cnnlab.io import atomic_write
from cnnlab.train.checkpoint import load_checkpoint, save_checkpoint


def test_round_trip_keeps_tensors_and_metadata(tmp_path: Path) -> None:
    tensors = {"model.w": torch.randn(3, 4), "rng.torch": torch.get_rng_state(), "optim.0.step": torch.tensor(5.0)}
    save_checkpoint(tmp_path / "c.safetensors", tensors, {"state": {"epoch": 2}, "note": "x"})
    loaded, meta = load_checkpoint(tmp_path / "c.safetensors")
    assert all(torch.equal(loaded[k], v) for k, v in tensors.items())
    assert meta["state"] == {"epoch": 2} and meta["format"] == 2 and set(meta["checksums"]) == set(tensors)


def test_failed_write_leaves_the_old_checkpoint_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, {"a": torch.ones(2)}, {"epoch": 1})

    def broken(tmp: Path) -> None:
        tmp.write_bytes(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(path, broken)
    tensors, meta = load_checkpoint(path)
    assert meta["epoch"] == 1 and torch.equal(tensors["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "best.safetensors"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(DataError, match="best.safetensors' is corrupt"):
        load_checkpoint(path)
    with pytest.raises(DataError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_previous_is_kept_and_a_cut_short_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    """`previous` holds the checkpoint before the newest; when a save died between keeping the previous and
    writing the new last (both names then point at one file), the next save leaves no temporary file."""
    last, previous = tmp_path / "last.safetensors", tmp_path / "previous.safetensors"
    save_checkpoint(last, {"a": torch.ones(2)}, {"epoch": 1}, previous=previous)
    save_checkpoint(last, {"a": torch.full((2,), 2.0)}, {"epoch": 2}, previous=previous)
    assert load_checkpoint(previous)[1]["epoch"] == 1 and load_checkpoint(last)[1]["epoch"] == 2
    from cnnlab.io import keep_previous

    keep_previous(last, previous)  # the first half of a save that was then killed
    save_checkpoint(last, {"a": torch.full((2,), 3.0)}, {"epoch": 3}, previous=previous)
    assert load_checkpoint(previous)[1]["epoch"] == 2 and load_checkpoint(last)[1]["epoch"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.safetensors", "previous.safetensors"]
