"""A process that ends when the process that started it dies: `cnnlab study run --jobs N`'s workers.

The workers live in sessions of their own (the study decides when to stop them and forwards its signals:
experiments/runner.py), so a kill -9 of the study's process group does not reach them. Left alone they
would train on as orphans, holding their runs' locks. Instead each ends with its study, by SIGKILL, as if it
had been in the killed group: its run is left 'crashed', and the next `cnnlab study run` resumes it from its
last checkpoint.

On Linux the kernel sends the signal (prctl PR_SET_PDEATHSIG; it is kept across exec, and follows the thread
that started the worker: the main thread of `study run`, whose loop outlives its workers). Elsewhere a
thread looks for the parent every PARENT_POLL_SECONDS. A parent that died before this was set up is found
by its pid: an orphan is adopted by another process, so getppid() no longer names it. The program's entry
(cnnlab/_entry.py) sets this up before torch loads, so a worker still starting (seconds on a busy machine)
follows its parent too. This module imports nothing heavy for that reason.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

PARENT_VARIABLE = "CNNLAB_FOLLOW_PARENT"  # the pid of the process to end with, set by the one that starts us
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>: the signal this process gets when its parent (thread) ends
PARENT_POLL_SECONDS = 0.5  # where there is no such signal: how often the parent is looked for


def follow_parent_from_environment() -> str | None:
    """Follow the parent named by $CNNLAB_FOLLOW_PARENT (then removed, so that this process's own children
    do not inherit it); None when it is not set."""
    value = os.environ.pop(PARENT_VARIABLE, None)
    if value is None or not value.isdigit():
        return None
    return follow_parent(int(value))


def follow_parent(parent: int) -> str:
    """End this process by SIGKILL when process `parent` dies (at once if it is gone already); returns how it
    follows: 'prctl' or 'watching'."""
    how = "prctl" if sys.platform.startswith("linux") and _death_signal(signal.SIGKILL) else "watching"
    if how == "watching":
        threading.Thread(target=_watch_parent, args=(parent,), name="cnnlab-parent-watch", daemon=True).start()
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
    return how


def _death_signal(signum: int) -> bool:
    """prctl(PR_SET_PDEATHSIG, signum) through the C library; False where that fails."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):  # no C library to open, or no prctl in it
        return False


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGKILL)
