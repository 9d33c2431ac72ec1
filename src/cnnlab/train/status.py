"""The states a run can be in. Defined here, where training first produces them; `cnnlab.runs` and
everything above read and write run.json with these values only.

running        a process is training it (its lock is held)
completed      trained every epoch and scored the test set
stopped_early  an early-stopping criterion (or a pruner) ended it; test set scored
diverged       the training loss became NaN/Inf or exploded past train.divergence_threshold (exit 3)
interrupted    SIGINT/SIGTERM: checkpointed mid-epoch, resumable (exit 130/143)
failed         an exception ended it; the traceback is in run.json
crashed        run.json says running but no process holds its lock (killed hard, power loss): resumable
"""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED_EARLY = "stopped_early"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    CRASHED = "crashed"

    def __str__(self) -> str:
        return self.value

    @property
    def finished(self) -> bool:
        """A result (a divergence is one too): studies skip it, tables show it."""
        return self in FINISHED

    @property
    def scored(self) -> bool:
        """The test set was scored."""
        return self in (Status.COMPLETED, Status.STOPPED_EARLY)


FINISHED = frozenset({Status.COMPLETED, Status.STOPPED_EARLY, Status.DIVERGED})
