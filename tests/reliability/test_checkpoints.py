"""Checkpoints survive kills, corruption and full disks; foreign weight files never execute code.

Checks 1, 3, 4, 5 and 6 of the fault-injection list (issue 12)."""

from __future__ import annotations

import os
import pickle
import random
import shutil
import signal
import struct
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from cnnlab.errors import DataError
from cnnlab.models.weights import read_state_dict
from cnnlab.runs import RunDir, Status
from cnnlab.train.checkpoint import load_checkpoint, save_checkpoint
from tests.reliability.helpers import (
    TINY,
    cli,
    cli_here,
    metrics_rows,
    on_small_disk,
    small_disk_available,
    start,
    wait_for,
)


def crashed_after_first_epoch(tmp_path: Path, name: str = "run", epochs: int = 3) -> Path:
    """A real run killed with SIGKILL right after its first checkpoint: run.json still says 'running'."""
    process = start("train", *TINY, f"epochs={epochs}", "--name", name, "--quiet", cwd=tmp_path)
    run = tmp_path / "runs" / name
    wait_for(lambda: metrics_rows(run) >= 1 and (run / "checkpoints" / "last.safetensors").is_file(),
             what="the first checkpoint", process=process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return run


def test_sigkill_while_checkpoints_are_written_leaves_a_loadable_one_and_resume_completes(tmp_path: Path) -> None:
    """1. Writers of `last` (with `previous` kept) are SIGKILLed at random moments, 12 times; after each,
    both files load with valid checksums, and `--resume` then finishes the run and removes the leftovers."""
    run = crashed_after_first_epoch(tmp_path)
    last, previous = run / "checkpoints" / "last.safetensors", run / "checkpoints" / "previous.safetensors"
    tensors, meta = load_checkpoint(last)
    padded = {**tensors, "pad.bytes": torch.randn(3_000_000)}  # 12 MB: a write takes long enough to be hit
    writes = tmp_path / "writes.log"
    rng = random.Random(0)
    torch.set_num_threads(1)  # a forked child must not enter a parallel region its parent used
    for trial in range(12):
        pid = os.fork()
        if pid == 0:  # the writer: checkpoints as fast as it can until it is killed
            try:
                for count in range(1_000_000):
                    save_checkpoint(last, {**padded, "trial": torch.tensor([trial, count])}, meta, previous=previous)
                    with open(writes, "a") as handle:
                        handle.write(f"{trial} {count}\n")
            finally:
                os._exit(0)
        # the kill lands at a random moment after this writer's first whole write (not before it: on a loaded
        # machine a fixed delay could end before a fork has written anything at all)
        wait_for(lambda t=trial: writes.is_file() and f"\n{t} " in "\n" + writes.read_text(), what=f"writer {trial}")
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        for path in (last, previous):
            loaded, loaded_meta = load_checkpoint(path)  # checksums verified: never half of a write
            assert loaded_meta["state"] == meta["state"] and torch.equal(loaded["model.features.c1.weight"],
                                                                         tensors["model.features.c1.weight"])
    completed = writes.read_text().splitlines()
    assert len({line.split()[0] for line in completed}) == 12  # every writer finished a write before its kill
    leftovers = list((run / "checkpoints").glob(".*.tmp"))
    assert leftovers, "some kills landed mid-write"
    assert RunDir(run).status() == Status.CRASHED  # run.json says running, nobody holds the lock

    done = cli("train", "--resume", str(run), "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.output
    record = RunDir(run).record()
    assert record.status == Status.COMPLETED and record.epochs_completed == 3 and record.sessions == 2
    assert not list((run / "checkpoints").glob(".*.tmp")) and not list(run.glob(".*.tmp"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed run of 4 epochs: last = epoch 4, previous = epoch 3 (trained in this process: the
    checkpoints are what is tested here, and a crash and resume is the test above)."""
    root = tmp_path_factory.mktemp("finished")
    finished = cli_here("train", *TINY, "epochs=4", "--name", "run", "--quiet", cwd=root)
    assert finished.returncode == 0, finished.output
    return root / "runs" / "run"


def damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "flipped":
        data[-100] ^= 0x40  # one bit in the last tensor's bytes, far from the header
    else:
        data = bytearray()
    path.write_bytes(bytes(data))


def test_a_damaged_last_checkpoint_is_named_and_the_previous_one_resumes(tmp_path: Path, finished_run: Path) -> None:
    """3. A truncated, byte-flipped or zero-byte `last`: exit 2 naming the file and offering the previous
    checkpoint; `--checkpoint previous` resumes from it and completes."""
    kinds = ("truncated", "flipped", "empty")
    for kind in kinds:
        shutil.copytree(finished_run, tmp_path / kind)
        damage(tmp_path / kind / "checkpoints" / "last.safetensors", kind)
    refused = [cli_here(*args, cwd=tmp_path) for args in (*(("train", "--resume", kind, "--quiet") for kind in kinds),
                                                          ("eval", "flipped", "--checkpoint", "last"))]
    for kind, result in zip(kinds, refused):
        assert result.returncode == 2 and "Traceback" not in result.stderr, (kind, result.output)
        assert "last.safetensors" in result.stderr and "--checkpoint previous" in result.stderr
        assert {"truncated": "corrupt", "flipped": "checksum", "empty": "empty"}[kind] in result.stderr
    assert refused[-1].returncode == 2 and "last.safetensors" in refused[-1].stderr  # eval names it too

    resumed = [cli_here("train", "--resume", kind, "--checkpoint", "previous", "--quiet", cwd=tmp_path)
               for kind in kinds]
    for kind, result in zip(kinds, resumed):
        assert result.returncode == 0, result.output
        record = RunDir(tmp_path / kind).record()
        assert record.status == Status.COMPLETED and record.epochs_completed == 4 and record.sessions == 2
        load_checkpoint(tmp_path / kind / "checkpoints" / "last.safetensors")  # rewritten whole


def test_a_changed_config_on_resume_is_refused_with_the_differing_keys(tmp_path: Path, finished_run: Path) -> None:
    """10. Resuming with other settings: exit 2, each differing key with its old and new value."""
    refused = cli_here("train", "--resume", str(finished_run), "lr=0.5", "model.activation=relu", cwd=tmp_path)
    assert refused.returncode == 2 and "refusing to resume" in refused.stderr
    assert "optim.lr: 0.02 -> 0.5" in refused.stderr and "model.activation: 'tanh' -> 'relu'" in refused.stderr


DISK_FULL_SCRIPT = """
$CNNLAB train {args} --runs-dir '{disk}/runs' --name r --quiet > '{out}/train.out' 2> '{out}/train.err' &
pid=$!
while [ ! -f '{disk}/runs/r/checkpoints/last.safetensors' ]; do sleep 0.05; done
dd if=/dev/zero of='{disk}/filler' bs=64k 2>/dev/null
wait $pid; echo "train=$?"
$PY -c "from cnnlab.train.checkpoint import load_checkpoint; t, m = load_checkpoint('{disk}/runs/r/checkpoints/last.safetensors'); print('epoch=%d' % m['state']['epoch'])"
rm '{disk}/filler'
$CNNLAB train --resume '{disk}/runs/r' --quiet > /dev/null 2> '{out}/resume.err'; echo "resume=$?"
$PY -c "import json; print('status=' + json.load(open('{disk}/runs/r/run.json'))['status'])"
"""


@pytest.mark.skipif(not small_disk_available(), reason="no user+mount namespaces here (unshare -rm)")
def test_disk_full_while_saving_is_a_message_and_the_run_resumes(tmp_path: Path) -> None:
    """4. A real full disk (a 6 MB tmpfs, filled up while the run trains): exit 2 with a message, the
    previous checkpoint intact; after space is freed, --resume completes."""
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    args = " ".join([*TINY, "epochs=40"])
    result = on_small_disk(DISK_FULL_SCRIPT.format(args=args, disk=disk, out=out), disk, "6m", tmp_path)
    lines = dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)
    err = (out / "train.err").read_text()
    assert lines.get("train") == "2", result.stdout + result.stderr + err
    assert "no space left" in err and "Traceback" not in err
    assert int(lines["epoch"]) >= 1  # the checkpoint before the failed one loads
    assert lines.get("resume") == "0", (out / "resume.err").read_text()
    assert lines.get("status") == "completed"


@pytest.mark.skipif(small_disk_available(), reason="a real full disk is tested above")
def test_disk_full_while_saving_injected(tmp_path: Path) -> None:
    """4, where no namespace (so no tmpfs) can be made: ENOSPC from the fourth checkpoint write on:
    exit 2, the previous checkpoint intact, resumable once the disk is 'freed'."""
    script = tmp_path / "full.py"
    script.write_text(
        "import errno, sys\n"
        "import importlib\n"
        "checkpoint = importlib.import_module('cnnlab.train.checkpoint')\n"
        "real, calls = checkpoint.save_file, []\n"
        "def save_file(tensors, path, metadata=None):\n"
        "    calls.append(path)\n"
        "    if len(calls) >= 4:\n"
        "        open(path, 'wb').write(b'half')\n"
        "        raise OSError(errno.ENOSPC, 'No space left on device', path)\n"
        "    return real(tensors, path, metadata=metadata)\n"
        "checkpoint.save_file = save_file\n"
        "from cnnlab.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
    import subprocess
    import sys

    full = subprocess.run([sys.executable, str(script), "train", *TINY, "epochs=5", "--name", "r", "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert full.returncode == 2 and "no space left" in full.stderr and "Traceback" not in full.stderr
    run = tmp_path / "runs" / "r"
    _, meta = load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert meta["state"]["epoch"] >= 1 and not list((run / "checkpoints").glob(".*.tmp"))
    resumed = cli("train", "--resume", str(run), "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.output
    assert RunDir(run).record().status == Status.COMPLETED


class Payload:
    """What a hostile .pt file carries: unpickling it would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def test_a_pickle_payload_as_weights_is_refused_and_never_runs(tmp_path: Path) -> None:
    """5. torch.save'd state dicts (.pt, .pth) with a code-running object inside, and a bare pickle:
    refused (torch.load weights_only), exit 2, the marker file the payload would create is absent."""
    marker = tmp_path / "pwned"
    paths = []
    for suffix in (".pt", ".pth"):
        evil = tmp_path / f"evil{suffix}"
        torch.save({"features.c1.weight": torch.zeros(6, 1, 5, 5), "hook": Payload(marker)}, evil)
        raw = tmp_path / f"raw{suffix}"
        raw.write_bytes(pickle.dumps(Payload(marker)))  # a bare pickle, not even a torch file
        paths += [evil, raw]
    commands = [("train", *TINY, "epochs=1", "--weights", str(p), "--name", p.stem) for p in paths]
    results = [cli(*commands[0], cwd=tmp_path)]  # the program itself, then its entry point in this process
    results += [cli_here(*args, cwd=tmp_path) for args in commands[1:]]
    for path, result in zip(paths, results):
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.output
        assert str(path) in result.stderr
        assert not (tmp_path / "runs" / path.stem).exists()  # refused before anything was created
    assert not marker.exists()


def valid_checkpoint(tmp_path: Path) -> bytes:
    path = tmp_path / "good.safetensors"
    save_checkpoint(path, {"model.conv1.weight": torch.randn(6, 1, 5, 5), "model.fc.bias": torch.randn(10)},
                    {"state": {"epoch": 1}})
    return path.read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_safetensors_are_a_data_error_never_a_crash(tmp_path: Path, data) -> None:
    """6. Mutations of a real checkpoint (flipped bytes, cuts, a forged header length, random bytes) read
    as checkpoint and as weights: loaded (when the mutation is harmless) or a DataError; nothing else."""
    good = valid_checkpoint(tmp_path)
    kind = data.draw(st.sampled_from(["flip", "cut", "header", "random", "json"]))
    blob = bytearray(good)
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            blob[data.draw(st.integers(0, len(blob) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "cut":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "header":
        blob[:8] = struct.pack("<Q", data.draw(st.integers(0, 2**64 - 1)))
    elif kind == "random":
        blob = bytearray(data.draw(st.binary(min_size=0, max_size=400)))
    else:
        header = data.draw(st.binary(min_size=0, max_size=60))
        blob = bytearray(struct.pack("<Q", len(header)) + header)
    path = tmp_path / "fuzzed.safetensors"
    path.write_bytes(bytes(blob))
    for read in (load_checkpoint, read_state_dict):
        try:
            read(path)
        except DataError:
            pass


def test_damaged_or_foreign_checkpoints_through_the_program_exit_2(tmp_path: Path, finished_run: Path) -> None:
    """6, end to end, and a checkpoint that does not fit or holds NaN: `cnnlab eval`, `predict` and
    `train --weights` print one message naming the file and exit 2, never a traceback."""
    good = (finished_run / "checkpoints" / "last.safetensors").read_bytes()
    rng = random.Random(1)
    damaged = {"cut": good[: len(good) // 3], "header": struct.pack("<Q", 2**63) + good[8:],
               "noise": bytes(rng.getrandbits(8) for _ in range(300))}
    flipped = bytearray(good)
    flipped[len(good) - 50] ^= 0xFF
    damaged["flip"] = bytes(flipped)
    for name, blob in damaged.items():
        (tmp_path / f"{name}.safetensors").write_bytes(blob)
    other = tmp_path / "other.safetensors"
    save_file({"model.features.c1.weight": torch.zeros(3, 3, 3, 3)}, str(other))
    tensors, meta = load_checkpoint(finished_run / "checkpoints" / "last.safetensors")
    tensors["model.features.c1.weight"][0, 0, 0, 0] = float("nan")
    nan = tmp_path / "nan.safetensors"
    save_checkpoint(nan, tensors, meta)
    image = tmp_path / "digit.png"
    from PIL import Image

    Image.new("L", (8, 8), 128).save(image)

    commands = {f"eval {name}": ("eval", str(finished_run), "--checkpoint", str(tmp_path / f"{name}.safetensors"))
                for name in damaged}
    commands["eval other"] = ("eval", str(finished_run), "--checkpoint", str(other))
    commands["eval nan"] = ("eval", str(finished_run), "--checkpoint", str(nan))
    commands["predict nan"] = ("predict", str(finished_run), str(image), "--checkpoint", str(nan))
    commands["train nan"] = ("train", *TINY, "--weights", str(nan), "--name", "from_nan")
    results = {what: cli_here(*args, cwd=tmp_path) for what, args in commands.items() if what != "train nan"}
    results["train nan"] = cli(*commands["train nan"], cwd=tmp_path)  # one through the program itself
    for what, result in results.items():
        assert result.returncode == 2 and "Traceback" not in result.stderr, (what, result.output)
        assert result.stderr.count("error:") == 1, (what, result.stderr)
    for name in damaged:
        assert f"{name}.safetensors" in results[f"eval {name}"].stderr
    assert "do not fit" in results["eval other"].stderr and "features.c1.weight" in results["eval other"].stderr
    for what in ("eval nan", "predict nan", "train nan"):
        assert "NaN/Inf" in results[what].stderr and "nan.safetensors" in results[what].stderr
    assert not (tmp_path / "runs" / "from_nan").exists()
