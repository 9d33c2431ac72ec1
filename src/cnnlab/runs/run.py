"""A run read back from its directory: config, record, metrics, and its network with trained weights.

Weights are refused, with the file named, when they do not fit the run's model (another architecture or
class count) or hold NaN/Inf (what a diverged run leaves): evaluation, prediction and features never
report numbers computed from garbage.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import RunConfig
from ..data import Batches, DataSpec, DataSplits, ImageSet
from ..errors import ConfigError, DataError
from ..train import Runtime, resolve_runtime
from ..train.build import LoaderSpec, make_batches, make_model, split_batches, splits_of
from ..train.checkpoint import load_checkpoint, split_prefix
from ..train.status import Status
from .directory import RunDir
from .identity import check_checkpoint, inside, run_metrics
from .record import RunRecord
from .session import restores_best

CHECKPOINTS = ("auto", "best", "last", "previous")


@dataclass
class Run:
    """A finished (or interrupted) run: `record` is run.json, typed; `info` the same as a plain dict."""

    path: Path
    config: RunConfig
    record: RunRecord

    @property
    def info(self) -> dict[str, Any]:
        return self.record.to_dict()

    @property
    def status(self) -> Status:
        return RunDir(self.path).status() or self.record.status

    @property
    def spec(self) -> DataSpec:
        if not self.record.data:
            raise ConfigError(f"{self.path}/run.json has no data description; the run never started")
        try:
            return DataSpec.from_dict(self.record.data)
        except (TypeError, KeyError, ValueError) as exc:  # RunRecord checks that 'data' is an object, not its keys
            raise ConfigError(f"{self.path}/run.json: field 'data' is not the data description cnnlab wrote "
                              f"({type(exc).__name__}: {exc}); restore run.json from a copy") from None

    def metrics(self) -> list[dict[str, Any]]:
        """metrics.csv, checked against the digest run.json recorded of it (runs/identity.py)."""
        return run_metrics(self.path, self.record)

    def data_config(self, device: str | None = None) -> RunConfig:
        """The run's config for re-reading its data: the same split (folder datasets: exactly the files in
        its split.json), on `device` if given."""
        config = self.config if device is None else dataclasses.replace(self.config, device=device)
        if (self.path / "split.json").is_file():
            data = dataclasses.replace(config.data, split_file=str(self.path / "split.json"))
            config = dataclasses.replace(config, data=data)
        return config

    def splits(self, device: str | None = None) -> DataSplits:
        """The run's data splits as it saw them (its input size, its own mean/std and classes)."""
        splits = splits_of(self.data_config(device), image_size=self.spec.image_size)
        return dataclasses.replace(splits, spec=self.spec)

    def batches(self, split: str = "test", device: str | None = None, batch_size: int | None = None,
                enlarged: bool = False) -> tuple[Batches, Runtime]:
        """Unaugmented batches of `split` ('test', 'val' or 'train') exactly as the run saw its data, and
        the runtime they live on; `enlarged`: folder images at their evaluation resize (256 for 224) instead
        of its centre crop, and in-memory images zero-padded by the run's augment.crop_padding, for test-time
        crops (evaluate/tta.py)."""
        if split not in ("test", "val", "train"):
            raise ConfigError(f"split must be 'test', 'val' or 'train', got '{split}'")
        config = self.data_config(device)
        runtime = resolve_runtime(config)
        splits = self.splits(device)
        if getattr(splits, split) is None:
            raise ConfigError(f"run '{self.path}' has no validation split (data.val_fraction was 0)")
        loader = LoaderSpec.for_evaluation(config, batch_size)
        if enlarged and splits.spec.eval_resize:
            spec = dataclasses.replace(splits.spec, image_size=splits.spec.eval_resize)
            return make_batches(getattr(splits, split), spec, loader, runtime, splits.cache), runtime
        pad = config.augment.crop_padding if config.augment.enabled else 0
        if enlarged and pad and isinstance(getattr(splits, split), ImageSet):
            # the run trained on random crops of its images zero-padded by `pad`: test crops come from the same
            # padded images, so the corners are the translations it learned (not a rescaled image it never saw)
            data = getattr(splits, split)
            padded = ImageSet(torch.nn.functional.pad(data.images, (pad, pad, pad, pad)), data.labels)
            spec = dataclasses.replace(splits.spec, image_size=splits.spec.image_size + 2 * pad)
            return make_batches(padded, spec, loader, runtime, splits.cache), runtime
        return split_batches(splits, split, loader, runtime), runtime

    def model(self, checkpoint: str = "auto", device: str | torch.device = "cpu",
              runtime: Runtime | None = None) -> nn.Module:
        """The network with the weights of `checkpoint` ('best', 'last', 'previous', a file path, or 'auto':
        those the run's own test score used), in eval mode: the EMA weights in it when the run scored those
        (train.ema_decay with train.ema_eval). On `device` in NCHW, or on `runtime`'s device and layout."""
        run = RunDir(self.path)
        path = checkpoint_path(run, checkpoint, self.config)
        tensors, meta = load_checkpoint(path)
        if inside(path, run):  # a file of the run's own folder must be its own (a --checkpoint FILE elsewhere is
            check_checkpoint(run, path, meta, self.record)  # the user's explicit choice; its shapes are checked)
        model = make_model(self.config.model, self.spec, runtime or Runtime(torch.device(device), None, False))
        load_trained_weights(model, split_prefix(tensors, weights_prefix(self.config, tensors)), path)
        return model.eval()


def weights_prefix(config: RunConfig, tensors: dict[str, torch.Tensor]) -> str:
    """'ema.' when the run scores its EMA weights and the checkpoint holds them, else 'model.'."""
    scores_ema = config.train.ema_decay > 0 and config.train.ema_eval
    return "ema." if scores_ema and any(name.startswith("ema.") for name in tensors) else "model."


def load_trained_weights(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Load a full state dict into `model`, refusing (DataError naming `path`) shapes that do not fit and
    non-finite values."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise DataError(f"'{path}' holds non-finite weights (NaN/Inf in '{name}'); a diverged run leaves "
                            "such weights: evaluate another checkpoint (--checkpoint best or last)")
    own = model.state_dict()
    wrong = [f"{k}: {tuple(v.shape)} in the file, {tuple(own[k].shape)} in the model" for k, v in state.items()
             if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in state]
    if wrong or missing:
        detail = wrong[0] if wrong else f"'{missing[0]}' is missing from the file"
        raise DataError(f"the weights in '{path}' do not fit this run's model {type(model).__name__} ({detail}"
                        f"{f' and {len(wrong) + len(missing) - 1} more' if len(wrong) + len(missing) > 1 else ''}); "
                        "is it a checkpoint of this run?")
    model.load_state_dict(state)


def checkpoint_name(checkpoint: str, config: RunConfig) -> str:
    """'auto' means the weights the run's own test score used."""
    if checkpoint == "auto":
        return "best" if restores_best(config) else "last"
    return checkpoint


def checkpoint_path(run: RunDir, checkpoint: str, config: RunConfig) -> Path:
    name = checkpoint_name(checkpoint, config)
    if name in CHECKPOINTS:
        path = {"best": run.best, "last": run.last, "previous": run.previous}[name]
        if name == "best" and not path.is_file():
            path = run.last  # no validation split: 'best' was never written
        if not path.is_file():
            raise ConfigError(f"'{run.path}' has no checkpoint ({path.name} is missing)")
        return path
    path = Path(checkpoint)
    if not path.is_file():
        raise ConfigError(f"--checkpoint '{checkpoint}' is neither {', '.join(CHECKPOINTS)} nor an existing file")
    return path


def load_run(path: str | Path) -> Run:
    run = RunDir(path).require()
    record = run.record()
    if record is None:
        raise ConfigError(f"'{run.path}' has no run.json: the run never started; train it again")
    return Run(run.path, run.read_config(), record)
