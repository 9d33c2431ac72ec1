"""The public Python API; the CLI calls exactly these functions.

    import cnnlab
    result = cnnlab.train(model="convnet", data="fashion-mnist", epochs=15)
    print(result.accuracy, result.run_dir)
    report = cnnlab.evaluate(result.run_dir, split="test")
    run = cnnlab.load_run(result.run_dir); model = run.model("best")
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import (
    RunConfig,
    diff,
    flatten,
    keyword_layer,
    load_config,
    load_yaml_layer,
    parse_overrides,
    resolve,
    to_dict,
)
from .data import DataSpec
from .errors import ConfigError
from .evaluate import per_class_accuracy
from .train import (
    Callback,
    RunDir,
    TrainResult,
    load_splits,
    make_batches,
    make_model,
    new_run_dir,
    read_metrics,
    resolve_runtime,
    restores_best,
    resume_run,
    start_run,
)
from .train.checkpoint import load_checkpoint, split_prefix
from .train.runtime import Runtime


def make_config(config: str | Path | RunConfig | None = None, overrides: Sequence[str] = (),
                **keywords: Any) -> RunConfig:
    """A RunConfig from a YAML path or an existing RunConfig, plus `key=value` overrides and keywords."""
    if isinstance(config, RunConfig):
        return resolve(flatten(to_dict(config)), parse_overrides(overrides), keyword_layer(keywords))
    return load_config(config, overrides, keywords)


def train(
    config: str | Path | RunConfig | None = None,
    overrides: Sequence[str] = (),
    *,
    name: str | None = None,
    runs_dir: str | Path = "runs",
    resume: str | Path | None = None,
    allow_config_change: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    callbacks: Sequence[Callback] = (),
    data_root: str | None = None,
    **keywords: Any,
) -> TrainResult:
    """Train one run. `keywords` are config overrides (`epochs=15`, `model="lenet5"`, or dotted keys via
    `**{"optim.lr": 0.1}`). With `resume=RUN_DIR` the run continues from its last checkpoint; a changed
    config is refused unless `allow_config_change`."""
    if data_root is not None:
        keywords = {**keywords, "data.root": data_root}
    if resume is not None:
        return _resume(Path(resume), config, overrides, keywords, allow_config_change, quiet, callbacks)
    cfg = make_config(config, overrides, **keywords)
    run = new_run_dir(runs_dir, name, cfg, overwrite)
    return start_run(cfg, run, quiet=quiet, callbacks=callbacks)


def _resume(path: Path, config: Any, overrides: Sequence[str], keywords: Mapping[str, Any],
            allow_change: bool, quiet: bool, callbacks: Sequence[Callback]) -> TrainResult:
    run = RunDir(path).require()
    saved = run.read_config()
    layers = [flatten(to_dict(saved), lambda keys: str(run.config_path))]
    if isinstance(config, (str, Path)):
        layers.append(load_yaml_layer(config))
    elif isinstance(config, RunConfig):
        layers.append(flatten(to_dict(config)))
    layers += [parse_overrides(overrides), keyword_layer(keywords)]
    requested = resolve(*layers)
    changes = [c for c in diff(saved, requested) if not c.startswith("device:")]
    if changes and not allow_change:
        raise ConfigError(
            f"refusing to resume '{run.path}' with a changed config:\n  " + "\n  ".join(changes)
            + "\nResume without these changes, or pass --allow-config-change (allow_config_change=True)."
        )
    return resume_run(requested, run, quiet=quiet, callbacks=callbacks)


@dataclass
class Run:
    """A finished (or interrupted) run, read back from its directory."""

    path: Path
    config: RunConfig
    info: dict[str, Any]

    @property
    def spec(self) -> DataSpec:
        if "data" not in self.info:
            raise ConfigError(f"{self.path}/run.json has no data description; the run never started")
        return DataSpec.from_dict(self.info["data"])

    @property
    def status(self) -> str:
        return self.info.get("status", "unknown")

    def metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.path / "metrics.csv") if (self.path / "metrics.csv").is_file() else []

    def model(self, checkpoint: str = "auto", device: str | torch.device = "cpu") -> nn.Module:
        """The network with the weights of `checkpoint` ('best', 'last', a file path, or 'auto': those the
        run's own test score used), in eval mode."""
        path = _checkpoint_path(RunDir(self.path), checkpoint, self.config)
        tensors, _ = load_checkpoint(path)
        runtime = Runtime(torch.device(device), None, False)
        model = make_model(self.config, self.spec, runtime)
        model.load_state_dict(split_prefix(tensors, "model."))
        return model.eval()


def checkpoint_name(checkpoint: str, config: RunConfig) -> str:
    """'auto' means the weights the run's own test score used."""
    if checkpoint == "auto":
        return "best" if restores_best(config) else "last"
    return checkpoint


def _checkpoint_path(run: RunDir, checkpoint: str, config: RunConfig) -> Path:
    checkpoint = checkpoint_name(checkpoint, config)
    if checkpoint in ("best", "last"):
        path = run.best if checkpoint == "best" else run.last
        if checkpoint == "best" and not path.is_file():
            path = run.last  # no validation split: 'best' was never written
        if not path.is_file():
            raise ConfigError(f"'{run.path}' has no checkpoint ({path.name} is missing)")
        return path
    return Path(checkpoint)


def load_run(path: str | Path) -> Run:
    run = RunDir(path).require()
    return Run(run.path, run.read_config(), run.read_info())


def evaluate(run_dir: str | Path, split: str = "test", checkpoint: str = "auto",
             device: str | None = None, write: bool = True) -> dict[str, Any]:
    """Loss, top-1, top-5, per-class accuracy and confusion matrix of a run on `split` ('test'|'val').
    Writes eval_<split>.json, confusion_<split>.csv and plots/confusion_<split>.png into the run."""
    run = load_run(run_dir)
    batches, runtime = split_batches(run, split, device)
    spec = run.spec
    model = run.model(checkpoint, runtime.device)
    from .evaluate import evaluate_model

    metrics = evaluate_model(model, batches, spec.num_classes, runtime.autocast, confusion=True)
    confusion = metrics.pop("confusion")
    report = {"split": split, "checkpoint": checkpoint_name(checkpoint, run.config), **metrics,
              "per_class": dict(zip(spec.classes, per_class_accuracy(confusion))),
              "confusion": confusion.tolist(), "classes": list(spec.classes)}
    if write:
        _write_eval(run.path, split, report, confusion, spec)
    return report


def split_batches(run: Run, split: str, device: str | None = None) -> tuple[Any, Runtime]:
    """The batches of `split` ('test', 'val' or 'train', unaugmented) exactly as the run saw its data
    (same split, size and normalisation), and the runtime they live on."""
    if split not in ("test", "val", "train"):
        raise ConfigError(f"split must be 'test', 'val' or 'train', got '{split}'")
    overrides: dict[str, Any] = {"device": device} if device else {}
    if (run.path / "split.json").is_file():  # folder datasets: exactly the files the run was split into
        overrides["data.split_file"] = str(run.path / "split.json")
    config = make_config(run.config, **overrides) if overrides else run.config
    runtime = resolve_runtime(config)
    spec = run.spec
    splits = load_splits(config, image_size=spec.image_size)
    data = {"test": splits.test, "val": splits.val, "train": splits.train}[split]
    if data is None:
        raise ConfigError(f"run '{run.path}' has no validation split (data.val_fraction was 0)")
    return make_batches(data, replace(splits, spec=spec), config, runtime, train=False), runtime


def _write_eval(path: Path, split: str, report: dict[str, Any], confusion: torch.Tensor, spec: DataSpec) -> None:
    from .viz.confusion import plot_confusion

    (path / f"eval_{split}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["true\\predicted," + ",".join(spec.classes)]
    lines += [f"{name}," + ",".join(str(int(v)) for v in row) for name, row in zip(spec.classes, confusion)]
    (path / f"confusion_{split}.csv").write_text("\n".join(lines) + "\n")
    plot_confusion(confusion, spec.classes, path / "plots" / f"confusion_{split}.png",
                   title=f"{path.name}: {split} (top-1 {100 * report['acc']:.2f}%)")


def predict(run_dir: str | Path, images: Sequence[str | Path], k: int = 5, checkpoint: str = "auto",
            device: str = "cpu") -> list[dict[str, Any]]:
    """Top-k labels with probabilities for each image file."""
    from .evaluate.images import read_image

    run = load_run(run_dir)
    spec = run.spec
    batch = torch.stack([read_image(p, spec) for p in images]).to(device)
    model = run.model(checkpoint, device)
    mean = torch.tensor(spec.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, device=device).view(1, -1, 1, 1)
    with torch.inference_mode():
        probs = torch.softmax(model((batch.float() / 255 - mean) / std).float(), dim=1)
    top = probs.topk(min(k, spec.num_classes), dim=1)
    return [
        {"image": str(path), "top": [(spec.classes[i], float(p)) for p, i in zip(values.tolist(), indices.tolist())]}
        for path, values, indices in zip(images, top.values, top.indices)
    ]


def show_samples(config: RunConfig, split: str = "train", count: int = 32, augment: bool = False,
                 out: str | Path = "samples.png") -> Path:
    """A PNG grid of `count` images of a split with their labels; with `augment`, as training sees them."""
    from .train.runtime import Runtime
    from .viz.samples import plot_samples

    splits = load_splits(config)
    data = getattr(splits, split)
    if data is None:
        raise ConfigError(f"dataset '{config.data.name}' has no {split} split with this config")
    count = min(count, len(data))
    config = make_config(config, **{"train.batch_size": count, "train.eval_batch_size": count})
    batches = make_batches(data, splits, config, Runtime(torch.device("cpu"), None, False), train=augment)
    images, labels = next(iter(batches.batches(0)))
    spec = splits.spec
    mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.std).view(1, -1, 1, 1)
    titles = [spec.classes[int(i)] for i in labels]
    what = "augmented " if augment else ""
    plot_samples(images.float() * std + mean, titles, out, title=f"{spec.dataset}: {what}{split} samples")
    return Path(out)
