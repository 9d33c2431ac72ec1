"""cnnlab: build, train, tune, evaluate, compare and explain CNNs for image classification."""

__version__ = "0.1.0"

from .api import evaluate, load_run, make_config, predict, train  # noqa: E402
from .config import RunConfig  # noqa: E402
from .data import DATASETS  # noqa: E402
from .errors import CnnlabError, ConfigError, DataError, RunBusy, StorageError  # noqa: E402
from .models import MODELS  # noqa: E402
from .optim import OPTIMIZERS, SCHEDULES  # noqa: E402
from .runs import Run, RunRecord, Status, TrainResult  # noqa: E402
from .train import Callback  # noqa: E402

__all__ = [
    "DATASETS", "MODELS", "OPTIMIZERS", "SCHEDULES", "Callback", "CnnlabError", "ConfigError", "DataError",
    "Run", "RunBusy", "RunConfig", "RunRecord", "Status", "StorageError", "TrainResult", "__version__", "evaluate",
    "load_run", "make_config", "predict", "train",
]
