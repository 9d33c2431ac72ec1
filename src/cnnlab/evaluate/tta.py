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

The views are torchvision's own (`ten_crop`, `center_crop` of transforms.v2.functional, which work on a
batch): the four corners and the centre, then the same five cut from the mirrored image, in that order.
The centre's offset is round(margin / 2) (Python's rounding, halves to even), and the mirrored centre is
the centre of the mirrored image, so with an odd margin it is not the mirror of the plain centre (a hand-
written floor and a mirrored centre crop differed from TenCrop by one pixel there, e.g. 37 -> 32).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

TTA = ("none", "flip", "center", "10crop")
ENLARGE = 0.875  # crop / enlarged side, torchvision's and the paper's 224 / 256


def enlarged_size(size: int) -> int:
    return int(round(size / ENLARGE))


def views(images: torch.Tensor, tta: str, size: int) -> list[torch.Tensor]:
    """The `size` x `size` views of a batch that `tta` averages over."""
    if tta == "none":
        return [images]
    if tta == "flip":
        return [images, images.flip(-1)]
    from torchvision.transforms.v2 import functional as TF  # here, not at load: see data/transforms.py

    if images.shape[-2:] == (size, size):  # held at the model's size: enlarge first
        source = enlarged_size(size)
        images = F.interpolate(images, size=(source, source), mode="bilinear", align_corners=False)
    if tta == "center":
        return [TF.center_crop(images, [size, size])]
    return list(TF.ten_crop(images, [size, size]))


def averaged(model: torch.nn.Module, images: torch.Tensor, tta: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean logits, mean softmax) over the views of `images`."""
    logits = [model(view).float() for view in views(images, tta, size)]
    probs = torch.stack([scores.softmax(dim=1) for scores in logits]).mean(0)
    return torch.stack(logits).mean(0), probs
