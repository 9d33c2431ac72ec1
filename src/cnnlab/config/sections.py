"""The typed sections of a run config: frozen dataclasses, validated on construction."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigError


class Options(Mapping[str, Any]):
    """A component's resolved options: read-only, as the rest of a config, and unlike MappingProxyType
    (used before) it pickles and deep-copies, so a config crosses to a spawned process or copy.deepcopy."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._values = dict(values or {})

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return repr(self._values)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Options, (self._values,))


@dataclass(frozen=True)
class DataConfig:
    name: str = "digits"  # a dataset of the registry (`cnnlab datasets`; the Datasets table below)
    root: str | None = None  # None: --data-root, then $CNNLAB_DATA, then the per-user cache
    val_fraction: float = 0.1  # carved from the training set, stratified; the test set is never touched
    test_fraction: float = 0.2  # carved likewise, only for sources without a test split (Caltech-101, one tree)
    train_per_class: int | None = None  # instead of fractions: images per class (Caltech-101's 30 per class)
    val_per_class: int | None = None  # images per class in the validation split (with train_per_class)
    test_per_class: int | None = None  # images per class in the test split (sources without a test split)
    split_seed: int = 0  # fixed apart from the run seed, so repeats of a study share one split
    split_file: str | None = None  # reuse the split.json of an earlier run (folder datasets)
    classes: tuple[str, ...] | None = None  # keep only these classes (names or indices), renumbered 0..K-1
    exclude_classes: tuple[str, ...] | None = None  # null: the dataset's default (Caltech-101: BACKGROUND_Google)
    coarse_labels: bool = False  # cifar100: the 20 superclasses instead of the 100 classes
    # standard: per-channel mean/std of the training split; centered: x/255 - 0.5 in [-0.5, 0.5] (the
    # seed study's scaling); unit: x/255 in [0, 1]; imagenet: torchvision's ImageNet mean/std
    normalize: Literal["standard", "centered", "unit", "imagenet"] = "standard"
    image_size: int | None = None  # None: the native size, or the model's input size if it needs more
    resize: Literal["auto", "pad", "resize"] = "auto"  # auto: zero-pad small gaps (28->32), else resize
    channels: int | None = None  # None: native; 1 or 3 converts (gray->RGB repeats, RGB->gray luminance)
    shuffle: bool = True  # reshuffle the training set every epoch (the ablation study turns it off)
    train_limit: int | None = None  # keep the first N training images (after the split): quick runs
    # carve the validation split as usual, then train on train + validation (the final retraining of the
    # tuning protocol: exactly the images the tuning runs saw, whatever the split kind)
    val_into_train: bool = False
    # folder datasets: none = decode JPEGs in loader workers every epoch; disk = decode once into a
    # memory-mapped uint8 cache at cache_size, workers read it; device = that cache held on the device,
    # augmented there like the small datasets (fastest, needs the memory)
    cache: Literal["none", "disk", "device"] = "none"
    cache_size: int | None = None  # side of cached images; None: image_size / 0.875 (256 for 224)
    workers: int | None = None  # loader processes for folder datasets; None: min(8, CPU cores)
    skip_bad: bool = False  # corrupt images: false = stop before training, naming them; true = skip them
    max_pixels: int = 89_478_485  # larger images are refused as decompression bombs (Pillow's threshold)
    # leave out the test images whose decoded pixels occur in the training or validation split (data/leakage.py;
    # `cnnlab check` counts them): the test score then measures images the model has not seen
    drop_test_leaks: bool = False

    def __post_init__(self) -> None:
        _check(0.0 <= self.val_fraction < 1.0, "data.val_fraction", self.val_fraction, "in [0, 1)")
        _check(0.0 <= self.test_fraction < 1.0, "data.test_fraction", self.test_fraction, "in [0, 1)")
        for key in ("train_per_class", "val_per_class", "test_per_class", "image_size", "train_limit",
                    "cache_size"):
            value = getattr(self, key)
            _check(value is None or value > 0, f"data.{key}", value, "> 0 or null")
        _check(self.channels in (None, 1, 3), "data.channels", self.channels, "1, 3 or null")
        _check(self.workers is None or self.workers >= 0, "data.workers", self.workers, ">= 0 or null")
        _check(self.max_pixels > 0, "data.max_pixels", self.max_pixels, "> 0")


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation (data/augment.py on the device, data/transforms.py in loader workers).
    A field left unset (null) takes the dataset's standard recipe, filled in when the config is resolved,
    so config.yaml always states what ran; `augment=false` turns everything off (the seed study trains
    without)."""

    enabled: bool = True  # false (`augment=false`): no augmentation at all, whatever the fields below say
    hflip: bool | None = None  # random horizontal flip, p = 1/2
    crop_padding: int | None = None  # random crop after zero padding by this many pixels per side
    rotation: float | None = None  # random rotation, uniform in [-rotation, +rotation] degrees
    scale: tuple[float, float] | None = None  # random resized crop: area fraction range; [1, 1] is off
    color_jitter: float | None = None  # brightness, contrast, saturation factors uniform in [1-j, 1+j]
    erasing: float | None = None  # probability of random erasing (Zhong et al. 2020), 0 is off
    pca_lighting: float | None = None  # AlexNet's colour PCA lighting: alpha ~ N(0, this) per image (paper: 0.1)
    # each image + sum_i alpha_i s_i p_i, clamped to [0, 255] (the paper has no clamp); s_i, with lambda_i the
    # eigenvalues of the RGB covariance in [0, 1] units: sqrt = sqrt(lambda_i), the spread along p_i, so sigma
    # does not depend on the pixel units; eigenvalue = lambda_i, the paper's formula read literally (data/augment.py)
    pca_lighting_scale: Literal["sqrt", "eigenvalue"] = "sqrt"
    # batch-wise mixing on the device with soft targets (data/mixing.py); accuracy still counts the hard label.
    # mixup (Zhang et al. 2018): x = lam x_i + (1 - lam) x_j, y likewise, lam ~ Beta(alpha, alpha); 0 is off (timm: 0.8)
    mixup_alpha: float = 0.0
    # CutMix (Yun et al. 2019): a box of image j pasted into image i, lam ~ Beta(alpha, alpha) sets its size and
    # the targets take the box's real area (after clipping at the border); 0 is off (timm: 1.0)
    cutmix_alpha: float = 0.0
    mix_prob: float = 1.0  # probability that a training batch is mixed (when mixup or cutmix is on)
    mix_switch_prob: float = 0.5  # with both on: probability that a mixed batch uses CutMix rather than mixup

    def __post_init__(self) -> None:
        _check(self.crop_padding is None or self.crop_padding >= 0, "augment.crop_padding", self.crop_padding, ">= 0")
        _check(self.rotation is None or 0 <= self.rotation <= 180, "augment.rotation", self.rotation, "in [0, 180]")
        _check(self.scale is None or 0 < self.scale[0] <= self.scale[1] <= 1, "augment.scale", self.scale,
               "[low, high] with 0 < low <= high <= 1")
        _check(self.color_jitter is None or 0 <= self.color_jitter < 1, "augment.color_jitter", self.color_jitter,
               "in [0, 1)")
        _check(self.erasing is None or 0 <= self.erasing <= 1, "augment.erasing", self.erasing, "in [0, 1]")
        _check(self.pca_lighting is None or 0 <= self.pca_lighting <= 1, "augment.pca_lighting", self.pca_lighting,
               "in [0, 1] (the paper's 0.1)")
        for key in ("mixup_alpha", "cutmix_alpha"):
            value = getattr(self, key)
            _check(math.isfinite(value) and value >= 0, f"augment.{key}", value, ">= 0 (0 is off)")
        for key in ("mix_prob", "mix_switch_prob"):
            value = getattr(self, key)
            _check(0 <= value <= 1, f"augment.{key}", value, "a probability in [0, 1]")


AUGMENT_OFF: dict[str, Any] = {"hflip": False, "crop_padding": 0, "rotation": 0.0, "scale": (1.0, 1.0),
                               "color_jitter": 0.0, "erasing": 0.0, "pca_lighting": 0.0}
MIXING = ("mixup_alpha", "cutmix_alpha", "mix_prob", "mix_switch_prob")  # batch mixing: set by the user only
MIXING_OFF: dict[str, Any] = {"mixup_alpha": 0.0, "cutmix_alpha": 0.0}


@dataclass(frozen=True)
class ModelConfig:
    name: str = "convnet"  # a model of the registry (`cnnlab models`; the Models list below)
    options: Mapping[str, Any] = field(default_factory=dict)  # the builder's keyword options, resolved
    weights: str | None = None  # initial weights: a checkpoint or state dict file (models/weights.py)
    freeze: Literal["none", "conv", "fc", "features"] = "none"  # transfer modes (models/transfer.py)
    reset_head: bool = False  # re-initialise the output layer after loading weights (new classes)
    sync_bn: bool = False  # distributed runs: batch-norm statistics over the global batch (SyncBatchNorm)


@dataclass(frozen=True)
class OptimConfig:
    name: str = "momentum"  # an optimizer of the registry (`cnnlab optimizers`); it brings its own default lr
    lr: float = 0.02  # base learning rate for the whole batch (not per image)
    weight_decay: float = 5e-4  # L2 penalty (decoupled for adamw); each optimizer brings its own default
    no_decay_bias_norm: bool = False  # no weight decay on biases and BN/LN weights (1-D tensors)
    backbone_lr_factor: float = 1.0  # lr of every layer but the output layer, relative (fine-tuning: 0.1)
    lr_scaling: Literal["none", "linear", "sqrt"] = "none"  # distributed: lr x W or x sqrt(W) (W processes)
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(math.isfinite(self.lr) and self.lr > 0, "optim.lr", self.lr, "> 0 and finite")
        _check(math.isfinite(self.weight_decay) and self.weight_decay >= 0, "optim.weight_decay", self.weight_decay,
               ">= 0 and finite")
        _check(math.isfinite(self.backbone_lr_factor) and self.backbone_lr_factor >= 0, "optim.backbone_lr_factor",
               self.backbone_lr_factor, ">= 0 and finite")


@dataclass(frozen=True)
class ScheduleConfig:
    name: str = "cosine"  # a learning-rate schedule of the registry (the Schedules list below)
    warmup_epochs: float = 0.0  # linear warm-up before the schedule (fractional epochs allowed)
    warmup_start: float = 0.0  # the factor the warm-up starts from
    per_iteration: bool = False  # update the rate every step (smooth warm-up, one-cycle) instead of per epoch
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.warmup_epochs >= 0, "schedule.warmup_epochs", self.warmup_epochs, ">= 0")
        _check(0 <= self.warmup_start <= 1, "schedule.warmup_start", self.warmup_start, "in [0, 1]")


MAX_EPOCHS = 1_000_000  # 10^4 x ImageNet's 90 epochs; the digits demo's epoch takes ~0.1 s, so this is days


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10  # passes over the training set
    batch_size: int | Literal["full"] = 64  # full: the whole training set per step (batch gradient descent)
    eval_batch_size: int = 1024  # images per batch when validating and testing (at most 256 on the CPU: caches)
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 on CUDA and on CPUs with native bf16, else fp32
    channels_last: bool | None = None  # None: on for CUDA and CPU (faster there), off for MPS
    # torch.compile the model; auto: on the CPU when a measured compiled step pays for the compile within the
    # run (train/speed.py; run.json's speed.compile says what was measured), eager elsewhere until a GPU proves it
    compile: bool | Literal["auto"] = "auto"
    graphs: bool = False  # CUDA-graph training step (train/graphs.py); unproven on a GPU yet, so off by default
    monitor: Literal["val_acc", "val_loss"] = "val_acc"  # what 'best' means for the best checkpoint
    restore_best: bool = False  # evaluate the test set with the best weights instead of the last
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower on GPU; CPU is already)
    tensorboard: bool = False  # also log to RUN_DIR/tensorboard (pip install 'cnnlab[tensorboard]')
    # also log params, per-epoch metrics, plots and the final checkpoint to MLflow (pip install 'cnnlab[track]'):
    # by default into RUNS_DIR/mlruns (a study's runs: the folder that holds the study's directory)
    mlflow: bool = False
    mlflow_uri: str | None = None  # a tracking URI (http://host:5000, sqlite:///file.db); setting it turns mlflow on
    mlflow_experiment: str | None = None  # the MLflow experiment; None: 'cnnlab', or a study's name for its runs
    # a store that cannot be written or reached (probed before the first epoch, at most 5 s): false = one warning and
    # the run trains on untracked; true = the run is refused (exit 2) before anything is written
    mlflow_required: bool = False
    # a run whose mean training loss over an epoch exceeds this many times ln(classes), the loss of a uniform
    # guess where training starts, has exploded: it ends as 'diverged' (exit 3) instead of completing (lr=10 on
    # the digits demo trains at 40-100 x ln 10 and is caught; a sound run stays below 1-2 x); null: NaN/Inf only
    divergence_threshold: float | None = 20.0
    keep_epochs: tuple[int, ...] = ()  # also keep the weights after these epochs (checkpoints/epoch_NNNN)
    # micro-batches of batch_size whose gradients are summed before one optimizer step: the effective batch is
    # batch_size x grad_accum_steps. A "step" (steps in run.json, steps.csv, per-iteration schedules) is one
    # optimizer step; an epoch's leftover micro-batches that fill no whole step are dropped, as a last partial batch
    grad_accum_steps: int = 1
    # cross-entropy's label_smoothing (Szegedy et al. 2016): targets (1 - e) y + e / C; the training loss only
    # (validation and test losses stay the plain cross-entropy)
    label_smoothing: float = 0.0
    # an exponential moving average of the weights and batch-norm buffers after every optimizer step
    # (torch.optim.swa_utils.AveragedModel): ema = decay x ema + (1 - decay) x weights; 0 is off (timm: 0.9998)
    ema_decay: float = 0.0
    # with ema_decay: score validation ('best') and the test set with the EMA weights (the raw weights' validation
    # metrics are reported beside them); false: score the raw weights and report the EMA's beside them
    ema_eval: bool = True

    def __post_init__(self) -> None:
        _check(self.epochs > 0, "train.epochs", self.epochs, "> 0")
        _check(self.epochs <= MAX_EPOCHS, "train.epochs", self.epochs,
               f"at most {MAX_EPOCHS:,} (far beyond any training budget: a typo?)")
        _check(self.divergence_threshold is None or (math.isfinite(self.divergence_threshold)
                                                     and self.divergence_threshold > 1),
               "train.divergence_threshold", self.divergence_threshold, "> 1 (a multiple of ln(classes)) or null")
        _check(all(e >= 1 for e in self.keep_epochs), "train.keep_epochs", self.keep_epochs, "epochs >= 1")
        _check(self.mlflow_uri is None or self.mlflow_uri.strip() != "", "train.mlflow_uri", self.mlflow_uri,
               "a tracking URI (http://host:5000, sqlite:///FILE.db) or null")
        _check(self.mlflow_experiment is None or self.mlflow_experiment.strip() != "", "train.mlflow_experiment",
               self.mlflow_experiment, "an experiment name or null")
        _check(self.batch_size == "full" or self.batch_size > 0, "train.batch_size", self.batch_size, "> 0 or full")
        _check(self.eval_batch_size > 0, "train.eval_batch_size", self.eval_batch_size, "> 0")
        _check(0 <= self.label_smoothing < 1, "train.label_smoothing", self.label_smoothing, "in [0, 1)")
        _check(0 <= self.ema_decay < 1, "train.ema_decay", self.ema_decay, "in [0, 1) (0 is off; 0.999 is usual)")
        self._check_accumulation()

    def _check_accumulation(self) -> None:
        steps = self.grad_accum_steps
        _check(isinstance(steps, int) and steps >= 1, "train.grad_accum_steps", steps, "a whole number >= 1")
        if steps > 1 and self.batch_size == "full":
            raise ConfigError("train.grad_accum_steps cannot apply to train.batch_size=full (one batch of the whole "
                              "training set per step leaves nothing to accumulate): set a batch_size, the "
                              "micro-batch, so that batch_size x grad_accum_steps is the batch you want")
        if steps > 1 and self.graphs:
            raise ConfigError("train.grad_accum_steps > 1 cannot run with train.graphs=true (the CUDA graph captures "
                              "one batch per step): set train.graphs=false, or train.grad_accum_steps=1")


@dataclass(frozen=True)
class StopConfig:
    """Early stopping (train/early_stop.py has the criteria and their equations): Prechelt's GL, PQ and UP,
    patience, or plateau (UP counting strips without improvement, as Bagnoli's Caltech-101 study ran it).
    Counted in epochs (one validation evaluation each)."""

    criterion: Literal["none", "patience", "plateau", "gl", "pq", "up"] = "none"  # none: train all epochs
    metric: str = "val_error"  # val_error (1 - val top-1), val_loss; patience and plateau also take val_acc, val_top5
    mode: Literal["auto", "min", "max"] = "auto"  # patience, plateau; auto: max for accuracies, min otherwise
    alpha: float | None = None  # GL/PQ threshold; None: 5 for GL, 0.5 for PQ
    strip: int = 5  # k, the strip length in epochs (PQ, UP, plateau)
    strips: int = 5  # s, successive rising (UP) or not-improving (plateau) strips
    patience: int = 10  # patience: epochs without an improvement of more than min_delta before stopping
    min_delta: float = 0.0  # patience, plateau: the smallest change of the metric that counts as an improvement
    restore_best: bool = True  # score the test set with the weights of the best epoch (lowest E_va)

    def __post_init__(self) -> None:
        metrics = ("val_error", "val_loss", "val_acc", "val_top5")
        _check(self.metric in metrics, "stop.metric", self.metric, f"one of {', '.join(metrics)}")
        _check(self.strip >= 1, "stop.strip", self.strip, ">= 1")
        _check(self.strips >= 1, "stop.strips", self.strips, ">= 1")
        _check(self.patience >= 1, "stop.patience", self.patience, ">= 1")
        _check(self.min_delta >= 0, "stop.min_delta", self.min_delta, ">= 0")
        _check(self.alpha is None or self.alpha > 0, "stop.alpha", self.alpha, "> 0 or null")


@dataclass(frozen=True)
class RunConfig:
    seed: int = 0  # seeds weights, shuffling and augmentation; the same seed repeats a run bit for bit
    device: str = "auto"  # auto: cuda > mps > cpu
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    stop: StopConfig = field(default_factory=StopConfig)

    def __post_init__(self) -> None:
        _check(-(2**63) <= self.seed < 2**63, "seed", self.seed, "a 64-bit integer (what torch.manual_seed takes)")


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key} must be {expected}, got {value!r}")
