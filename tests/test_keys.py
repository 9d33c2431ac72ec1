"""No config key is silently without effect (issue 33, item 6): every key of the config, on every kind of
dataset (in memory with a test split of its own, in memory without one, a folder of image files), set away
from its default on a short real run, either changes the run (its weights, its metrics, its splits, its files,
what run.json records it did) or is refused or noted with the reason. `data.test_per_class=100` on
Fashion-MNIST was ignored without a word.

A few keys act only on an event a two-epoch CPU run cannot show (a corrupt file, a diverging loss, a GPU);
EVENT names each with the event and the test that shows its effect there."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import cnnlab
from cnnlab.config import RunConfig
from cnnlab.errors import CnnlabError
from tests.helpers import write_jpeg_tree, write_mnist_like

# the kinds of data a key can meet: name -> (base overrides, writer of its files under a folder)
FMNIST, DIGITS, FOLDER = "Fashion-MNIST files, in memory, own test split", "digits, fixed test split", \
    "an image folder, test split carved"
KINDS: dict[str, Callable[[Path], list[str]]] = {
    FMNIST: lambda root: ["data=fashion-mnist", f"data.root={write_mnist_like(root / 'fmnist', train=120, test=40)}"],
    DIGITS: lambda root: ["data=digits", "data.train_limit=96"],
    FOLDER: lambda root: [
        "data=imagefolder", f"data.root={write_jpeg_tree(root / 'tree', {'a': 14, 'b': 14, 'c': 14}, (20, 20))}",
        "data.image_size=32"],
}
BASE = ["model=lenet5", "epochs=2", "batch_size=16", "device=cpu", "train.precision=fp32"]

# key -> the value it is set to (a value away from the default that should make a difference)
VALUES: dict[str, Any] = {
    "seed": 1,
    "data.val_fraction": 0.3, "data.test_fraction": 0.3, "data.train_per_class": 6, "data.val_per_class": 2,
    "data.test_per_class": 5, "data.split_seed": 5, "data.classes": ["0", "1"], "data.exclude_classes": ["0"],
    "data.coarse_labels": True, "data.normalize": "unit", "data.image_size": 36, "data.resize": "pad",
    "data.channels": 3, "data.shuffle": False, "data.train_limit": 40, "data.val_into_train": True,
    "data.cache": "disk", "data.cache_size": 40, "data.workers": 0, "data.skip_bad": True, "data.max_pixels": 10**6,
    "data.drop_test_leaks": True,
    "augment.enabled": False, "augment.hflip": True, "augment.crop_padding": 1, "augment.rotation": 20.0,
    "augment.scale": [0.5, 1.0], "augment.color_jitter": 0.3, "augment.erasing": 0.5, "augment.pca_lighting": 0.5,
    "augment.pca_lighting_scale": "eigenvalue", "augment.mixup_alpha": 0.4, "augment.cutmix_alpha": 1.0,
    "augment.mix_prob": 0.5, "augment.mix_switch_prob": 0.3,
    "model.freeze": "conv", "model.reset_head": True, "model.sync_bn": True,
    "optim.name": "adam", "optim.lr": 0.05, "optim.weight_decay": 0.01, "optim.no_decay_bias_norm": True,
    "optim.backbone_lr_factor": 0.3, "optim.lr_scaling": "linear",
    "schedule.name": "step", "schedule.warmup_epochs": 1.0, "schedule.warmup_start": 0.1,
    "schedule.per_iteration": True,
    "train.epochs": 3, "train.batch_size": 8, "train.precision": "bf16", "train.channels_last": False,
    "train.graphs": True, "train.monitor": "val_loss", "train.restore_best": True, "train.tensorboard": True,
    "train.mlflow": True, "train.mlflow_experiment": "keys", "train.mlflow_required": True, "train.keep_epochs": [1],
    "train.grad_accum_steps": 2, "train.label_smoothing": 0.1, "train.ema_decay": 0.5, "train.ema_eval": False,
    "stop.criterion": "patience", "stop.metric": "val_loss", "stop.mode": "max", "stop.alpha": 1.0, "stop.strip": 2,
    "stop.strips": 1, "stop.patience": 1, "stop.min_delta": 0.5, "stop.restore_best": False,
}
# keys whose effect a short CPU run cannot show: the event they wait for, and where a test shows their effect
EVENT = {
    "device": "which device: this machine has one (tests/test_gpu.py, on CUDA)",
    "data.name": "the dataset itself: every kind here is one",
    "data.root": "where the dataset is: every kind here names one",
    "data.split_file": "reuses an earlier run's split.json (tests/data/test_split_file.py)",
    "model.name": "the model itself (tests/models: every model of the registry)",
    "model.weights": "starting weights (tests/models/test_weights.py)",
    "train.compile": "torch.compile: compiles for minutes on a CPU (tests/test_bench.py, tests/train/test_speed.py, "
                     "studies/compile_cpu.yaml)",
    "train.deterministic": "deterministic kernels: a CPU's are already (tests/test_gpu.py on CUDA)",
    "train.eval_batch_size": "memory and speed of evaluation, not its numbers (tests/train/test_eval_batches.py)",
    "train.divergence_threshold": "acts when a loss explodes (tests/train/test_resume_and_divergence.py)",
    "train.mlflow_uri": "where MLflow logs (tests/train/test_tracking.py)",
}
ONLY: set[str] = set()  # (a subset while debugging)
# a value that differs from the kind's own (the folder's images are RGB: 1 channel is the change there)
KIND_VALUES = {(FOLDER, "data.channels"): 1}
# keys that act only on an event of some kinds: (kind, key) -> the event, and the test that shows its effect there
KIND_EVENT = {
    (FOLDER, "data.skip_bad"): "a file that does not decode (tests/data/test_bad_files.py, docs/how-to/bad-data.md)",
    (FOLDER, "data.max_pixels"): "an image above the bound (tests/reliability/test_inputs.py)",
}
TIMES = ("seconds", "images_per_second", "started", "ended", "owner", "run_dir", "config_hash", "versions", "graphs",
         "speed")  # speed: how it computed and the step times train.compile=auto measured


def all_keys() -> list[str]:
    """Every key of the config: each section's fields (a component's options are its builder's arguments,
    which always build something else), and the run's own."""
    keys = []
    for section in dataclasses.fields(RunConfig):
        if dataclasses.is_dataclass(section.type) or section.name in ("data", "augment", "model", "optim",
                                                                       "schedule", "train", "stop"):
            value = getattr(RunConfig(), section.name)
            keys += [f"{section.name}.{f.name}" for f in dataclasses.fields(value) if f.name != "options"]
        else:
            keys.append(section.name)
    return keys


def fingerprint(run_dir: Path) -> dict[str, Any]:
    """What a run did, without when or how fast: its weights, metrics, record and files."""
    record = json.loads((run_dir / "run.json").read_text())
    kept = {k: v for k, v in record.items() if not any(t in k for t in TIMES)}
    metrics = [{k: v for k, v in row.items() if "seconds" not in k and "images_per_second" not in k}
               for row in cnnlab.load_run(run_dir).metrics()]
    weights = hashlib.sha256()
    from safetensors.torch import load_file

    for name, tensor in sorted(load_file(run_dir / "checkpoints" / "last.safetensors").items()):
        weights.update(name.encode() + tensor.float().numpy().tobytes())
    files = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*")
                   if "plots" not in p.parts and p.name not in ("events.out.tfevents",))
    return {"record": kept, "metrics": metrics, "weights": weights.hexdigest(), "files": files}


def attempt(items: list[str], tmp: Path, name: str, caplog: pytest.LogCaptureFixture) -> tuple[Any, str]:
    """(the run's fingerprint, or the refusal; what it said)."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="cnnlab"):
        try:
            result = cnnlab.train(None, items, runs_dir=tmp / "runs", name=name)
        except CnnlabError as exc:
            return ("refused", str(exc)), str(exc)
    said = "\n".join(record.getMessage() for record in caplog.records)
    return fingerprint(result.run_dir), said


@pytest.mark.slow
@pytest.mark.timeout(3600)  # some 85 short runs, 5 to 15 minutes on 2 cores
@pytest.mark.parametrize("kind", list(KINDS), ids=["fashion-mnist", "digits", "imagefolder"])
def test_every_key_changes_the_run_or_says_why_not(kind: str, tmp_path: Path, caplog, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    base = [*BASE, *KINDS[kind](tmp_path / "data")]
    expected, _ = attempt(base, tmp_path, "base", caplog)
    assert isinstance(expected, dict), expected
    assert set(all_keys()) == set(VALUES) | set(EVENT), "a key without a value to try or an event (add it above)"
    resolved = cnnlab.make_config(None, base)
    silent = []
    for index, key in enumerate(sorted(VALUES)):
        if (ONLY and key not in ONLY) or (kind, key) in KIND_EVENT:
            continue
        value = KIND_VALUES.get((kind, key), VALUES[key])
        section, _, field = key.partition(".")
        current = getattr(getattr(resolved, section), field) if field else getattr(resolved, section)
        if isinstance(value, bool) and value == current:
            value = not value  # (this kind's recipe has it on already: off is the change)
        shown = json.dumps(value) if isinstance(value, list) else str(value)
        got, said = attempt([*base, f"{key}={shown}"], tmp_path, f"k{index}", caplog)
        if got != expected:
            continue  # it changed the run (or was refused: then it must say which key)
        if f"{key}=" in said:
            continue  # noted ("data.cache=disk has no effect: ..."), with the reason
        silent.append(key)
        print(f"SILENT {kind}: {key}", flush=True)
    assert not silent, f"{kind}: silently without effect: {', '.join(silent)}"
