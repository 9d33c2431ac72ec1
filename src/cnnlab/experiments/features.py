"""`cnnlab features`: a trained network as a fixed feature extractor (Bagnoli 2019's Caltech-101 study; Donahue et al.
2014, DeCAF). The penultimate vectors (the input of the output layer: AlexNet's 4096-d FC7) of every
image of the train/val/test splits of a dataset are written to `features_<split>.npz` (float32 `features`,
int64 `labels`, `classes`), then a linear classifier is fitted on them: scikit-learn's multinomial
logistic regression on standardised features, its inverse regularisation C chosen on the validation split.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import RunConfig
from ..errors import ConfigError
from ..io import atomic_write, atomic_write_json, check_output_dir, make_dirs

C_GRID = (0.01, 0.1, 1.0, 10.0)


@dataclass
class ProbeResult:
    c: float
    accuracy: dict[str, float]  # split -> top-1
    dimensions: int

    def to_dict(self) -> dict[str, Any]:
        return {"classifier": "logistic_regression", "C": self.c, "accuracy": self.accuracy,
                "dimensions": self.dimensions}


def export_features(config: RunConfig, weights: str | Path, out: str | Path) -> dict[str, Path]:
    """Write features_<split>.npz for every split the dataset has; returns their paths."""
    from ..evaluate.outputs import collect_outputs
    from ..models.weights import load_weights
    from ..train import LoaderSpec, make_model, resolve_runtime, split_batches, splits_of

    out = check_output_dir(Path(out), "features.json", "--out")
    runtime = resolve_runtime(config)
    splits = splits_of(config)
    model = make_model(config.model, splits.spec, runtime)
    report = load_weights(model, weights, config.model.name)
    make_dirs(out)
    paths = {}
    for name in ("train", "val", "test"):
        if getattr(splits, name) is None:
            continue
        batches = split_batches(splits, name, LoaderSpec.for_evaluation(config), runtime)
        outputs = collect_outputs(model, batches, runtime.scoring, features=True)
        paths[name] = out / f"features_{name}.npz"
        atomic_write(paths[name], functools.partial(_save_npz, outputs=outputs, classes=splits.spec.classes))
    atomic_write_json(out / "features.json", {"weights": report.to_dict(), "splits": list(paths)})
    return paths


def _save_npz(path: Path, outputs: dict[str, Any], classes: tuple[str, ...]) -> None:
    with open(path, "wb") as handle:  # a file object: np.savez would add '.npz' to a temporary name
        np.savez(handle, features=outputs["features"].numpy().astype(np.float32),
                 labels=outputs["labels"].numpy().astype(np.int64), classes=np.array(classes))


def load_features(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as data:
        return data["features"], data["labels"]


def linear_probe(directory: str | Path, seed: int = 0) -> ProbeResult:
    """Logistic regression on the exported features; C chosen on val (or 1.0 without a val split)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    directory = Path(directory)
    data = {n: load_features(directory / f"features_{n}.npz") for n in ("train", "val", "test")
            if (directory / f"features_{n}.npz").is_file()}
    if "train" not in data:
        raise ConfigError(f"'{directory}' has no features_train.npz; run `cnnlab features` first")

    def fit(c: float) -> Any:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed))
        return model.fit(*data["train"])

    if "val" in data:
        scores = {c: fit(c).score(*data["val"]) for c in C_GRID}
        best_c = max(C_GRID, key=lambda c: (scores[c], -c))  # ties: the stronger regularisation
    else:
        best_c = 1.0
    model = fit(best_c)
    accuracy = {name: float(model.score(*xy)) for name, xy in data.items()}
    result = ProbeResult(best_c, accuracy, int(data["train"][0].shape[1]))
    atomic_write_json(directory / "linear_probe.json", result.to_dict())
    return result
