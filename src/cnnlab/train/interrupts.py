"""SIGINT and SIGTERM as a request to stop, one per process.

The first signal only records itself: the training step in progress finishes, a checkpoint is written and
the run ends as 'interrupted'; a study or search loop around the run sees the same request and starts no
further run. A second signal ends the process at once (exit 128 + its number), which corrupts nothing
because every file cnnlab writes is written atomically.

A `study run --jobs N` worker and a rank of a distributed run do not escalate (`watching(escalate=False)`):
every signal they get is the one request. SLURM's `scancel` (and `kill` of a whole process tree) signals
them directly and their parent (the study, torchrun) forwards the same request a moment later; counted as
two, they would exit without their checkpoint. The parent escalates for them instead: the study with
SIGKILL on its own second signal, torchrun with SIGKILL after its shutdown timeout.

One flag for the whole process, not one per trainer: a signal that arrives after the last epoch (while the
test split is scored and run.json written) must neither kill the process mid-way, leaving a finished run
that reads 'running', nor be swallowed by a trainer that has already returned, so that the study goes on
to its next run as if nothing had been asked.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

WATCHED = (signal.SIGINT, signal.SIGTERM)


def unignored() -> list[int]:
    """The WATCHED signals this process was not started ignoring. An ignored one stays ignored (a
    background job of a script, `nohup`): it was not meant for this process."""
    return [s for s in WATCHED if signal.getsignal(s) is not signal.SIG_IGN]


class StopRequest:
    """`with STOP.watching():` installs the handlers (nested scopes share them; the outermost one restores
    the previous handlers and forgets the request); `STOP.signal` is the first signal seen, or None."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._depth = 0
        self._previous: dict[int, Any] = {}
        self._escalate = True

    @contextlib.contextmanager
    def watching(self, escalate: bool = True) -> Iterator[None]:
        """`escalate`: whether a second signal exits at once (the outermost scope decides)."""
        if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
            yield
            return
        if self._depth == 0:
            self.signal = None
            self._escalate = escalate
            self._previous = {s: signal.signal(s, self._handler) for s in unignored()}
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                for sig, old in self._previous.items():
                    signal.signal(sig, old)
                self.signal = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.signal is not None and self._escalate:
            os.write(2, f"{signal.Signals(signum).name} again: exiting now; the last checkpoint is intact\n".encode())
            os._exit(128 + signum)
        if self.signal is None:
            self.signal = signum


STOP = StopRequest()


@contextlib.contextmanager
def default_signals() -> Iterator[None]:
    """SIGINT and SIGTERM take their default action inside (the process ends at once), and a request taken
    before it ends the process the same way. For a wait no stop request can reach and in which nothing is
    written: torch.distributed's meeting of the ranks blocks until every rank arrives, so a rank that only
    recorded its signal there would hold the run (and torchrun's shutdown) until a timeout, or be left
    behind as an orphan when torchrun gives up on it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_DFL) for s in unignored()}
    try:
        if STOP.signal is not None:
            signal.raise_signal(STOP.signal)
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
