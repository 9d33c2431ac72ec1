"""One run at a time: make a config, train (or resume), evaluate, predict."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..config import (
    Layer,
    RunConfig,
    flatten,
    keyword_layer,
    load_config,
    load_yaml_layer,
    parse_overrides,
    resolve,
    to_dict,
)
from ..config.resolve import COMPONENT_CLASSES
from ..data import DataSpec, Normalizer
from ..errors import ConfigError
from ..evaluate import per_class_accuracy
from ..io import atomic_write_json, atomic_write_text
from ..log import quiet as quiet_run
from ..runs import Run, RunDir, TrainResult, load_run, plan_run_dir, resume_run, start_run
from ..runs.run import checkpoint_name
from ..train import STOP, Callback, Runtime, resolve_runtime
from ..train.distributed import World, rank_batch, world_from_env
from ..train.notebook import NotebookProgress, in_notebook
from .lr_find import asks_lr_find, config_for_lr_find, find_lr, lr_find_folder, lr_found_config


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
    checkpoint: str = "last",
    allow_config_change: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    callbacks: Sequence[Callback] = (),
    data_root: str | None = None,
    **keywords: Any,
) -> TrainResult:
    """Train one run. `keywords` are config overrides (`epochs=15`, `model="lenet5"`, or dotted keys via
    `**{"optim.lr": 0.1}`). With `resume=RUN_DIR` the run continues from its `checkpoint` ('last', or
    'previous' when the last is damaged); a changed config is refused unless `allow_config_change`.

    SIGINT/SIGTERM from the start only ask to stop (train/interrupts.py): one that lands while the run is
    set up ends it after its first step with a checkpoint; one after the last epoch lets it finish, curves
    included, instead of killing the process between run.json's writes or mid-picture. A rank of a
    distributed run does not escalate: `scancel` or `kill` of the process tree signals it directly and
    torchrun forwards the same request (torchrun escalates itself, with SIGKILL after its timeout)."""
    if data_root is not None:
        keywords = {**keywords, "data.root": data_root}
    # the config is read first: a signal while it is read (nothing is written yet) acts as on any program
    # (SIGTERM ends it, Ctrl-C raises KeyboardInterrupt), instead of ending the run after its first step
    asked = resume is None and asks_lr_find(config, overrides, keywords)  # optim.lr=find: the default lr for now
    cfg = None if resume is not None else (config_for_lr_find(config, overrides, keywords) if asked
                                           else make_config(config, overrides, **keywords))
    world = world_from_env()
    notebook = world.main and not quiet and in_notebook()
    if notebook:  # a live display redrawn in place (train/notebook.py); the console's lines would pile up
        callbacks = [*callbacks, NotebookProgress()]
    # in a notebook a second interrupt is the same request: exiting at once would kill the kernel
    with STOP.watching(escalate=not world.active and not notebook):
        if resume is not None:
            resume = Path(resume)
            if not resume.exists() and (Path(runs_dir) / resume).is_dir():
                raise ConfigError(f"run directory '{resume}' does not exist; did you mean --resume "
                                  f"{shlex.quote(str(Path(runs_dir) / resume))}? (a run is named by its path)")
            result = _resume(resume, config, overrides, keywords, allow_config_change, quiet, callbacks,
                             checkpoint)
        else:
            assert cfg is not None  # made above whenever there is no run to resume
            run = plan_run_dir(runs_dir, name, cfg, overwrite) if world.main else None
            cfg, facts = _find_lr_first(cfg, run, runs_dir, quiet, world) if asked else (cfg, {})
            result = start_run(cfg, run, runs_dir=runs_dir, overwrite=overwrite, named=name is not None,
                               quiet=quiet, callbacks=callbacks, facts=facts)
        if result.status.finished and world.main:
            draw_curves(result.run_dir)
    return result


def _find_lr_first(config: RunConfig, run: RunDir | None, runs_dir: str | Path, quiet: bool,
                   world: World) -> tuple[RunConfig, dict[str, Any]]:
    """optim.lr=find: the range test (api/lr_find.py) into RUNS_DIR/lr-find/<the run's name>, and its
    suggestion as optim.lr, so config.yaml (and a resume) hold the number; the facts for run.json."""
    if world.active or run is None:  # each rank would run its own test and might settle on another number
        raise ConfigError("optim.lr=find in a distributed run: find it first on one process with `cnnlab lr-find` "
                          "and give optim.lr that number")
    with quiet_run():  # the data line, said once: by the run that follows
        found = find_lr(config, lr_find_folder(runs_dir, run.path.name, config))
    chosen = lr_found_config(config, found)  # no suggestion: stops here, saying why
    if not quiet:
        others = ", ".join(f"{rule} {lr:g}" for rule, lr in found.suggestion.alternatives.items())
        print(f"lr-find: optim.lr={found.lr:g} ({found.suggestion.how}; also {others}); {found.png}")
        if found.note:
            print(f"note: lr-find: {found.note}", file=sys.stderr)
    return chosen, {"lr_find": found.to_dict()}


def main_process() -> bool:
    """False on the ranks other than 0 of a distributed run (they train and write nothing)."""
    return world_from_env().main


def _check_nproc(nproc: int) -> None:
    if nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, got {nproc}")
    if world_from_env().active:
        raise ConfigError("--nproc inside a distributed run: torchrun already started the processes")
    if torch.cuda.is_available():
        limit, what = torch.cuda.device_count(), "CUDA devices (one process per GPU)"
    else:
        limit, what = len(os.sched_getaffinity(0)), "CPU cores this process may use (each process needs one)"
    if nproc > limit:
        raise ConfigError(f"--nproc {nproc} is more than the {limit} {what}; use --nproc {limit} or fewer "
                          "(torchrun across machines: docs/how-to/several-processes.md)")


def check_distributed(nproc: int, config: Any = None, overrides: Sequence[str] = (), *, name: str | None = None,
                      runs_dir: str | Path = "runs", resume: str | Path | None = None, overwrite: bool = False,
                      **keywords: Any) -> None:
    """The mistakes a distributed run would make on every rank, found here, before torchrun starts (a rank
    that fails makes torchrun print its own traceback and exit 1): the config, a batch that does not divide
    over the processes, a streamed dataset, a taken name, a resume path that is not a run, a missing GPU."""
    from ..data import DATASETS
    from ..train import resolve_device

    _check_nproc(nproc)
    if resume is not None:
        if not Path(resume).is_dir():
            raise ConfigError(f"run directory '{resume}' does not exist")
        return
    cfg = make_config(config, overrides, **keywords)
    resolve_device(cfg.device)
    if isinstance(cfg.train.batch_size, int):
        rank_batch(cfg.train.batch_size, World(0, nproc))
    if DATASETS.get(cfg.data.name).streamed:
        raise ConfigError(f"data={cfg.data.name} streams image files through loader workers, which do not shard "
                          "over processes yet: train it on one process (without --nproc)")
    plan_run_dir(runs_dir, name, cfg, overwrite)


def launch_torchrun(nproc: int, argv: Sequence[str]) -> int:
    """`cnnlab ARGV` on `nproc` processes of this machine through torchrun (torch.distributed.run), which
    sets RANK/WORLD_SIZE/LOCAL_RANK, forwards signals to every process and ends all when one fails.
    Replaces this process (exec), so a signal sent to it reaches torchrun itself; torchrun runs under
    api/torchrun.py, which gives it cnnlab's exit codes instead of its traceback."""
    _check_nproc(nproc)
    command = [sys.executable, "-m", "cnnlab.api.torchrun", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "cnnlab", *argv]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)
    return 0  # not reached


def _resume(path: Path, config: Any, overrides: Sequence[str], keywords: Mapping[str, Any],
            allow_change: bool, quiet: bool, callbacks: Sequence[Callback], checkpoint: str) -> TrainResult:
    run, requested = resumed_config(path, config, overrides, keywords)
    if not allow_change:
        run.refuse_changed(requested, "resume", "Resume without these changes, or allow them with "
                           "allow_config_change=True.", cli_fix="Resume without these changes, or allow them with "
                           "--allow-config-change.")
    return resume_run(requested, run, quiet=quiet, callbacks=callbacks, checkpoint=checkpoint,
                      allow_config_change=allow_change)


def resumed_config(path: str | Path, config: Any = None, overrides: Sequence[str] = (),
                   keywords: Mapping[str, Any] | None = None) -> tuple[RunDir, RunConfig]:
    """The run at `path` and the config a resume of it with `config`, `overrides` and `keywords` asks for: the
    run's own config.yaml below them."""
    run = RunDir(path).require()
    saved = run.read_config()
    layers = []
    if isinstance(config, (str, Path)):
        layers.append(load_yaml_layer(config))
    elif isinstance(config, RunConfig):
        layers.append(flatten(to_dict(config)))
    layers += [parse_overrides(overrides), keyword_layer(keywords or {})]
    return run, resolve(_saved_layer(saved, run, layers), *layers)


def _saved_layer(saved: RunConfig, run: RunDir, layers: Sequence[Layer]) -> Layer:
    """The run's own config as the bottom layer of a resume, less the options of a component (schedule, optim,
    model) that `layers` name anew: `schedule=constant` on a cosine run is the constant schedule, not an error
    about cosine's min_factor."""
    layer = flatten(to_dict(saved), lambda keys: str(run.config_path))
    for section, cls in COMPONENT_CLASSES.items():
        named = [values[f"{section}.name"][0] for values in layers if f"{section}.name" in values]
        if named and named[-1] != getattr(saved, section).name:
            fields = {f.name for f in dataclasses.fields(cls)}
            layer = {key: value for key, value in layer.items()
                     if not (key.startswith(f"{section}.") and key.split(".", 1)[1] not in fields)}
    return layer


def draw_curves(run_dir: str | Path) -> Path | None:
    """plots/curves.png of a run that has at least one epoch in metrics.csv and no curves yet."""
    from ..runs.identity import run_metrics
    from ..train.tracking import log_pictures
    from ..viz.curves import plot_curves

    run_dir = Path(run_dir)
    target = run_dir / "plots" / "curves.png"
    if target.is_file() or not run_metrics(run_dir):
        return None
    run = RunDir(run_dir)
    if not run.claim():  # its owner is still writing it (another process trains or draws it): theirs to draw
        return None
    try:
        plot_curves(run_dir)
        log_pictures(run_dir)  # a run tracked in MLflow (train.mlflow) gets its pictures as artifacts
    finally:
        run.release()
    return target


def evaluate(run_dir: str | Path, split: str = "test", checkpoint: str = "auto",
             device: str | None = None, write: bool = True, tta: str = "none") -> dict[str, Any]:
    """Loss, top-1, top-5, per-class accuracy and confusion matrix of a run on `split` ('test'|'val').
    Writes eval_<split>.json, confusion_<split>.csv and plots/confusion_<split>.png into the run."""
    # writing into the run needs its lock, taken before the work: RunBusy while another process holds it
    with RunDir(run_dir).require().writing("write its evaluation") if write else contextlib.nullcontext():
        return _evaluate(run_dir, split, checkpoint, device, write, tta)


def _evaluate(run_dir: str | Path, split: str, checkpoint: str, device: str | None, write: bool,
              tta: str) -> dict[str, Any]:
    run = load_run(run_dir)
    from ..evaluate import evaluate_model
    from ..evaluate.stats import wilson_interval
    from ..evaluate.tta import TTA

    if tta not in TTA:
        raise ConfigError(f"--tta must be one of {', '.join(TTA)}, not '{tta}'")
    batches, runtime = run.batches(split, device, enlarged=tta in ("center", "10crop"))
    spec = run.spec
    model = run.model(checkpoint, runtime.device)
    metrics = evaluate_model(model, batches, spec.num_classes, runtime.scoring, confusion=True, tta=tta,
                             size=spec.image_size)
    confusion = metrics.pop("confusion")
    count = metrics["count"]  # Wilson 95% intervals: how far each accuracy could move on another sample of images
    metrics["acc_interval"] = wilson_interval(round(metrics["acc"] * count), count)
    metrics["top5_interval"] = wilson_interval(round(metrics["top5"] * count), count)
    report = {"split": split, "run_id": run.record.run_id, "checkpoint": checkpoint_name(checkpoint, run.config),
              "tta": tta, **metrics,
              "per_class": dict(zip(spec.classes, per_class_accuracy(confusion))),
              "confusion": confusion.tolist(), "classes": list(spec.classes), "notes": tta_notes(run, tta)}
    if write:
        _write_eval(run.path, split if tta == "none" else f"{split}_{tta}", report, confusion, spec)
    return report


def tta_notes(run: Run, tta: str) -> list[str]:
    """What a user should know about test-time views this run never trained on (they can lower its score)."""
    augment, notes = run.config.augment, []
    trained = augment.enabled
    if tta in ("flip", "10crop") and not (trained and augment.hflip):
        notes.append("this run never trained on mirrored images; mirrored views may lower its score")
    crops = trained and ((augment.crop_padding or 0) > 0 or tuple(augment.scale or (1.0, 1.0)) != (1.0, 1.0))
    if tta in ("center", "10crop") and not crops and not run.spec.eval_resize:
        notes.append("this run never trained on crops: these views are upsampled crops it never saw and may "
                     "lower its score")
    if tta == "center" and trained and (augment.crop_padding or 0) > 0 and not run.spec.eval_resize:
        notes.append("the centre crop of the padded image is the image itself: the same as --tta none")
    return notes


def _write_eval(path: Path, split: str, report: dict[str, Any], confusion: torch.Tensor, spec: DataSpec) -> None:
    from ..viz.confusion import plot_confusion

    # the picture first: a plots/ folder that links out of the run is refused before anything is written
    plot_confusion(confusion, spec.classes, path / "plots" / f"confusion_{split}.png",
                   title=f"{path.name}: {split} (top-1 {100 * report['acc']:.2f}%)")
    atomic_write_json(path / f"eval_{split}.json", report)
    lines = ["true\\predicted," + ",".join(spec.classes)]
    lines += [f"{name}," + ",".join(str(int(v)) for v in row) for name, row in zip(spec.classes, confusion)]
    atomic_write_text(path / f"confusion_{split}.csv", "\n".join(lines) + "\n")


def predict(run_dir: str | Path, images: Sequence[str | Path], k: int = 5, checkpoint: str = "auto",
            device: str = "cpu", max_pixels: int | None = None) -> list[dict[str, Any]]:
    """Top-k labels with probabilities for each image file, from a run (the weights of `checkpoint`) or from
    a file written by `cnnlab export` (its runtime, on the CPU; the JSON beside it says the preprocessing).
    Larger images than `max_pixels` (default: the run's data.max_pixels, the bound of its image folders) are
    refused before they are decoded."""
    from ..evaluate.images import MAX_PIXELS, read_image

    if Path(run_dir).is_file():
        from ..experiments.export import read_exported

        if checkpoint != "auto":
            raise ConfigError(f"--checkpoint applies to a run directory; '{run_dir}' is an exported file, which "
                              "holds the weights it was exported with")
        exported = read_exported(run_dir)
        model, spec = exported.forward, exported.spec
        device = "cpu"
        limit = max_pixels or exported.max_pixels or MAX_PIXELS  # an export written before it kept its bound
        runtime = Runtime(torch.device(device), None, False)  # the exported program's own layout, fp32
    else:
        run = load_run(run_dir)
        spec = run.spec
        runtime = resolve_runtime(run.data_config(device))  # the run's memory format, as eval
        model = run.model(checkpoint, runtime=runtime)
        limit = max_pixels or run.config.data.max_pixels
    batch = torch.stack([read_image(p, spec, limit) for p in images]).to(runtime.device)
    normalize = Normalizer(spec.mean, spec.std, runtime.device, runtime.channels_last)
    with torch.inference_mode(), runtime.scoring():  # fp32, as eval and the exported file (Runtime.scoring)
        probs = torch.softmax(model(normalize(batch)).float(), dim=1)
    top = probs.topk(min(k, spec.num_classes), dim=1)
    return [
        {"image": str(path), "top": [(spec.classes[i], float(p)) for p, i in zip(values.tolist(), indices.tolist())]}
        for path, values, indices in zip(images, top.values, top.indices)
    ]
