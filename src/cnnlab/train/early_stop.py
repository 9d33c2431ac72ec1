"""Early stopping: the three criteria of Prechelt, "Early Stopping — but when?" (1998, in Neural
Networks: Tricks of the Trade), plain patience, and the plateau rule of Bagnoli's Caltech-101 study (2019),
as pure functions of the metric history.

What is counted: one evaluation on the validation split per epoch, so "epoch t" below is both the t-th
epoch and the t-th evaluation (1-based, as in metrics.csv). E_va(t) is the validation error at t, taken
from `stop.metric`: `val_error` (1 - validation top-1, the default) or `val_loss`; E_tr(t) is the
matching training error (1 - train_acc, or train_loss). E_opt(t) = min over t' <= t of E_va(t').

- GL_alpha (section 2.2): generalization loss GL(t) = 100 * (E_va(t) / E_opt(t) - 1);
  stop after the first epoch with GL(t) > alpha.
- PQ_alpha: training progress over a strip of k epochs ending at t,
  P_k(t) = 1000 * (sum_{t'=t-k+1..t} E_tr(t') / (k * min_{t'=t-k+1..t} E_tr(t')) - 1);
  stop after the first end-of-strip epoch (t divisible by k) with GL(t) / P_k(t) > alpha.
- UP_s: stop after epoch t (end of a strip) when the validation error rose at the end of each of s
  successive strips: E_va(t) > E_va(t-k), E_va(t-k) > E_va(t-2k), ..., s comparisons in a row
  (UP_1 is one rise; UP_s is UP_{s-1} at t-k plus a rise at t). The study used k = 5, s = 5.
- patience: stop when `patience` epochs have passed without the metric improving on its best by more
  than `min_delta` (any metric, mode min or max).
- plateau: UP with "rose" read as "did not improve by more than `min_delta`": stop after epoch t (end of a
  strip of k) when the metric at each of s successive strip ends was no better than at the strip end
  before it, E_va(t) >= E_va(t-k) - min_delta, ... (any metric, mode min or max). This is what Bagnoli's
  study ran under the name UP (k = 5, s = 5): its stoppingCriteria ends training "in the cases in which
  the accuracy of the network is constant or is decreasing"; the (eta 0.001, step 60) run peaked at 9.19%
  at epoch 3, its "accuracy remains constant for the next 25 epochs and the early stop criterion stops
  the training" (strict UP never stops a flat curve); the (0.01, 30) run went on to epoch 185 because "the
  accuracy continues to improve slightly, until the last 25 epochs", and every exit epoch it reports (185,
  120, 115, 180) is a strip end, long after the best epoch (92, 52, 90, 113). So each strip end is compared
  with the one before it, not with the best so far; `patience` is the best-so-far rule.

All criteria need a validation split. When one fires, the run ends with status 'stopped_early', the best
weights (lowest E_va, checkpoints/best.safetensors) are restored for the test set when
`stop.restore_best` is true, and run.json records the criterion, the epoch it fired and the values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..config import StopConfig
from ..errors import ConfigError
from .hooks import Callback, TrainerView
from .result import EarlyStopRecord

DEFAULT_ALPHA = {"gl": 5.0, "pq": 0.5}  # Prechelt's middle settings (GL_5, PQ_0.5)


@dataclass(frozen=True)
class Decision:
    stop: bool
    epoch: int  # the epoch the decision was taken after
    reason: str = ""
    values: dict[str, float] | None = None


def generalization_loss(val_errors: Sequence[float]) -> float:
    """GL(t) in percent for the last epoch of `val_errors`."""
    best = min(val_errors)
    if best <= 0:
        return 0.0 if val_errors[-1] <= 0 else math.inf
    return 100.0 * (val_errors[-1] / best - 1.0)


def training_progress(train_errors: Sequence[float], k: int) -> float:
    """P_k(t) in per mille over the last k epochs of `train_errors` (needs at least k values)."""
    strip = list(train_errors[-k:])
    low = min(strip)
    if low <= 0:
        return 0.0 if max(strip) <= 0 else math.inf
    return 1000.0 * (sum(strip) / (k * low) - 1.0)


def gl_decision(val_errors: Sequence[float], alpha: float) -> Decision:
    gl = generalization_loss(val_errors)
    epoch = len(val_errors)
    return Decision(gl > alpha, epoch, f"GL_{alpha:g}: generalization loss {gl:.2f}% > {alpha:g}%" if gl > alpha
                    else "", {"GL": gl})


def pq_decision(val_errors: Sequence[float], train_errors: Sequence[float], alpha: float, k: int) -> Decision:
    epoch = len(val_errors)
    if epoch % k or epoch < k:  # PQ is only evaluated at the end of a strip
        return Decision(False, epoch)
    gl, progress = generalization_loss(val_errors), training_progress(train_errors, k)
    quotient = math.inf if progress == 0 and gl > 0 else 0.0 if progress == 0 else gl / progress
    fired = quotient > alpha
    reason = f"PQ_{alpha:g}: GL {gl:.2f}% / P_{k} {progress:.2f} = {quotient:.3f} > {alpha:g}" if fired else ""
    return Decision(fired, epoch, reason, {"GL": gl, "P": progress, "PQ": quotient})


def up_decision(val_errors: Sequence[float], k: int, s: int) -> Decision:
    epoch = len(val_errors)
    if epoch % k or epoch < (s + 1) * k:  # s rises need s + 1 strip ends (epoch k, 2k, ...)
        return Decision(False, epoch)
    ends = [val_errors[t - 1] for t in range(epoch - s * k, epoch + 1, k)]  # E_va at the last s+1 strip ends
    rises = sum(later > earlier for earlier, later in zip(ends, ends[1:]))
    fired = rises == s
    reason = (f"UP_{s}: validation error rose at the end of {s} successive strips of {k} epochs "
              f"({' -> '.join(f'{e:.4g}' for e in ends)})") if fired else ""
    return Decision(fired, epoch, reason, {"rises": float(rises)})


def patience_decision(values: Sequence[float], patience: int, min_delta: float, mode: str) -> Decision:
    """Stop when the last `patience` values brought no improvement > min_delta over the best before them."""
    epoch = len(values)
    sign = 1.0 if mode == "min" else -1.0
    best_epoch, best = 1, sign * values[0]
    for index, value in enumerate(values[1:], start=2):
        if sign * value < best - min_delta:
            best_epoch, best = index, sign * value
    waited = epoch - best_epoch
    fired = waited >= patience
    reason = (f"patience {patience}: no improvement of more than {min_delta:g} since epoch {best_epoch}"
              if fired else "")
    return Decision(fired, epoch, reason, {"best_epoch": float(best_epoch), "waited": float(waited)})


def plateau_decision(values: Sequence[float], k: int, s: int, min_delta: float = 0.0, mode: str = "min") -> Decision:
    """Stop at a strip end when none of the last s strip ends improved on the one before by more than min_delta."""
    epoch = len(values)
    if epoch % k or epoch < (s + 1) * k:  # s comparisons need s + 1 strip ends, as for UP
        return Decision(False, epoch)
    sign = 1.0 if mode == "min" else -1.0
    ends = [values[t - 1] for t in range(epoch - s * k, epoch + 1, k)]
    gains = [sign * (earlier - later) for earlier, later in zip(ends, ends[1:])]  # > 0: better than before
    stalled = sum(gain <= min_delta for gain in gains)
    fired = stalled == s
    reason = (f"plateau: no improvement of more than {min_delta:g} at the end of {s} successive strips of {k} "
              f"epochs ({' -> '.join(f'{e:.4g}' for e in ends)})") if fired else ""
    return Decision(fired, epoch, reason, {"stalled": float(stalled)})


def metric_series(history: Sequence[dict[str, Any]], metric: str) -> list[float]:
    """The per-epoch values of `metric` from the trainer's history; val_error/train_error = 1 - acc."""
    if metric.endswith("_error"):
        key = metric.replace("_error", "_acc")
        return [1.0 - row[key] for row in history if row.get(key) is not None]
    return [row[metric] for row in history if row.get(metric) is not None]


def mode_of(metric: str, mode: str) -> str:
    if mode != "auto":
        return mode
    return "max" if metric.endswith(("acc", "top5")) else "min"


def decide(config: StopConfig, history: Sequence[dict[str, Any]]) -> Decision:
    """The stop decision after the last epoch of `history` (one dict per epoch, as in metrics.csv)."""
    criterion = config.criterion
    values = metric_series(history, config.metric)
    if criterion == "none" or not values:
        return Decision(False, len(history))
    if criterion == "patience":
        return patience_decision(values, config.patience, config.min_delta, mode_of(config.metric, config.mode))
    if criterion == "plateau":
        return plateau_decision(values, config.strip, config.strips, config.min_delta,
                                mode_of(config.metric, config.mode))
    alpha = config.alpha if config.alpha is not None else DEFAULT_ALPHA.get(criterion, 0.0)
    if criterion == "gl":
        return gl_decision(values, alpha)
    if criterion == "pq":
        train_metric = config.metric.replace("val_", "train_", 1)
        return pq_decision(values, metric_series(history, train_metric), alpha, config.strip)
    return up_decision(values, config.strip, config.strips)


def check(config: StopConfig, has_validation: bool) -> None:
    if config.criterion == "none":
        return
    if not has_validation:
        raise ConfigError(f"stop.criterion={config.criterion} needs a validation split; set data.val_fraction > 0 "
                          "(or stop.criterion=none)")
    if config.criterion in ("gl", "pq", "up") and config.metric not in ("val_error", "val_loss"):
        raise ConfigError(f"stop.criterion={config.criterion} works on an error (lower is better): set "
                          f"stop.metric to val_error or val_loss, not {config.metric}")


class EarlyStopping(Callback):
    """Asks the trainer to stop when `decide` says so, with the decision for run.json (`early_stop`)."""

    def __init__(self, config: StopConfig) -> None:
        self.config = config

    def on_fit_start(self, trainer: TrainerView) -> None:
        check(self.config, trainer.val_batches is not None)

    def on_epoch_end(self, trainer: TrainerView, row: dict[str, Any]) -> None:
        decision = decide(self.config, trainer.state.history)
        if decision.stop:
            record = EarlyStopRecord(self.config.criterion, self.config.metric, fired=True, epoch=decision.epoch,
                                     why=decision.reason, values=decision.values,
                                     best_epoch=trainer.state.best_epoch, restored_best=self.config.restore_best)
            trainer.request_stop(f"early stop after epoch {decision.epoch}: {decision.reason}", record)
