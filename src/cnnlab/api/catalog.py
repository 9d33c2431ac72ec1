"""What cnnlab has: models (with parameters and FLOPs), datasets, optimizers, and resolved configs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import to_dict
from ..data import DATASETS, DatasetInfo
from ..errors import ConfigError
from ..models import MODELS
from ..models.summary import ModelSummary, describe
from ..optim import OPTIMIZERS, OptimInfo
from .training import make_config


@dataclass(frozen=True)
class ModelEntry:
    name: str
    parameters: int
    input_size: tuple[int, int, int]
    flops: int
    description: str


def models(pattern: str = "*") -> list[ModelEntry]:
    """The registered models matching a shell pattern, each measured at its own input size."""
    entries = []
    for name in MODELS.names(pattern):
        info, summary = MODELS.get(name), describe(name)
        entries.append(ModelEntry(name, summary.parameters, info.input_size, summary.flops, info.description))
    if not entries:
        raise ConfigError(f"no model matches '{pattern}'; `cnnlab models` lists them all")
    return entries


def summary(model: str, options: Sequence[str] = (), input_shape: tuple[int, int, int] | None = None,
            num_classes: int | None = None) -> ModelSummary:
    """Layers, output shapes, parameters and FLOPs of `model` with `key=value` options."""
    return describe(model, options, input_shape, num_classes)


def datasets() -> list[DatasetInfo]:
    return [DATASETS.get(name) for name in DATASETS]


def optimizers() -> list[OptimInfo]:
    return [OPTIMIZERS.get(name) for name in OPTIMIZERS]


def resolved_config(config: str | Path | None = None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The whole config as a run would write it to config.yaml: defaults + file + overrides."""
    return to_dict(make_config(config, overrides))


BENCH_MARKER = "cnnlab bench"  # in each row of its JSON file: what `bench --out` may replace


def bench(model: str = "convnet", batch_size: int = 64, *, device: str = "auto", precision: str = "auto",
          channels_last: bool | None = None, data: str = "synthetic", mode: str = "train",
          image_size: int | None = None, compile: bool | str = "auto", steps: int = 20, warmup: int = 5,
          repeats: int = 5, compare: str | None = None,
          out: str | Path | None = None) -> tuple[list[dict[str, Any]], Path]:
    """Images per second of one step (experiments/bench.py); the rows also go to a JSON file (default
    runs/bench/MODEL_MODE_DATA_BATCH.json)."""
    from ..experiments.bench import BenchCase, run_bench
    from ..io import MARKER_KEY, atomic_write_json, check_output_file

    if model not in MODELS.names() and mode != "loader":
        MODELS.get(model)  # the registry's error: unknown name, closest match
    case = BenchCase(model, batch_size, device, precision, channels_last, data, mode, image_size, compile)
    path = Path(out or f"runs/bench/{model}_{mode}_{data}_b{batch_size}.json")
    check_output_file(path, "--out", (".json",), marker=BENCH_MARKER)  # replaces only its own files
    rows = run_bench(case, steps, warmup, repeats, compare)
    atomic_write_json(path, [{MARKER_KEY: BENCH_MARKER, **row} for row in rows])
    return rows, path
