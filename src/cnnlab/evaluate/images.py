"""Reading user image files for prediction with Pillow (PNG, JPEG, GIF, BMP, TIFF, WebP): EXIF orientation
applied, converted to the run's channels (L or RGB; palette, RGBA, CMYK and 16-bit images included),
then brought to the run's input exactly as its training images were: shorter side resized to the dataset's
native size (antialiased) and centre-cropped, then `fit_size` (so a 28x28 Fashion-MNIST image is zero-padded
to 32x32 as in training, not stretched)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..data import DataSpec
from ..data.pixels import fit_size
from ..errors import DataError


def read_image(path: str | Path, spec: DataSpec) -> torch.Tensor:
    """uint8 [C, S, S] ready for the run's normalisation."""
    from torchvision.transforms.v2 import functional as TF  # here, not at load: see data/transforms.py

    path = Path(path)
    if not path.is_file():
        raise DataError(f"image '{path}' does not exist")
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened).convert("L" if spec.channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"cannot decode image '{path}' ({exc}); is it a complete PNG/JPEG/... file?") from None
    array = np.asarray(image, dtype=np.uint8)
    tensor = torch.from_numpy(array.copy()).view(*array.shape[:2], -1).permute(2, 0, 1)
    if spec.eval_resize:  # folder datasets: the evaluation transform (shorter side, centre crop)
        return TF.center_crop(TF.resize(tensor, spec.eval_resize, antialias=True), [spec.image_size] * 2)
    if tuple(tensor.shape[1:]) == (spec.image_size, spec.image_size):
        return tensor  # already what the network sees (e.g. `cnnlab data export-samples`): used as it is
    native = spec.native_size or spec.image_size
    if tuple(tensor.shape[1:]) != (native, native):
        tensor = TF.center_crop(TF.resize(tensor, native, antialias=True), [native, native])
    return fit_size(tensor.unsqueeze(0), spec.image_size, spec.resize)[0]
