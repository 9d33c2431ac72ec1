"""Test-time augmentation: several views of each test image, their softmax outputs averaged.

- flip: the image and its mirror.
- center: the centre crop of the enlarged image (AlexNet's single-crop figure).
- 10crop: Krizhevsky et al. 2012, section 4.1: "the network makes a prediction by extracting five 224x224
  patches (the four corner patches and the center patch) as well as their horizontal reflections (hence ten
  patches in all), and averaging the predictions made by the network's softmax layer on the ten patches."

The crops are taken from the image enlarged to size / 0.875 (256 for 224, as the paper's 256x256 images):
folder datasets are read at that size directly (shorter side resized, centre square kept). In-memory
datasets trained with random crops (augment.crop_padding = p) are cropped from the image zero-padded by p,
the very translations training showed (runs/run.py); held at the model's size without such padding, they
are upsampled (bilinear) to size / 0.875, a view the network never saw in training (measured on
Fashion-MNIST: centre 83.3%, 10-crop 84.3% against 91.9% plain; flip is the view to use there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

TTA = ("none", "flip", "center", "10crop")
ENLARGE = 0.875  # crop / enlarged side, torchvision's and the paper's 224 / 256


def enlarged_size(size: int) -> int:
    return int(round(size / ENLARGE))


def crop_boxes(source: int, size: int) -> list[tuple[int, int]]:
    """(top, left) of the four corner crops and the centre crop of a `source` x `source` image."""
    far, middle = source - size, (source - size) // 2
    return [(0, 0), (0, far), (far, 0), (far, far), (middle, middle)]


def views(images: torch.Tensor, tta: str, size: int) -> list[torch.Tensor]:
    """The `size` x `size` views of a batch that `tta` averages over."""
    if tta == "none":
        return [images]
    if tta == "flip":
        return [images, images.flip(-1)]
    source = images.shape[-1]
    if source == size:  # held at the model's size: enlarge first
        source = enlarged_size(size)
        images = F.interpolate(images, size=(source, source), mode="bilinear", align_corners=False)
    boxes = crop_boxes(source, size)
    if tta == "center":
        boxes = boxes[-1:]
    crops = [images[..., top : top + size, left : left + size] for top, left in boxes]
    return crops + [crop.flip(-1) for crop in crops] if tta == "10crop" else crops


def averaged(model: torch.nn.Module, images: torch.Tensor, tta: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean logits, mean softmax) over the views of `images`."""
    logits = [model(view).float() for view in views(images, tta, size)]
    probs = torch.stack([scores.softmax(dim=1) for scores in logits]).mean(0)
    return torch.stack(logits).mean(0), probs
