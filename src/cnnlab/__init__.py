"""cnnlab: build, train, tune, evaluate, compare and explain CNNs for image classification."""

from ._version import __version__
from .api import evaluate, load_run, make_config, predict, train
from .config import RunConfig
from .data import DATASETS
from .errors import CnnlabError, ConfigError, DataError, RunBusy, StorageError
from .models import MODELS
from .optim import OPTIMIZERS, SCHEDULES
from .runs import Run, RunRecord, Status, TrainResult
from .train import Callback

__all__ = [
    "DATASETS", "MODELS", "OPTIMIZERS", "SCHEDULES", "Callback", "CnnlabError", "ConfigError", "DataError",
    "Run", "RunBusy", "RunConfig", "RunRecord", "Status", "StorageError", "TrainResult", "__version__", "evaluate",
    "load_run", "make_config", "predict", "train",
]
