"""The recipe knobs a run used, as run.json's `recipe` says them (config.yaml holds every key; this is what a
reader of the record needs beside the numbers: the effective batch, the smoothing, the mixing, and whether
the scores are the EMA weights')."""

from __future__ import annotations

from typing import Any

from ..config import AugmentConfig, RunConfig
from .distributed import world_from_env


def recipe_record(config: RunConfig) -> dict[str, Any] | None:
    """The knobs that are on, or None when the run uses none of them."""
    train, augment = config.train, config.augment
    record: dict[str, Any] = {}
    if train.grad_accum_steps > 1:
        effective = None if train.batch_size == "full" else train.batch_size * train.grad_accum_steps
        record["grad_accum_steps"] = {"steps": train.grad_accum_steps, "micro_batch": train.batch_size,
                                      "effective_batch": effective}
    if train.label_smoothing > 0:
        record["label_smoothing"] = train.label_smoothing
    if augment.mixup_alpha > 0 or augment.cutmix_alpha > 0:
        record["mixing"] = {"mixup_alpha": augment.mixup_alpha, "cutmix_alpha": augment.cutmix_alpha,
                            "mix_prob": augment.mix_prob, "mix_switch_prob": augment.mix_switch_prob,
                            "accuracy": "train_acc counts the hard labels"}
    if train.ema_decay > 0:
        record["ema"] = {"decay": train.ema_decay, "scored": "ema" if train.ema_eval else "raw",
                         "reported_beside": "raw" if train.ema_eval else "ema"}
    return record or None


def recipe_notes(config: RunConfig, steps_per_epoch: int) -> list[str]:
    """What a user should know before the run: an EMA whose horizon, about 1 / (1 - decay) steps, is longer
    than the run stays close to the initial weights (and those are what train.ema_eval scores); and the
    augmentation keys set that cannot act (`unused_augment_keys`)."""
    decay, total = config.train.ema_decay, steps_per_epoch * config.train.epochs
    notes = unused_augment_keys(config) + unused_distributed_keys(config, world_from_env().size)
    if decay > 0 and total < 1 / (1 - decay):
        notes.append(f"train.ema_decay={decay:g} averages over about {1 / (1 - decay):,.0f} steps and this run takes "
                     f"{total:,}: its EMA weights stay close to the initial ones; about {1 - 10 / total:.3g} suits "
                     "this length")
    return notes


def unused_distributed_keys(config: RunConfig, processes: int) -> list[str]:
    """The keys of a distributed run, set in a run of one process."""
    if processes > 1:
        return []
    notes = []
    if config.model.sync_bn:
        notes.append("model.sync_bn=true has no effect in a run of one process: it shares batch-norm statistics "
                     "between the processes of a distributed run (--nproc N)")
    if config.optim.lr_scaling != "none":
        notes.append(f"optim.lr_scaling={config.optim.lr_scaling} has no effect in a run of one process: it scales "
                     "optim.lr by the number of processes of a distributed run (--nproc N)")
    return notes


def unused_augment_keys(config: RunConfig) -> list[str]:
    """The augmentation keys set away from their defaults that this run cannot use (issue 33: no key silently
    without effect): the mixing probabilities without mixing, the PCA scale without PCA lighting, and the
    padding of a crop that image files, cropped at random sizes in loader workers, never pad."""
    from ..data import DATASETS

    augment, default, notes = config.augment, AugmentConfig(), []
    mixing = augment.mixup_alpha > 0 or augment.cutmix_alpha > 0
    if augment.mix_prob != default.mix_prob and not mixing:
        notes.append(f"augment.mix_prob={augment.mix_prob:g} has no effect: no batch is mixed (augment.mixup_alpha and "
                     "augment.cutmix_alpha are 0)")
    both = augment.mixup_alpha > 0 and augment.cutmix_alpha > 0
    if augment.mix_switch_prob != default.mix_switch_prob and not both:
        notes.append(f"augment.mix_switch_prob={augment.mix_switch_prob:g} has no effect: it chooses between mixup and "
                     "CutMix, and both are not on (augment.mixup_alpha and augment.cutmix_alpha > 0)")
    lighting = augment.enabled and (augment.pca_lighting or 0) > 0
    if augment.pca_lighting_scale != default.pca_lighting_scale and not lighting:
        notes.append(f"augment.pca_lighting_scale={augment.pca_lighting_scale} has no effect: augment.pca_lighting is "
                     "off")
    files = DATASETS.get(config.data.name).streamed and config.data.cache != "device"
    resized = tuple(augment.scale or (1.0, 1.0)) != (1.0, 1.0)
    if augment.enabled and files and resized and (augment.crop_padding or 0) > 0:
        notes.append(f"augment.crop_padding={augment.crop_padding} has no effect: {config.data.name}'s files are "
                     f"cropped at random sizes (augment.scale={list(augment.scale or ())}) in loader workers, which do "
                     "not pad; set augment.scale=[1, 1] to pad and crop, or data.cache=device")
    return notes
