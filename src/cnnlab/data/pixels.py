"""Whole uint8 image tensors brought to a model's input: channels, size (pad or resize), normalisation."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .base import ImageSet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_CHUNK = 4096  # images converted per chunk: bounds the float32 temporaries


def shape_images(data: ImageSet, channels: int, size: int, mode: str) -> ImageSet:
    images = convert_channels(data.images, channels)
    images = fit_size(images, size, mode)
    return ImageSet(images, data.labels)


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 [N, C, H, W] with C converted to `channels` (1 <-> 3)."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if have == 3 and channels == 1:  # ITU-R BT.601 luma, as PIL's convert('L')
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return _chunked(images, lambda x: (x * weights).sum(1, keepdim=True))
    raise ValueError(f"cannot convert {have} channels to {channels}")


def fit_size(images: torch.Tensor, size: int, mode: str = "auto") -> torch.Tensor:
    """Square `size` x `size` images. 'pad' centres the image on zeros (LeCun's 28 -> 32 for LeNet-5);
    'resize' interpolates (bilinear, antialiased when shrinking); 'auto' pads gaps of at most a quarter
    of the side and resizes otherwise."""
    height, width = images.shape[-2:]
    if (height, width) == (size, size):
        return images
    gap = size - max(height, width)
    if mode == "pad" or (mode == "auto" and 0 < gap and height == width and gap <= height // 4):
        if gap < 0:
            raise ValueError(f"cannot pad {height}x{width} images down to {size}x{size}; use data.resize=resize")
        top, left = (size - height) // 2, (size - width) // 2
        return F.pad(images, (left, size - width - left, top, size - height - top))
    antialias = size < max(height, width)
    return _chunked(images, lambda x: F.interpolate(x, size=(size, size), mode="bilinear",
                                                    align_corners=False, antialias=antialias))


def _chunked(images: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    out = [fn(images[i : i + _CHUNK].float()).round_().clamp_(0, 255).to(torch.uint8)
           for i in range(0, images.shape[0], _CHUNK)]
    return torch.cat(out)


def normalization(kind: str, train_images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) in [0, 1] units; inputs become (x / 255 - mean) / std."""
    channels = train_images.shape[1]
    if kind == "centered":
        return (0.5,) * channels, (1.0,) * channels
    if kind == "unit":
        return (0.0,) * channels, (1.0,) * channels
    if kind == "imagenet":
        if channels == 3:
            return IMAGENET_MEAN, IMAGENET_STD
        return (sum(IMAGENET_MEAN) / 3,) * channels, (sum(IMAGENET_STD) / 3,) * channels
    return channel_stats(train_images)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std (float64 sums in chunks, so 60k images need no large temporary)."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    for i in range(0, images.shape[0], _CHUNK):
        chunk = torch.as_tensor(images[i : i + _CHUNK]).to(torch.float64) / 255.0
        total += chunk.sum(dim=(0, 2, 3))
        squares += chunk.square().sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(1e-12).sqrt()
    return tuple(round(float(m), 6) for m in mean), tuple(round(float(s), 6) for s in std)


def colour_pca(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[tuple[float, ...], ...]]:
    """The principal axes of the pixels' colours (Krizhevsky et al. 2012, section 4.1): the covariance of
    every pixel's channel values (in [0, 1] units) over the images, eigen-decomposed: (standard deviation
    along each axis, largest first; the axes as the columns of a C x C matrix, row by row)."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    products = torch.zeros(channels, channels, dtype=torch.float64)
    count = 0
    for i in range(0, images.shape[0], _CHUNK):
        chunk = torch.as_tensor(images[i : i + _CHUNK]).to(torch.float64).div_(255.0)
        pixels = chunk.permute(1, 0, 2, 3).reshape(channels, -1)
        total += pixels.sum(dim=1)
        products += pixels @ pixels.T
        count += pixels.shape[1]
    mean = total / count
    covariance = products / count - torch.outer(mean, mean)
    values, vectors = torch.linalg.eigh(covariance)  # ascending
    order = torch.argsort(values, descending=True)
    stds = values[order].clamp_min(0).sqrt()
    vectors = vectors[:, order]
    return tuple(round(float(s), 8) for s in stds), tuple(tuple(round(float(v), 8) for v in row) for row in vectors)
