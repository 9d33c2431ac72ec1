"""A run's life: where it lives (RunDir), what run.json says (RunRecord, Status), who owns it (a lock),
and how it starts, resumes, finishes and is decided on by studies (`decide`)."""

from ..train.status import FINISHED, Status
from .decide import Action, decide
from .directory import RunDir, create_run_dir, plan_run_dir
from .history import History
from .lifecycle import TrainResult, resume_run, start_run
from .record import RunRecord
from .run import Run, checkpoint_path, load_run
from .session import prepare_session, restores_best

__all__ = [
    "FINISHED", "Action", "History", "Run", "RunDir", "RunRecord", "Status", "TrainResult", "checkpoint_path",
    "create_run_dir", "decide", "load_run", "plan_run_dir", "prepare_session", "restores_best", "resume_run",
    "start_run",
]
