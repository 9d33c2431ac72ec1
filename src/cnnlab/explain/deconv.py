"""Zeiler & Fergus's deconvnet ("Visualizing and Understanding Convolutional Networks", ECCV 2014, §2.1):
one activation of a layer projected back to pixel space through the layers below it, each inverted:

- max pooling is undone with the *switches* recorded on the forward pass (where each maximum came from),
  so the signal returns exactly to the locations that produced it;
- every activation function is replaced by a rectification (the deconvnet keeps positive signal only);
- a convolution is undone by its transposed filters (the same weights, flipped; no bias): computed as the
  gradient of the bias-free convolution with respect to its input, which is conv_transpose2d for every
  padding, stride, dilation and group setting, and likewise for average pooling;
- normalisation (BN, LRN) and dropout are passed through unchanged, as Z&F pass their contrast
  normalisation.

Only a plain chain can be inverted this way: the model must keep its convolutions in an nn.Sequential
`features` (lenet5, convnet, alexnet, zfnet, vgg*), and the layer must be one of its children. Residual
networks add branches the deconvnet has no rule for; they are refused with that reason.

The strongest activations are chosen as Z&F chose them: for each channel, the k images of a split whose
maximum activation in that channel is largest (one position per image), found in one pass over the split.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, closest
from ..models.layers import LocalResponseNorm, ScaledTanh

Chain = list[tuple[str, nn.Module]]
LINEAR = (nn.Conv2d, nn.AvgPool2d)
PASSED = (nn.BatchNorm2d, nn.LocalResponseNorm, LocalResponseNorm, nn.Dropout, nn.Dropout2d, nn.Identity)


@dataclass(frozen=True)
class Projections:
    """For each chosen channel (rows) its k strongest activations over a split (columns)."""

    layer: str
    channels: list[int]
    values: torch.Tensor  # [C, k] the activation
    images: torch.Tensor  # [C, k] the index of the image in the split
    positions: torch.Tensor  # [C, k, 2] (row, column) in the layer's feature map
    boxes: list[list[tuple[int, int, int, int]]]  # [C][k] receptive field (top, left, bottom, right), clipped
    pixels: torch.Tensor  # [C, k, channels, H, W] projections in input space


def rectifies(module: nn.Module) -> bool:
    return type(module).__module__ == "torch.nn.modules.activation" or isinstance(module, ScaledTanh)


def chain_to(model: nn.Module, layer: str | None) -> tuple[str, Chain]:
    """The children of `model.features` up to and including `layer` (default: the last convolution)."""
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential):
        raise ConfigError(f"the deconvnet inverts a plain chain of layers, and {type(model).__name__} has none "
                          "(residual blocks branch); use it on lenet5, convnet, alexnet, zfnet or a vgg")
    children = list(features.named_children())
    convs = [name for name, module in children if isinstance(module, nn.Conv2d)]
    if not convs:
        raise ConfigError("this model has no convolution in its features to project from")
    wanted = convs[-1] if layer is None else layer.removeprefix("features.")
    names = [name for name, _ in children]
    if wanted not in names:
        guess = closest(wanted, names)
        hint = f"did you mean '{guess}'? " if guess else ""
        raise ConfigError(f"--layer '{layer}' is not a layer of this model's features; {hint}"
                          f"its layers are: {', '.join(names)}")
    chain = children[: names.index(wanted) + 1]
    for name, module in chain:
        if not isinstance(module, (nn.MaxPool2d, *LINEAR, *PASSED)) and not rectifies(module):
            raise ConfigError(f"the deconvnet has no inverse for layer '{name}' ({type(module).__name__})")
    return wanted, chain


def forward(chain: Chain, images: torch.Tensor) -> tuple[torch.Tensor, list[tuple[torch.Size, torch.Tensor | None]]]:
    """The chain's output, and for each layer its input shape and (max pooling) the switches."""
    steps: list[tuple[torch.Size, torch.Tensor | None]] = []
    x = images
    for _, module in chain:
        shape, switches = x.shape, None
        if isinstance(module, nn.MaxPool2d):
            x, switches = F.max_pool2d(x, module.kernel_size, module.stride, module.padding, module.dilation,
                                       module.ceil_mode, return_indices=True)
        else:
            x = module(x)
        steps.append((shape, switches))
    return x, steps


def unpool(signal: torch.Tensor, switches: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Put each pooled value back where its maximum was. Summed, not overwritten, so overlapping pools
    (AlexNet's 3x3 stride 2) lose nothing where two windows chose the same pixel."""
    out = signal.new_zeros(shape[0], shape[1], shape[2] * shape[3])
    out.scatter_add_(2, switches.flatten(2), signal.flatten(2))
    return out.view(shape)


def transpose(module: nn.Module, signal: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The transpose of a linear layer (bias left out) applied to `signal`: the gradient of the layer
    with respect to its input, with `signal` as the output gradient."""
    with torch.enable_grad():
        probe = signal.new_zeros(shape, requires_grad=True)
        out = module._conv_forward(probe, module.weight, None) if isinstance(module, nn.Conv2d) else module(probe)
        (back,) = torch.autograd.grad(out, probe, signal)
    return back


def project(chain: Chain, steps: list[tuple[torch.Size, torch.Tensor | None]], signal: torch.Tensor) -> torch.Tensor:
    """The deconvnet: `signal` (shaped like the chain's output) back to the input, layer by layer."""
    for (_, module), (shape, switches) in zip(reversed(chain), reversed(steps)):
        if isinstance(module, nn.MaxPool2d):
            assert switches is not None, "a max-pooling step records its switches"
            signal = unpool(signal, switches, shape)
        elif isinstance(module, LINEAR):
            signal = transpose(module, signal, shape)
        elif rectifies(module):
            signal = F.relu(signal)
    return signal


def receptive_field(chain: Chain, row: int, column: int) -> tuple[int, int, int, int]:
    """The input pixels (top, left, bottom, right; inclusive, not clipped) that position (row, column) of
    the chain's output can see: each convolution or pool maps output i to inputs i*s - p .. i*s - p + d(k-1)."""
    top, left, bottom, right = row, column, row, column
    for _, module in reversed(chain):
        geometry = _geometry(module)
        if geometry is None:
            continue
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = geometry
        top, bottom = top * sh - ph, bottom * sh - ph + dh * (kh - 1)
        left, right = left * sw - pw, right * sw - pw + dw * (kw - 1)
    return top, left, bottom, right


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _geometry(module: nn.Module) -> tuple[tuple[int, int], ...] | None:
    if not isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        return None
    kernel, stride = _pair(module.kernel_size), _pair(module.stride or module.kernel_size)
    dilation = _pair(getattr(module, "dilation", 1))
    given = module.padding
    padding: int | tuple[int, ...]
    if given == "same":  # torch pads the smaller half first
        padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel))
    else:
        padding = 0 if isinstance(given, str) else given  # the other string torch takes is 'valid'
    return kernel, stride, _pair(padding), dilation


def strongest(chain: Chain, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], top: int,
              channels: int | Sequence[int]) -> tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pass over the batches: each image's maximum per channel and where it is. Returns the channels
    (given, or the `channels` whose strongest activation is largest), and for each its `top` images:
    activation [C, k], image index [C, k], position [C, k, 2]."""
    peaks, places, width = [], [], 0
    with torch.inference_mode():
        for images, _ in batches:
            maps, _ = forward(chain, images.float())
            peak, place = maps.flatten(2).max(2)  # [B, C]
            peaks.append(peak)
            places.append(place)
            width = maps.shape[3]
    if not peaks:
        raise ConfigError("the split is empty: there is nothing to find strong activations in")
    peak, place = torch.cat(peaks), torch.cat(places)  # [N, C]
    if top > len(peak):
        raise ConfigError(f"--top {top} is more than the {len(peak)} images of the split")
    if isinstance(channels, int):
        chosen = peak.max(0).values.topk(min(channels, peak.shape[1])).indices.sort().values.tolist()
    else:
        chosen = list(channels)
        wrong = [c for c in chosen if not 0 <= c < peak.shape[1]]
        if wrong:
            raise ConfigError(f"--channels {wrong[0]} is not a channel of this layer (it has {peak.shape[1]})")
    values, images = peak[:, chosen].topk(top, dim=0)  # [k, C]
    flat = place[:, chosen].gather(0, images)
    positions = torch.stack((flat // width, flat % width), dim=-1)
    return chosen, values.T.contiguous(), images.T.contiguous(), positions.transpose(0, 1).contiguous()


def deconvolve(chain: Chain, images: torch.Tensor, channels: Sequence[int], positions: torch.Tensor) -> torch.Tensor:
    """Project activation (channels[i], positions[i]) of images[i] back to pixels: [N, C, H, W]."""
    maps, steps = forward(chain, images.float())
    signal = torch.zeros_like(maps)
    rows = torch.arange(len(images))
    picked = torch.as_tensor(list(channels))
    signal[rows, picked, positions[:, 0], positions[:, 1]] = maps[rows, picked, positions[:, 0], positions[:, 1]]
    return project(chain, steps, signal)


def clip(box: tuple[int, int, int, int], height: int, width: int) -> tuple[int, int, int, int]:
    top, left, bottom, right = box
    return max(top, 0), max(left, 0), min(bottom, height - 1), min(right, width - 1)
