"""Reading user image files for prediction: torchvision.io decoding (PNG, JPEG, GIF, WebP), EXIF
orientation applied, converted to the run's channels and size (shorter side resized, centre crop)."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2 import functional as TF

from ..data import DataSpec
from ..errors import DataError


def read_image(path: str | Path, spec: DataSpec) -> torch.Tensor:
    """uint8 [C, S, S] ready for the run's normalisation."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image '{path}' does not exist")
    mode = ImageReadMode.GRAY if spec.channels == 1 else ImageReadMode.RGB
    try:
        image = decode_image(str(path), mode=mode, apply_exif_orientation=True)
    except (RuntimeError, ValueError) as exc:
        raise DataError(f"cannot decode image '{path}' ({exc}); is it a PNG/JPEG/GIF/WebP file?") from None
    image = TF.resize(image, spec.image_size, antialias=True)
    return TF.center_crop(image, [spec.image_size, spec.image_size])
