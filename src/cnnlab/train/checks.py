"""Checks before a run is believed (A. Karpathy 2019, "A Recipe for Training Neural Networks": verify the
loss at initialisation, overfit one batch, look at the data). Each check returns a `Check`: ok, warning or
failed, one line for a person and the numbers for run.json.

The cheap ones (`cheap_checks`: the loss at initialisation, labels in range, class balance, the normalised
inputs' statistics, and leakage for datasets held in memory) run at the start of every training run; the
overfit test and leakage over image files run in `cnnlab check`. A check never changes the run it looks at:
the model's buffers (batch-norm statistics) and the random generators are restored after its forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import RunConfig
from ..data import DataSpec, DataSplits, ImageSet, Split
from ..data.leakage import LeakReport, describe, find_leaks, split_digests, split_labels
from .build import LoaderSpec, make_batches
from .runtime import Runtime

# The loss of a uniform guess over C classes is ln C; a freshly initialised net is close to it: with logits
# of standard deviation s per class, the expected cross-entropy is about ln C + s^2 / 2. Above 2 x ln C the
# logits spread by more than sqrt(2 ln C) (2.1 for 10 classes): confident random guesses from a too large
# weight init or gain, an input scale far from the normalisation, or a deep residual net without a
# zero-initialised last norm (Goyal et al. 2017). 1.5 x was considered and refused: the registry's resnet56
# starts at 1.6 x on digits and trains well. Below 0.5 x ln C the model is right on most images before
# training, which only a leak of the label into the input (or a constant label) explains.
INITIAL_LOSS_HIGH = 2.0
INITIAL_LOSS_LOW = 0.5
SAMPLE_IMAGES = 256  # training images whose normalised pixels are measured (a seeded sample)
# of them, the images the model scores for the loss at initialisation: at init the per-image loss varies by a
# few tenths, so 64 images put the mean within ~0.05 of its value, far inside the thresholds; the forward
# pass of a large model is the checks' main cost (AlexNet on digits, 2 loaded cores: 2.9 s of CPU for 256, 0.6 s for 64)
LOSS_IMAGES = 64
IMBALANCE = 10.0  # largest / smallest class: an order of magnitude makes plain accuracy the big classes' score
# in-memory datasets up to about CIFAR's 184 MB are hashed at every start (measured on the shared 2-core machine:
# MNIST's 70k images in 0.6 s, CIFAR's 60k in 1.6 s); larger ones (a device cache of ImageNet) only in `check`
LEAKAGE_BYTES = 2 * 10**8
EXAMPLES = 5


@dataclass(frozen=True)
class Check:
    name: str  # initial_loss, labels, balance, inputs, leakage, overfit
    status: str  # ok, warning, failed
    summary: str  # one line for a person
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "summary": self.summary, **self.details}


# ----------------------------------------------------------------------------------------- verdicts
def initial_loss_check(loss: float, num_classes: int, outputs: torch.Tensor | None = None,
                       from_weights: bool = False) -> Check:
    """The loss before any step against ln C; the outputs' shape says more (a softmax or ReLU at the end)."""
    uniform = math.log(num_classes)
    ratio = loss / uniform if uniform > 0 else float("nan")
    details = {"loss": loss, "ln_classes": uniform, "ratio": ratio}
    text = f"{loss:.4g} before training, ln {num_classes} = {uniform:.4g} ({ratio:.2f} x)"
    if not math.isfinite(loss):
        return Check("initial_loss", "failed", f"the loss before training is {loss}: the model's outputs or the "
                     "inputs are not finite", details)
    if from_weights:
        return Check("initial_loss", "ok", f"{text}; the model starts from model.weights, not an initialisation",
                     details)
    causes = []
    if outputs is not None and outputs.numel() and bool((outputs >= 0).all()):
        sums = outputs.float().sum(dim=1)
        if bool((outputs <= 1).all()) and bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-3)):
            causes.append("the outputs are probabilities: the model ends in a softmax, and cross-entropy applies "
                          "its own (the loss then barely moves); return logits")
        else:
            causes.append("no output is negative: an activation (ReLU) after the last layer; return raw logits")
    if ratio > INITIAL_LOSS_HIGH:
        causes.append("the logits are large and confident at random: a weight init or gain too large for this "
                      "depth, inputs on another scale than the normalisation expects, or labels outside the "
                      "classes the output layer has")
    elif ratio < INITIAL_LOSS_LOW:
        causes.append("the model is right before training: the label leaks into the input, or every label is "
                      "the same")
    if causes:
        return Check("initial_loss", "warning", f"{text}: {'; '.join(causes)}", details)
    return Check("initial_loss", "ok", text, details)


def label_check(splits: dict[str, Split | None], num_classes: int) -> Check:
    """Every label in [0, C); the out-of-range ones counted per split."""
    bad = {}
    for name, split in splits.items():
        if split is not None and len(split):
            labels = split.labels
            wrong = int(((labels < 0) | (labels >= num_classes)).sum())
            if wrong:
                bad[name] = {"count": wrong, "min": int(labels.min()), "max": int(labels.max())}
    if bad:
        where = ", ".join(f"{n}: {b['count']} (from {b['min']} to {b['max']})" for n, b in bad.items())
        return Check("labels", "failed", f"labels outside [0, {num_classes}): {where}", {"out_of_range": bad})
    return Check("labels", "ok", f"every label in [0, {num_classes})", {"out_of_range": {}})


def balance_check(splits: dict[str, Split | None], classes: Sequence[str]) -> Check:
    """Images per class in each split: the smallest and largest class, their ratio, and empty classes."""
    details, problems = {}, []
    for name, split in splits.items():
        if split is None or not len(split):
            continue
        counts = torch.bincount(split.labels.clamp(0, len(classes) - 1), minlength=len(classes)).tolist()
        present = [c for c in counts if c > 0]
        empty = [classes[i] for i, c in enumerate(counts) if c == 0]
        ratio = max(present) / min(present)
        details[name] = {"min": min(present), "max": max(present), "ratio": ratio,
                         "smallest": classes[counts.index(min(present))],
                         "largest": classes[counts.index(max(present))], "empty": empty[:10],
                         "empty_count": len(empty)}
        if empty and name != "val":
            problems.append(f"{len(empty)} class(es) have no {name} images ({', '.join(empty[:3])}"
                            f"{', ...' if len(empty) > 3 else ''})")
        if ratio > IMBALANCE and name in ("train", "test"):
            problems.append(f"{name} classes range from {min(present)} to {max(present)} images ({ratio:.0f} x): "
                            "plain accuracy is mostly the large classes' (read per-class accuracy, cnnlab eval)")
    text = "; ".join(f"{n} {d['min']}-{d['max']} per class ({d['ratio']:.2f} x)" for n, d in details.items())
    if problems:
        return Check("balance", "warning", "; ".join(problems), details)
    return Check("balance", "ok", text, details)


# normalisation -> what its inputs should look like (data/pixels.py): standard has mean 0 and std 1 over the
# training split (a sample of 256 images estimates them within a few hundredths; folder datasets without a
# cache normalise with a 512-image sample's statistics, so the bounds are loose); imagenet uses foreign
# statistics, hence looser still; centered is x/255 - 0.5 and unit is x/255, whose ranges are exact
INPUT_BOUNDS: dict[str, dict[str, Any]] = {
    "standard": {"mean": 0.25, "std": (0.5, 2.0)}, "imagenet": {"mean": 1.0, "std": (0.25, 4.0)},
    "centered": {"range": (-0.5, 0.5)}, "unit": {"range": (0.0, 1.0)}}


def input_check(normalize: str, mean: Sequence[float], std: Sequence[float], low: float, high: float,
                count: int) -> Check:
    """The normalised training inputs' per-channel mean and std, and their range, against the normalisation."""
    details = {"normalize": normalize, "mean": list(mean), "std": list(std), "min": low, "max": high,
               "images": count}
    text = (f"{normalize}: mean {', '.join(f'{m:.3f}' for m in mean)}, std {', '.join(f'{s:.3f}' for s in std)}, "
            f"range [{low:.3g}, {high:.3g}] over {count} training images")
    if not all(map(math.isfinite, [*mean, *std, low, high])):
        return Check("inputs", "failed", f"inputs are not finite ({text})", details)
    bounds, problems = INPUT_BOUNDS.get(normalize, {}), []
    if max(std) == 0:
        problems.append("every input is the same value")
    if "mean" in bounds and max(abs(m) for m in mean) > bounds["mean"]:
        problems.append(f"a channel's mean is beyond +-{bounds['mean']:g}")
    if "std" in bounds and not all(bounds["std"][0] <= s <= bounds["std"][1] for s in std):
        problems.append(f"a channel's std is outside [{bounds['std'][0]:g}, {bounds['std'][1]:g}]")
    if "range" in bounds and (low < bounds["range"][0] - 1e-4 or high > bounds["range"][1] + 1e-4):
        problems.append(f"values leave [{bounds['range'][0]:g}, {bounds['range'][1]:g}]")
    if problems:
        return Check("inputs", "warning", f"{'; '.join(problems)} ({text}): is the data normalised twice, or "
                     "not at all?", details)
    return Check("inputs", "ok", text, details)


def leakage_check(report: LeakReport, splits: dict[str, Split | None], examples: int = EXAMPLES) -> Check:
    """Counts from a LeakReport, with up to `examples` images of each kind named (files or indices)."""
    counts = report.counts()
    present = {name: split for name, split in splits.items() if split is not None}  # the report names these only
    shown: dict[str, list[str]] = {}
    for kind, pairs in report.across.items():
        later, _, earlier = kind.partition(" in ")
        shown[kind] = [f"{later} {describe(present[later], a)} = {earlier} {describe(present[earlier], b)}"
                       for a, b in pairs[:examples]]
    for name, groups in report.within.items():
        shown[f"within {name}"] = [" = ".join(describe(present[name], i) for i in group[:4])
                                   for group in groups[:examples]]
    shown["label conflicts"] = [", ".join(f"{s} {describe(present[s], i)} (label {label})" for s, i, label in group[:4])
                                for group in report.conflicts[:examples]]
    details = {"counts": counts, "examples": {k: v for k, v in shown.items() if v}, "sizes": report.sizes,
               "unreadable": {k: v for k, v in report.unreadable.items() if v}}
    found = {k: v for k, v in counts.items() if v}
    text = ", ".join(f"{v} {k}" for k, v in found.items()) or "no image occurs twice"
    serious = any(v for k, v in counts.items() if not k.startswith("within"))
    if serious:
        fix = " (data.drop_test_leaks=true leaves out test images seen in train/val)" if counts.get(
            "test in train") or counts.get("test in val") else ""
        return Check("leakage", "warning", f"pixel-identical images: {text}{fix}", details)
    return Check("leakage", "ok", text, details)


# ----------------------------------------------------------------------------------------- measuring
def sample_batch(split: Split, spec: DataSpec, runtime: Runtime, count: int = SAMPLE_IMAGES,
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to `count` training images, a seeded sample, normalised as the run's evaluation sees them (no
    augmentation), with their labels. Uses its own generator: the run's random streams are not advanced."""
    generator = torch.Generator().manual_seed(seed)
    picked = torch.randperm(len(split), generator=generator)[:count].sort().values
    batches = make_batches(split.subset(picked), spec, LoaderSpec(len(picked), workers=0), runtime)
    images, labels = zip(*batches.batches())
    return torch.cat(images), torch.cat(labels)


def training_outputs(model: nn.Module, images: torch.Tensor, runtime: Runtime, chunk: int = 64) -> torch.Tensor:
    """The model's outputs in training mode (what the first step sees), without changing the model: its
    buffers (batch-norm running statistics) are put back and dropout draws from a forked generator."""
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    was_training = model.training
    devices = [runtime.device] if runtime.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad(), runtime.autocast():
            model.train()
            return torch.cat([model(images[i : i + chunk]).float() for i in range(0, len(images), chunk)])
    finally:
        model.train(was_training)
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(buffers[name])


def cheap_checks(model: nn.Module, splits: DataSplits, runtime: Runtime, config: RunConfig,
                 leakage: bool | None = None, examples: int = EXAMPLES) -> list[Check]:
    """The checks cheap enough for the start of every run of `config`. `leakage`: None = only for in-memory
    datasets up to LEAKAGE_BYTES; True = always (image files are decoded); False = never."""
    named = {"train": splits.train, "val": splits.val, "test": splits.test}
    spec = splits.spec
    labels = label_check(named, spec.num_classes)
    images, targets = sample_batch(splits.train, spec, runtime, seed=config.seed)
    checks = [labels]
    if labels.status == "ok":  # out-of-range labels make cross_entropy raise: the label check says it all
        outputs = training_outputs(model, images[:LOSS_IMAGES], runtime)
        loss = float(F.cross_entropy(outputs, targets[:LOSS_IMAGES]))
        checks.append(initial_loss_check(loss, spec.num_classes, outputs, bool(config.model.weights)))
    checks.append(balance_check(named, spec.classes))
    flat = images.float().transpose(0, 1).reshape(images.shape[1], -1)
    checks.append(input_check(config.data.normalize, flat.mean(dim=1).tolist(), flat.std(dim=1).tolist(),
                              float(flat.min()), float(flat.max()), len(images)))
    if leakage or (leakage is None and _small_in_memory(named)):
        digests = split_digests(named, config.data.max_pixels, config.data.workers or 4)
        checks.append(leakage_check(find_leaks(digests, split_labels(named)), named, examples))
    return checks


def _small_in_memory(splits: dict[str, Split | None]) -> bool:
    present = [s for s in splits.values() if s is not None]
    in_memory = [s for s in present if isinstance(s, ImageSet)]
    return len(in_memory) == len(present) and sum(s.images.numel() for s in in_memory) <= LEAKAGE_BYTES


def overfit_one_batch(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                      labels: torch.Tensor, runtime: Runtime, steps: int = 200, target: float = 0.99) -> Check:
    """Train on one fixed batch for up to `steps` steps at the optimizer's constant lr, stopping once the
    step's training accuracy on it reaches `target`; failed when it never does. A model that cannot
    memorise 64 images has a bug (a frozen or detached layer, labels that do not match their images, a
    learning rate far too low or too high) that more data will not fix."""
    model.train()
    best, loss_value, taken = 0.0, float("nan"), 0
    for taken in range(1, steps + 1):  # noqa: B007  (the count taken is reported)
        with runtime.autocast():
            logits = model(images)
            loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        accuracy = float((logits.argmax(dim=1) == labels).float().mean())  # a host sync per step: a diagnostic
        loss_value, best = float(loss.detach()), max(best, accuracy)
        if accuracy >= target or not math.isfinite(loss_value):
            break
    lr = optimizer.param_groups[0]["lr"]
    details = {"steps": taken, "batch": len(labels), "accuracy": best, "loss": loss_value, "lr": lr}
    if best >= target:
        return Check("overfit", "ok", f"one batch of {len(labels)} learnt to {100 * best:.1f}% in {taken} steps "
                     f"(lr {lr:g})", details)
    why = "the loss became NaN/Inf: lr too high?" if not math.isfinite(loss_value) else (
        "a learning rate too low or too high, a layer that does not train (frozen, detached), or labels that do "
        "not belong to their images")
    return Check("overfit", "failed", f"one batch of {len(labels)} reached only {100 * best:.1f}% training accuracy "
                 f"in {taken} steps (lr {lr:g}, loss {loss_value:.4g}); a sound model and lr memorise it: {why}",
                 details)
