"""What to do with a planned run when a study, a tuning grid or a comparison meets it: a pure decision of
its status, used by all three so they can never disagree."""

from __future__ import annotations

from enum import Enum

from ..train.status import Status


class Action(str, Enum):
    SKIP = "skip"  # a result already (completed, stopped early, diverged), or failed and not asked to re-run
    RESUME = "resume"  # interrupted or crashed with a checkpoint to continue from
    START = "start"  # never run, or nothing to continue from

    def __str__(self) -> str:
        return self.value


def decide(status: Status | str | None, has_checkpoint: bool, rerun_failed: bool = False) -> Action:
    status = None if status is None else Status(status)
    if status is not None and (status.finished or (status == Status.FAILED and not rerun_failed)):
        return Action.SKIP
    if status in (Status.INTERRUPTED, Status.CRASHED, Status.RUNNING) and has_checkpoint:
        return Action.RESUME
    return Action.START
