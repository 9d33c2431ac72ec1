"""Running the real `cnnlab` program as a subprocess, measuring it, and giving it a small disk of its own."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab.train.checkpoint import load_checkpoint, split_prefix

# a run of a few seconds: 320 digits, LeNet-5, 10 steps per epoch
TINY = ["data=digits", "model=lenet5", "data.train_limit=320", "batch_size=32", "epochs=3"]
TIME_COLUMNS = ("train_seconds", "val_seconds", "images_per_second")


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    max_rss_mb: float  # peak resident memory of the process

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cnnlab", *args]


def cli(*args: str, cwd: Path, timeout: float = 240, env: dict | None = None) -> Finished:
    """Run `cnnlab ARGS` to the end; its exit code, output and peak memory (os.wait4's rusage)."""
    process = start(*args, cwd=cwd, env=env)
    return finish(process, timeout)


def cli_all(*commands: tuple[str, ...], cwd: Path, timeout: float = 240) -> list[Finished]:
    """Several `cnnlab` commands at once (they are independent; most of each is starting Python and torch)."""
    processes = [start(*args, cwd=cwd) for args in commands]
    return [finish(process, timeout) for process in processes]


def cli_here(*args: str, cwd: Path) -> Finished:
    """`cnnlab ARGS` through the program's entry point (cnnlab.cli.main) in this process: the same parsing,
    messages, files and exit code, without the 3 s of starting Python and torch again. For what a process of
    its own adds nothing to; kills, signals, memory bounds and concurrent processes run as real ones."""
    from cnnlab.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return Finished(code, out.getvalue(), err.getvalue(), 0.0)


def start(*args: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """Start `cnnlab ARGS`; a thread watches its peak memory (`process.peak_mb`) from the first moment."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen(command(*args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=environment)
    process.peak_mb = [0.0]

    def watch() -> None:
        while process.poll() is None:
            process.peak_mb[0] = max(process.peak_mb[0], high_water_mb(process.pid))
            time.sleep(0.01)

    process.watcher = threading.Thread(target=watch, daemon=True)
    process.watcher.start()
    return process


def finish(process: subprocess.Popen, timeout: float = 240) -> Finished:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise TimeoutError(f"cnnlab {process.args[3:]} ran past {timeout} s") from None
    process.watcher.join()
    return Finished(process.returncode, out, err, process.peak_mb[0])


def high_water_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM: per address space, so it starts over at exec and
    never counts the pages a fork shares with its parent, which getrusage's ru_maxrss does)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def wait_for(condition, timeout: float = 120, what: str = "", process: subprocess.Popen | None = None) -> None:
    """Poll `condition`; fail with the process's output if it ended first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended (exit {process.returncode}) before {what}: "
                                 f"{process.stdout.read()}{process.stderr.read()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.02)


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def metrics_rows(run: Path) -> int:
    path = run / "metrics.csv"
    return max(len(path.read_text().splitlines()) - 1, 0) if path.is_file() else 0


def weights(run: Path, name: str = "last") -> dict[str, torch.Tensor]:
    tensors, _ = load_checkpoint(run / "checkpoints" / f"{name}.safetensors")
    return split_prefix(tensors, "model.")


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def untimed_metrics(run: Path) -> list[dict]:
    from cnnlab.train import read_metrics

    return [{k: v for k, v in row.items() if k not in TIME_COLUMNS} for row in read_metrics(run / "metrics.csv")]


def tree(root: Path) -> dict[str, int]:
    """Every file under `root` with its size: to prove a command wrote or deleted nothing."""
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}


def kill(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    process.send_signal(sig)


def small_disk_available() -> bool:
    """Whether a test may mount a tmpfs of its own: in a user+mount namespace (`unshare -rm`, no root
    needed), which keeps the mount invisible to everything else."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt && echo ok"],
                           capture_output=True, text=True)
    return probe.stdout.strip() == "ok"


def on_small_disk(script: str, mount_point: Path, size: str, cwd: Path, options: str = "",
                  timeout: float = 240) -> subprocess.CompletedProcess:
    """Run a shell `script` in a private mount namespace where `mount_point` is a fresh tmpfs of `size`
    (`options` e.g. 'ro'). $CNNLAB runs the cnnlab program; $PY the Python interpreter."""
    mount_options = f"size={size}" + (f",{options}" if options else "")
    wrapped = f"mount -t tmpfs -o {mount_options} tmpfs '{mount_point}' && {script}"
    env = {**os.environ, "PY": sys.executable, "CNNLAB": f"{sys.executable} -m cnnlab", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(["unshare", "-rm", "sh", "-c", wrapped], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=timeout)
