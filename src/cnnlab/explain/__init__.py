"""Python API of the pictures that explain a trained run (`cnnlab viz ...`). Each reads the run directory,
writes a PNG into its plots/ folder, holding the run's lock as every writer into a run does, and returns
(figure, path); the deconvnet's computation is in deconv.py."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..data import Normalizer
from ..errors import ConfigError
from ..evaluate.images import read_image
from ..runs import RunDir, load_run
from ..train import LoaderSpec, make_batches, resolve_runtime
from ..viz.deconv import plot_deconv, plot_evolution
from ..viz.filters import find_layer, plot_features, plot_filters, plot_predictions
from .deconv import Projections, chain_to, clip, deconvolve, receptive_field, strongest


def _safe(name: str) -> str:
    return name.replace(".", "_").replace("/", "_")


def filters(run_dir: str | Path, layer: str | None = None, checkpoint: str = "auto") -> tuple[Any, Path]:
    run = load_run(run_dir)
    model = run.model(checkpoint)
    name, module = find_layer(model, layer)
    if not isinstance(module, torch.nn.Conv2d):
        raise ConfigError(f"layer '{name}' is a {type(module).__name__}, not a convolution: it has no kernels to "
                          "draw; pick a conv layer (`cnnlab summary MODEL` lists them)")
    weight = module.weight
    out = run.path / "plots" / f"filters_{_safe(name)}.png"
    shape = "x".join(map(str, weight.shape))
    with RunDir(run.path).writing("draw its pictures"):
        figure = plot_filters(weight, out, title=f"{run.path.name}: {name} kernels ({shape})")
    return figure, out


def features(run_dir: str | Path, image: str | Path, layer: str | None = None,
             checkpoint: str = "auto") -> tuple[Any, Path]:
    run = load_run(run_dir)
    spec = run.spec
    model = run.model(checkpoint)
    name, module = find_layer(model, layer, kinds=(torch.nn.Module,))
    pixels = read_image(image, spec, run.config.data.max_pixels).unsqueeze(0)
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
    with RunDir(run.path).writing("draw its pictures"):
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
    with RunDir(run.path).writing("draw its pictures"):
        figure = plot_predictions(Normalizer(spec.mean, spec.std).undo(images), probabilities, labels,
                                  spec.classes, out, title=f"{run.path.name}: {split} images, top-5 predictions")
    return figure, out


def deconv(run_dir: str | Path, layer: str | None = None, top: int = 9, channels: int | Sequence[int] = 8,
           split: str = "val", checkpoint: str = "auto") -> tuple[Any, Path, Projections]:
    """Zeiler & Fergus's figure 2 for one layer: for each channel (the `channels` strongest, or those
    listed), the deconvnet projections of its `top` strongest activations over `split`, each beside the
    image patch its receptive field covers (explain/deconv.py)."""
    run = load_run(run_dir)
    model = run.model(checkpoint)
    name, chain = chain_to(model, layer)
    batches, _ = run.batches(split, device="cpu", batch_size=256)
    chosen, values, indices, positions = strongest(chain, batches, top, channels)
    images = _images_at(batches, indices.flatten())
    with torch.no_grad():
        pixels = deconvolve(chain, images, [c for c in chosen for _ in range(top)], positions.flatten(0, 1))
    height, width = images.shape[2:]
    boxes = [[clip(receptive_field(chain, int(r), int(c)), height, width) for r, c in row] for row in positions]
    result = Projections(name, chosen, values, indices, positions, boxes, pixels.unflatten(0, (len(chosen), top)))
    patches = Normalizer(run.spec.mean, run.spec.std).undo(images).unflatten(0, (len(chosen), top))
    out = run.path / "plots" / f"deconv_{_safe(name)}.png"
    with RunDir(run.path).writing("draw its pictures"):
        figure = plot_deconv(result.pixels, patches, boxes, chosen, out,
                             title=f"{run.path.name}: {name}, top {top} activations over the {split} split "
                                   "(left: deconvnet projection, right: image patch)")
    return figure, out, result


def _images_at(batches: Any, wanted: torch.Tensor) -> torch.Tensor:
    """The images at these positions of the split (in the order asked), in a second pass over it."""
    found: dict[int, torch.Tensor] = {}
    needed = set(wanted.tolist())
    start = 0
    for images, _ in batches:
        for index in needed & set(range(start, start + len(images))):
            found[index] = images[index - start].float()
        start += len(images)
    return torch.stack([found[int(i)] for i in wanted])


def evolution(run_dir: str | Path, epochs: Sequence[int] | None = None, layer: str | None = None,
              count: int = 16) -> tuple[Any, Path]:
    """Zeiler & Fergus's figure 4, for kernels: a layer's first `count` filters after each kept epoch
    (train.keep_epochs=[...] keeps checkpoints/epoch_NNNN.safetensors), one row per epoch."""
    run = load_run(run_dir)
    kept = sorted(int(p.stem.split("_")[1]) for p in run.path.glob("checkpoints/epoch_*.safetensors"))
    if not kept:
        raise ConfigError(f"'{run.path}' kept no epoch checkpoints; train with train.keep_epochs=[1,2,5,10] "
                          "to keep the weights after those epochs")
    epochs = kept if epochs is None else list(epochs)
    missing = [e for e in epochs if e not in kept]
    if missing:
        raise ConfigError(f"'{run.path}' has no checkpoint of epoch {missing[0]}; kept epochs: "
                          f"{', '.join(map(str, kept))}")
    weights, name = [], ""
    for epoch in epochs:
        model = run.model(str(RunDir(run.path).epoch_checkpoint(epoch)))
        name, module = find_layer(model, layer)
        if not isinstance(module, torch.nn.Conv2d):
            raise ConfigError(f"layer '{name}' is a {type(module).__name__}, not a convolution: its kernels cannot be "
                              "drawn; pick a conv layer (`cnnlab summary MODEL` lists them)")
        weights.append(module.weight.detach()[:count])
    out = run.path / "plots" / f"evolution_{_safe(name)}.png"
    with RunDir(run.path).writing("draw its pictures"):
        figure = plot_evolution(weights, epochs, out, title=f"{run.path.name}: {name} kernels during training")
    return figure, out
