"""`cnnlab bench`: images per second of one training (or inference, or loading) step, the measurement of
tf_cnn_benchmarks (seed 000's notes) for any model x batch size x device x precision x memory format x data.

Method: `warmup` steps are run and discarded (cuDNN autotuning, allocator growth, compilation), then
`repeats` timed blocks of `steps` steps each, the device synchronised around every block; the table shows
the mean over blocks and their spread (std, min, max). With `compare`, torchvision's model of the same
architecture runs the very same step in the same process, block by block interleaved with ours, so both
see the same machine state; the ratio is ours / theirs (1.0 = cnnlab's model costs nothing extra).

Modes: train (forward, cross-entropy, backward, SGD-momentum step), eval (forward under inference_mode),
loader (cnnlab's data loader alone: `data` must name a dataset). Data: `synthetic` (a fixed random batch
on the device: the network alone) or a dataset name (its training split through cnnlab's loader, so the
figure includes loading and augmentation).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from ..config import OptimConfig
from ..errors import ConfigError
from ..models import MODELS, build_model
from ..models.summary import summarize
from ..train import Runtime, resolve_device
from ..train.build import make_optimizer
from ..train.compile_probe import probe_compile
from ..train.cpu import cpu_model_name, cpu_peak
from ..train.runtime import choose_runtime
from ..train.speed import CompileChoice, compile_requested, fixed_choice
from ..train.step import EagerStep

MODES = ("train", "eval", "loader")


@dataclass(frozen=True)
class BenchCase:
    model: str = "convnet"
    batch_size: int = 64
    device: str = "auto"
    precision: str = "auto"  # fp32 | bf16 | auto: train.precision's auto (train/runtime.py)
    channels_last: bool | None = None  # None: NHWC on CUDA and CPU (train/runtime.py)
    data: str = "synthetic"  # or a dataset name
    mode: str = "train"
    image_size: int | None = None  # synthetic input side (default: the model's)
    compile: bool | str = "auto"  # as train.compile: true, false or auto (train/speed.py)
    options: tuple[tuple[str, Any], ...] = ()  # the model's options (model.filters, ...) beyond its defaults


def torchvision_twin(name: str) -> str | None:
    """torchvision's model of the same architecture (same layers, names and parameter count), if any."""
    import torchvision

    twin = "alexnet" if name == "alexnet_tv" else name
    if name.startswith(("vgg", "resnet")) and twin in torchvision.models.list_models(module=torchvision.models):
        return twin
    return "alexnet" if name == "alexnet_tv" else None


def runtime_of(case: BenchCase) -> Runtime:
    """The case's runtime through train's own choice (train/runtime.py): auto means here what it means there."""
    return choose_runtime(resolve_device(case.device), case.precision, case.channels_last, case.batch_size)


def _ours(case: BenchCase, channels: int, size: int, classes: int, like_torchvision: bool) -> torch.nn.Module:
    options = {**{k: v.default for k, v in MODELS.get(case.model).options.items()}, **dict(case.options)}
    if like_torchvision and "stem" in options:
        options["stem"] = "imagenet"  # torchvision's layout at every input size: the same network on both sides
    return build_model(case.model, options, num_classes=classes, in_channels=channels, image_size=size)


def _theirs(case: BenchCase, channels: int, classes: int) -> torch.nn.Module:
    import torchvision

    twin = torchvision_twin(case.model)
    if twin is None:
        raise ConfigError(f"--compare torchvision: torchvision has no '{case.model}'; models with a twin: "
                          "alexnet_tv, vgg11..vgg19(_bn), resnet18..resnet152")
    if channels != 3:
        raise ConfigError("--compare torchvision needs 3-channel input (torchvision's first layer)")
    return torchvision.models.get_model(twin, num_classes=classes)


def _batches(case: BenchCase, runtime: Runtime) -> tuple[Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]],
                                                          int, int, int]:
    """An endless source of (images, labels) and the input's channels, side and class count."""
    if case.data == "synthetic":
        info = MODELS.get(case.model)
        channels, size = info.input_size[0], case.image_size or info.input_size[1]
        classes = info.num_classes or 10
        memory = torch.channels_last if runtime.channels_last else torch.contiguous_format
        images = torch.randn(case.batch_size, channels, size, size, device=runtime.device).contiguous(
            memory_format=memory)
        labels = torch.randint(0, classes, (case.batch_size,), device=runtime.device)

        def synthetic() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            while True:
                yield images, labels

        return synthetic, channels, size, classes
    from ..config import load_config
    from ..train.build import LoaderSpec, make_batches, splits_of

    config = load_config(None, [f"data={case.data}", f"model={case.model}", f"batch_size={case.batch_size}"])
    splits = splits_of(config)
    loader = make_batches(splits.train, splits.spec, LoaderSpec.for_training(config), runtime, splits.cache)

    def real() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = 0
        while True:
            yield from loader.batches(epoch)
            epoch += 1

    return real, splits.spec.channels, splits.spec.image_size, splits.spec.num_classes


def flops_per_image(model: torch.nn.Module, input_shape: tuple[int, int, int], mode: str) -> int:
    """FLOPs one image costs in `mode` (models/summary.py counts a multiply-add as 2): the forward pass in
    eval, ModelSummary.training_flops in training (convnet at 1x32x32: 3 x 5.66 M less conv1's 0.94 M, whose
    input needs no gradient: 16.03 M, where 3 x forward would overstate the achieved rate by 6%)."""
    if mode == "loader":
        return 0
    summary = summarize(model, input_shape)
    return summary.training_flops if mode == "train" else summary.flops


def _step(model: torch.nn.Module, case: BenchCase, runtime: Runtime,
          choice: CompileChoice) -> Callable[[torch.Tensor, torch.Tensor], Any]:
    """The Trainer's own step (train/step.py's EagerStep with `cnnlab train`'s default optimizer), or the
    forward pass under inference_mode in eval mode; compiled when `choice` says so."""
    model = model.to(runtime.device, memory_format=torch.channels_last if runtime.channels_last
                     else torch.preserve_format)
    forward = torch.compile(model) if choice.used else model
    if case.mode == "eval":
        model.eval()

        def infer(images: torch.Tensor, labels: torch.Tensor) -> Any:
            with torch.inference_mode(), runtime.autocast():
                return forward(images)

        return infer
    model.train()
    step = EagerStep(forward, make_optimizer(OptimConfig(), model), runtime.autocast)
    return lambda images, labels: step([(images, labels)])


def compile_choice(case: BenchCase, model: torch.nn.Module, shape: tuple[int, ...], classes: int, runtime: Runtime,
                   steps: int) -> CompileChoice:
    """--compile as train.compile decides it (train/speed.py): auto measures, for the steps bench will time."""
    fixed = fixed_choice(case.compile, runtime.device)
    if fixed is not None or case.mode != "train":
        return fixed or CompileChoice("auto", False, "auto: eager (measured for training steps only)")
    return probe_compile(model, shape, classes, runtime, steps)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def run_bench(case: BenchCase, steps: int = 20, warmup: int = 5, repeats: int = 5,
              compare: str | None = None) -> list[dict[str, Any]]:
    """One row per implementation: img/s mean, std, min, max over the repeats (and the ratio to theirs)."""
    if case.mode not in MODES:
        raise ConfigError(f"--mode must be one of {', '.join(MODES)}, not '{case.mode}'")
    if case.mode == "loader" and case.data == "synthetic":
        raise ConfigError("--mode loader times cnnlab's data loader: name a dataset with --data (e.g. digits)")
    if compare not in (None, "torchvision"):
        raise ConfigError(f"--compare takes torchvision, not '{compare}'")
    if min(steps, repeats) < 1 or warmup < 0 or case.batch_size < 1:
        raise ConfigError("--steps, --repeats and --batch-size must be at least 1, --warmup at least 0")
    if case.image_size is not None and case.image_size < 1:  # 0 read as 'the model's', a negative side crashed
        raise ConfigError(f"--image-size must be at least 1 pixel (leave it out for the model's own), got "
                          f"{case.image_size}")
    runtime = runtime_of(case)
    source, channels, size, classes = _batches(case, runtime)
    data = source()
    flops: dict[str, int] = {}
    choice = CompileChoice(compile_requested(case.compile), False, "the loader alone: no model")
    if case.mode == "loader":
        implementations = {"cnnlab loader": lambda images, labels: images}
    else:
        models = {"cnnlab": _ours(case, channels, size, classes, bool(compare))}
        if compare:
            models[f"torchvision {torchvision_twin(case.model)}"] = _theirs(case, channels, classes)
        flops = {name: flops_per_image(model, (channels, size, size), case.mode) for name, model in models.items()}
        first = models["cnnlab"].to(runtime.device)
        choice = compile_choice(case, first, (case.batch_size, channels, size, size), classes, runtime,
                                warmup + repeats * steps)
        implementations = {name: _step(model, case, runtime, choice) for name, model in models.items()}
    for step in implementations.values():
        for _ in range(warmup):
            step(*next(data))
    rates: dict[str, list[float]] = {name: [] for name in implementations}
    for _ in range(repeats):  # interleaved: both sides see the same machine, block by block
        for name, step in implementations.items():
            _sync(runtime.device)
            started = time.perf_counter()
            for _ in range(steps):
                step(*next(data))
            _sync(runtime.device)
            rates[name].append(steps * case.batch_size / (time.perf_counter() - started))
    peak = cpu_peak() if runtime.device.type == "cpu" else None
    speed = {**runtime.speed(case.compile), "compile": choice.to_dict()}
    rows = []
    for name, values in rates.items():
        mean = statistics.fmean(values)
        rows.append({"implementation": name, **dataclasses.asdict(case), "device_name": runtime_name(runtime),
                     "precision": "bf16" if runtime.amp_dtype else "fp32", "channels_last": runtime.channels_last,
                     "images_per_second": mean, "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                     "min": min(values), "max": max(values), "repeats": repeats, "steps": steps, "warmup": warmup,
                     "speed": speed, **achieved(mean, flops.get(name, 0), peak, runtime.precision)})
    if len(rows) == 2:
        rows[0]["ratio"] = rows[0]["images_per_second"] / rows[1]["images_per_second"]
    return rows


def achieved(images_per_second: float, flops: int, peak: Any, precision: str = "fp32") -> dict[str, Any]:
    """The roofline's numbers of one row: FLOPs per image, achieved GFLOP/s, and the CPU's peak for the
    row's precision (train/cpu.py) with the achieved fraction of it: at the maximum clock when the machine
    says it, else at the clock /proc/cpuinfo reports (`peak_clock` says which)."""
    if not flops:
        return {}
    gflops = images_per_second * flops / 1e9
    row: dict[str, Any] = {"flops_per_image": flops, "gflops_per_second": gflops}
    if peak is not None:
        reference, clock = peak.reference(precision)
        row["peak"] = peak.describe(precision)
        row["peak_gflops_per_second"] = None if peak.peak is None else peak.flops(peak.max_mhz, precision) / 1e9
        if reference is not None:
            row.update(fraction_of_peak=gflops * 1e9 / reference, peak_clock=clock,
                       reference_gflops_per_second=reference / 1e9)
    return row


def runtime_name(runtime: Runtime) -> str:
    if runtime.device.type == "cuda":
        return torch.cuda.get_device_name(runtime.device)
    if runtime.device.type == "cpu":
        return f"CPU ({cpu_model_name()}, {torch.get_num_threads()} threads)"
    return runtime.device.type
