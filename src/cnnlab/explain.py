"""Python API of the pictures that explain a trained run (`cnnlab viz ...`). Each reads the run directory,
writes a PNG into its plots/ folder and returns (figure, path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .data import Normalizer
from .evaluate.images import read_image
from .runs import load_run
from .train import LoaderSpec, make_batches, resolve_runtime
from .viz.filters import find_layer, plot_features, plot_filters, plot_predictions


def _safe(name: str) -> str:
    return name.replace(".", "_").replace("/", "_")


def filters(run_dir: str | Path, layer: str | None = None, checkpoint: str = "auto") -> tuple[Any, Path]:
    run = load_run(run_dir)
    model = run.model(checkpoint)
    name, module = find_layer(model, layer)
    weight = module.weight
    out = run.path / "plots" / f"filters_{_safe(name)}.png"
    shape = "x".join(map(str, weight.shape))
    figure = plot_filters(weight, out, title=f"{run.path.name}: {name} kernels ({shape})")
    return figure, out


def features(run_dir: str | Path, image: str | Path, layer: str | None = None,
             checkpoint: str = "auto") -> tuple[Any, Path]:
    run = load_run(run_dir)
    spec = run.spec
    model = run.model(checkpoint)
    name, module = find_layer(model, layer, kinds=(torch.nn.Module,))
    pixels = read_image(image, spec).unsqueeze(0)
    captured: list[torch.Tensor] = []
    hook = module.register_forward_hook(lambda _m, _i, output: captured.append(output.detach()))
    try:
        with torch.inference_mode():
            model(Normalizer(spec.mean, spec.std)(pixels))
    finally:
        hook.remove()
    pixels = pixels[0].float() / 255
    maps = captured[0][0]
    if maps.dim() != 3:
        raise ValueError(f"layer '{name}' outputs {tuple(maps.shape)}, not feature maps; pick a convolution")
    out = run.path / "plots" / f"features_{_safe(name)}_{Path(image).stem}.png"
    figure = plot_features(pixels, maps, out, title=f"{run.path.name}: {name} on {Path(image).name}")
    return figure, out


def predictions(run_dir: str | Path, count: int = 8, split: str = "test", checkpoint: str = "auto",
                seed: int = 0) -> tuple[Any, Path]:
    run = load_run(run_dir)
    spec = run.spec
    splits = run.splits(device="cpu")
    data = getattr(splits, split)
    if data is None:
        raise ValueError(f"run '{run.path}' has no {split} split")
    picked = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:count].sort().values
    config = run.data_config("cpu")
    runtime = resolve_runtime(config)
    loader = LoaderSpec.for_evaluation(config, batch_size=count)
    images, labels = next(iter(make_batches(data.subset(picked), spec, loader, runtime, splits.cache)))
    model = run.model(checkpoint)
    with torch.inference_mode():
        probabilities = torch.softmax(model(images).float(), dim=1)
    out = run.path / "plots" / f"predictions_{split}.png"
    figure = plot_predictions(Normalizer(spec.mean, spec.std).undo(images), probabilities, labels, spec.classes, out,
                              title=f"{run.path.name}: {split} images, top-5 predictions")
    return figure, out
