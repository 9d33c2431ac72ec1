"""`cnnlab average`: the weights of several saved epochs of one run averaged into a new run.

Stochastic weight averaging (Izmailov et al. 2018, "Averaging Weights Leads to Wider Optima and Better
Generalization", algorithm 1) averages the weights the optimizer visited, then recomputes the batch-norm
statistics of the averaged network with one pass over the training data, because the running statistics of
the individual epochs do not describe the averaged weights (their section 3.2). Here the points are the
epoch checkpoints a run kept (`train.keep_epochs`), averaged with equal weights; the statistics come from
one pass over the training split, unaugmented, in eval batches, each image weighted alike (`recompute_batch_norm`:
torch.optim.swa_utils.update_bn weights each *batch* alike, which a smaller last batch, or eval batches capped
on the CPU, skews: 45% off on one channel of a digits run). The result is a run
directory like any other (config.yaml of the source, checkpoints/last.safetensors, run.json with its test
score and `averaged`), so `cnnlab eval` and `cnnlab predict` take it.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import cast

import torch
from torch import nn

from ..config import HASH_SCHEME, config_hash
from ..data import Batches
from ..errors import ConfigError
from ..evaluate.metrics import evaluate_model
from ..io import owner_identity
from ..runs import Run, RunDir, create_run_dir, plan_run_dir
from ..runs.identity import check_checkpoint, new_run_id
from ..runs.record import RunRecord
from ..runs.run import load_trained_weights
from ..runs.versions import versions
from ..train import Status, resolve_runtime
from ..train.build import make_model
from ..train.checkpoint import load_checkpoint, save_checkpoint, split_prefix


def chosen_epochs(source: Run, epochs: Sequence[int] | None, last: int | None) -> list[int]:
    """The epochs to average: given, or the run's last `last` epochs; each must have been kept."""
    if (epochs is None) == (last is None):
        raise ConfigError("give the epochs to average with --epochs 3,4,5 or --last N (one of them)")
    completed = source.record.epochs_completed
    if last is not None:
        if not 1 <= last <= completed:
            raise ConfigError(f"--last {last}: the run trained {completed} epochs; give 1 to {completed}")
        epochs = range(completed - last + 1, completed + 1)
    assert epochs is not None
    chosen = sorted(set(epochs))
    missing = [e for e in chosen if not RunDir(source.path).epoch_checkpoint(e).is_file()]
    if missing:
        kept = sorted(source.config.train.keep_epochs)
        raise ConfigError(f"'{source.path}' did not keep the weights of epoch{'s' if len(missing) > 1 else ''} "
                          f"{', '.join(map(str, missing))} (train.keep_epochs={list(kept)}): train the run with "
                          f"train.keep_epochs=[{','.join(map(str, chosen))}] to average those epochs")
    if len(chosen) < 2:
        raise ConfigError(f"averaging needs at least two epochs, got {chosen}")
    return chosen


def average_weights(paths: Sequence[Path], source: Run | None = None,
                    epochs: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
    """The equal-weight mean of the checkpoints' raw weights (`model.`); integer buffers (batch counts) from
    the last one. With `source` (and the `epochs` the paths are named for), each checkpoint must be that run's
    own, of that epoch (runs/identity.py): another run's file copied in is a DataError naming it."""
    total: dict[str, torch.Tensor] = {}
    for index, path in enumerate(paths):
        tensors, meta = load_checkpoint(path)
        if source is not None:
            check_checkpoint(RunDir(source.path), path, meta, source.record,
                             epoch=None if epochs is None else epochs[index])
        for name, tensor in split_prefix(tensors, "model.").items():
            if tensor.is_floating_point():
                total[name] = total.get(name, 0) + tensor.double()
            else:
                total[name] = tensor
    return {name: t.float() if t.is_floating_point() else t for name, t in
            ((name, t / len(paths) if t.is_floating_point() else t) for name, t in total.items())}


def _in_order(batches: Batches) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """One pass over `batches` in order, as evaluation reads them."""
    return cast(Iterable[tuple[torch.Tensor, torch.Tensor]], batches)


def batch_norm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def recompute_batch_norm(batches: Iterable[tuple[torch.Tensor, torch.Tensor]], model: nn.Module,
                         device: torch.device) -> None:
    """The running statistics of every batch-norm layer as the mean over the images of `batches`: each batch's
    momentum is its share of the images seen so far (n / (seen + n)), so the running mean is the per-image mean
    whatever the batch sizes (the running variance averages the batches' unbiased variances alike)."""
    layers = batch_norm_layers(model)
    momenta = [m.momentum for m in layers]
    for layer in layers:
        layer.reset_running_stats()
    training, seen = model.training, 0
    model.train()
    with torch.no_grad():
        for images, _ in batches:
            for layer in layers:
                layer.momentum = images.shape[0] / (seen + images.shape[0])
            model(images.to(device))
            seen += images.shape[0]
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum
    model.train(training)


def average_run(source: Run, epochs: Sequence[int], name: str | None = None, runs_dir: str | Path | None = None,
                overwrite: bool = False, device: str | None = None) -> RunDir:
    """A new run `name` (default SOURCE-avg) in `runs_dir` (default the source's folder) holding the average of
    the source's kept `epochs`, batch-norm statistics recomputed, scored on the test set."""
    started, now = time.perf_counter(), time.strftime("%Y-%m-%dT%H:%M:%S")
    config = source.config
    runs_dir = Path(runs_dir) if runs_dir is not None else source.path.parent
    run = plan_run_dir(runs_dir, name or f"{source.path.name}-avg", config, overwrite)
    paths = [RunDir(source.path).epoch_checkpoint(e) for e in epochs]
    runtime = resolve_runtime(config if device is None else dataclasses.replace(config, device=device))
    model = make_model(config.model, source.spec, runtime)
    load_trained_weights(model, average_weights(paths, source, epochs), paths[-1])
    recomputed = bool(batch_norm_layers(model))
    if recomputed:
        recompute_batch_norm(_in_order(source.batches("train", device)[0]), model, runtime.device)
    test_batches, _ = source.batches("test", device)
    test = evaluate_model(model.eval(), _in_order(test_batches), source.spec.num_classes, runtime.scoring)
    averaged = {"source": str(source.path), "epochs": list(epochs), "batch_norm_recomputed": recomputed}
    run = create_run_dir(run, runs_dir, overwrite, named=True)
    try:
        run.write_config(config)
        if (source.path / "split.json").is_file():
            shutil.copyfile(source.path / "split.json", run.path / "split.json")
        digest, run_id = config_hash(config), new_run_id()
        save_checkpoint(run.last, {f"model.{k}": v for k, v in model.state_dict().items()},
                        {"epoch": max(epochs), "averaged": averaged, "config_hash": digest,
                         "config_hash_scheme": HASH_SCHEME, "run_id": run_id})
        run.save(RunRecord(
            status=Status.COMPLETED, reason=f"average of epochs {', '.join(map(str, epochs))} of {source.path.name}",
            config_hash=digest, seed=config.seed, device=runtime.describe(), versions=versions(),
            parameters=source.record.parameters, data=source.record.data, run_dir=str(run.path),
            owner=owner_identity(), started=now, ended=now,
            sessions=1, epochs_completed=max(epochs), test={k: test[k] for k in ("loss", "acc", "top5", "count")},
            wall_seconds=time.perf_counter() - started, recipe=source.record.recipe, averaged=averaged, run_id=run_id))
    finally:
        run.release()
    return run
