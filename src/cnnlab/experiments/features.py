"""`cnnlab features`: a trained network as a fixed feature extractor (MISSION.md section 5; Donahue et al.
2014, DeCAF). The penultimate vectors (the input of the output layer: AlexNet's 4096-d FC7) of every
image of the train/val/test splits of a dataset are written to `features_<split>.npz` (float32 `features`,
int64 `labels`, `classes`), then a linear classifier is fitted on them: scikit-learn's multinomial
logistic regression on standardised features, its inverse regularisation C chosen on the validation split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import RunConfig
from ..errors import ConfigError

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
    from ..train import load_splits, make_batches, make_model, resolve_runtime

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runtime = resolve_runtime(config)
    splits = load_splits(config)
    model = make_model(config, splits.spec, runtime)
    report = load_weights(model, weights)
    paths = {}
    for name in ("train", "val", "test"):
        split = getattr(splits, name)
        if split is None:
            continue
        batches = make_batches(split, splits, config, runtime, train=False)
        outputs = collect_outputs(model, batches, runtime.autocast, features=True)
        paths[name] = out / f"features_{name}.npz"
        np.savez(paths[name], features=outputs["features"].numpy().astype(np.float32),
                 labels=outputs["labels"].numpy().astype(np.int64), classes=np.array(splits.spec.classes))
    (out / "features.json").write_text(json.dumps({"weights": report.to_dict(), "splits": list(paths)}, indent=1))
    return paths


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
    (directory / "linear_probe.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    return result
