"""cnnlab: build, train, tune, evaluate, compare and explain CNNs for image classification."""

__version__ = "0.1.0"

from .api import Run, evaluate, load_run, make_config, predict, train  # noqa: E402
from .config import RunConfig  # noqa: E402
from .data import DATASETS  # noqa: E402
from .errors import CnnlabError, ConfigError, DataError  # noqa: E402
from .models import MODELS  # noqa: E402
from .optim import OPTIMIZERS, SCHEDULES  # noqa: E402
from .train import TrainResult  # noqa: E402

__all__ = [
    "DATASETS", "MODELS", "OPTIMIZERS", "SCHEDULES", "CnnlabError", "ConfigError", "DataError", "Run",
    "RunConfig", "TrainResult", "__version__", "evaluate", "load_run", "make_config", "predict", "train",
]
