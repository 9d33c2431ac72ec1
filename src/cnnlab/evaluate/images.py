"""Reading user image files for prediction with Pillow (PNG, JPEG, GIF, BMP, TIFF, WebP): decoded as a
folder dataset's images are (data/images.py: EXIF orientation applied, converted to the run's channels,
palette, RGBA, CMYK and 16-bit images included; refused above the pixel limit, before decoding), then
brought to the run's input exactly as its training images were: shorter side resized to the dataset's
native size (antialiased) and centre-cropped, then `fit_size` (so a 28x28 Fashion-MNIST image is
zero-padded to 32x32 as in training, not stretched). The network's input is small, so a large file is
decoded small (JPEG DCT scaling, integer box reduction): a 13,000x13,000 photo costs megabytes, not 2.5 GB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data import DataSpec
from ..data.images import MAX_PIXELS, ImageProblem, load_pil
from ..data.pixels import fit_size
from ..errors import DataError


def read_image(path: str | Path, spec: DataSpec, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """uint8 [C, S, S] ready for the run's normalisation; a DataError naming the file when it cannot be used."""
    from torchvision.transforms.v2 import functional as TF  # here, not at load: see data/transforms.py

    path = Path(path)
    if not path.is_file():
        raise DataError(f"image '{path}' does not exist")
    native = spec.native_size or spec.image_size
    # decoded small, never below the network's input (an image of exactly that size is used as it is); a JPEG
    # of a folder run is drafted to the side its evaluation loader drafts to, so eval and predict agree
    smallest = spec.eval_resize or max(native, spec.image_size)
    try:
        image = load_pil(path, spec.channels, max_pixels, reduce_to=smallest)
    except ImageProblem as problem:
        raise DataError(_problem_message(problem, max_pixels)) from None
    array = np.asarray(image, dtype=np.uint8)
    tensor = torch.from_numpy(array.copy()).view(*array.shape[:2], -1).permute(2, 0, 1)
    if spec.eval_resize:  # folder datasets: the evaluation transform (shorter side, centre crop)
        return TF.center_crop(TF.resize(tensor, spec.eval_resize, antialias=True), [spec.image_size] * 2)
    if tuple(tensor.shape[1:]) == (spec.image_size, spec.image_size):
        return tensor  # already what the network sees (e.g. `cnnlab data export-samples`): used as it is
    if tuple(tensor.shape[1:]) != (native, native):
        tensor = TF.center_crop(TF.resize(tensor, native, antialias=True), [native, native])
    return fit_size(tensor.unsqueeze(0), spec.image_size, spec.resize)[0]


def _problem_message(problem: ImageProblem, max_pixels: int) -> str:
    if problem.kind == "too large":  # the words of an image folder's list of bad files, and the fix
        return (f"image '{problem.path}' cannot be used: too large: {problem.detail} (a decompression bomb, or "
                f"a very large photo); downscale it, or raise the limit (`cnnlab predict --max-pixels N`)")
    return (f"cannot decode image '{problem.path}' ({problem.kind}: {problem.detail}); is it a complete "
            "PNG/JPEG/... file?")
