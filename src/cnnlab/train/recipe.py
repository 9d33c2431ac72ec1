"""The recipe knobs a run used, as run.json's `recipe` says them (config.yaml holds every key; this is what a
reader of the record needs beside the numbers: the effective batch, the smoothing, the mixing, and whether
the scores are the EMA weights')."""

from __future__ import annotations

from typing import Any

from ..config import RunConfig


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
    than the run stays close to the initial weights (and those are what train.ema_eval scores)."""
    decay, total = config.train.ema_decay, steps_per_epoch * config.train.epochs
    if decay > 0 and total < 1 / (1 - decay):
        return [f"train.ema_decay={decay:g} averages over about {1 / (1 - decay):,.0f} steps and this run takes "
                f"{total:,}: its EMA weights stay close to the initial ones; about {1 - 10 / total:.3g} suits "
                "this length"]
    return []
