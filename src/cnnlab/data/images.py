"""Decoding image files robustly: every file either becomes a uint8 tensor in the right colour space,
or an `ImageProblem` that says what is wrong with it.

Pillow does the decoding (libjpeg-turbo, libpng, ...). Conversions, so that real folders work:
- EXIF orientation is applied (a phone photo taken sideways is shown upright);
- grayscale ('L', '1'), palette ('P'), CMYK, YCbCr become RGB (or L when 1 channel is asked for);
- images with transparency (RGBA, LA, PA, palette with a transparent colour) are composited over white,
  which is how viewers show them; dropping alpha would expose whatever colour hides under it;
- 16-bit images ('I;16*', and 'I' with values above 255) are scaled to 8 bits (v // 257), not clipped;
- float ('F') and exotic modes (LAB, HSV) are refused as unsupported rather than guessed at.
Images above `max_pixels` are refused before decoding (a decompression bomb: a small file that expands
to gigabytes); the default is Pillow's own warning threshold, 89,478,485 pixels. Pillow itself refuses
anything above twice that at open; both refusals get the same message, naming the file and the limit.

Where the consumer wants a small image (`reduce_to`: the side it will be resized to), a large one is decoded
small: JPEG through libjpeg's DCT scaling (`Image.draft`: 1/2, 1/4 or 1/8 while staying at least that
size), other formats box-reduced by an integer factor right after decoding (`Image.reduce`), keeping at
least twice the wanted side, as Pillow's `thumbnail` does with its default reducing_gap=2, so that the
antialiased resize that follows still sees two or more source pixels per output pixel. A 13,000x13,000
JPEG then costs ~4 MB of pixels instead of 0.5 GB per copy.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                            ".pbm", ".jfif"})
MAX_PIXELS = 89_478_485
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_REDUCIBLE = {"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "I"}  # Image.reduce averages values: not indices
REDUCING_GAP = 2  # keep at least this many source pixels per output pixel for the final resize (Pillow's default)
_SUPPORTED = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", *_SIXTEEN_BIT}


class ImageProblem(Exception):
    """A file that cannot be used as an image; `kind` is one of the PROBLEM_KINDS."""

    def __init__(self, path: Path, kind: str, detail: str) -> None:
        super().__init__(f"{path}: {kind}: {detail}")
        self.path, self.kind, self.detail = path, kind, detail


PROBLEM_KINDS = ("zero-byte", "not an image", "truncated", "unsupported mode", "too large", "unreadable")


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def load_pil(path: Path, channels: int = 3, max_pixels: int = MAX_PIXELS, draft: int | None = None,
             reduce_to: int | None = None) -> Image.Image:
    """The decoded, upright, converted ('L' or 'RGB') Pillow image; raises ImageProblem. `draft`: a JPEG may
    be decoded down to this side; `reduce_to`: the side the caller resizes to (any format decoded small)."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageProblem(path, "zero-byte", "the file is empty")
        with warnings.catch_warnings():
            # the bound is max_pixels, checked in _finish before a pixel is decoded; Pillow's warning at its
            # own threshold would otherwise refuse images a larger data.max_pixels allows
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        return _finish(image, path, channels, max_pixels, draft or reduce_to, reduce_to)
    except ImageProblem:
        raise
    except UnidentifiedImageError:
        raise ImageProblem(path, "not an image", "Pillow does not recognise the format") from None
    except Image.DecompressionBombError as exc:  # above twice Pillow's threshold: refused by Image.open itself
        raise ImageProblem(path, "too large", _bomb_detail(exc, max_pixels)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        kind = "truncated" if "truncated" in str(exc).lower() or isinstance(exc, EOFError) else "unreadable"
        raise ImageProblem(path, kind, str(exc) or type(exc).__name__) from None


def _bomb_detail(exc: Exception, max_pixels: int) -> str:
    declared = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow: "Image size (N pixels) exceeds limit of M ..."
    if declared is None:
        return str(exc)
    pixels = int(declared.group(1))
    limit = min(max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or pixels))
    return f"its header declares {pixels:,} pixels, which exceeds the limit of {limit:,}"


def _finish(image: Image.Image, path: Path, channels: int, max_pixels: int, draft: int | None,
            reduce_to: int | None = None) -> Image.Image:
    try:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageProblem(path, "too large",
                               f"{width}x{height} = {width * height:,} pixels exceeds the limit of {max_pixels:,}")
        if image.mode not in _SUPPORTED:
            raise ImageProblem(path, "unsupported mode", f"mode '{image.mode}' has no defined conversion to RGB")
        if draft and image.format == "JPEG" and image.mode in ("RGB", "L", "CMYK", "YCbCr"):
            image.draft(image.mode, (draft, draft))  # libjpeg decodes at 1/2, 1/4 or 1/8 scale: much faster
        image.load()  # reads all pixels and closes the file (a truncated file fails here)
        image = _reduce(image, reduce_to)  # before the conversions, each of which copies the image
        if image.getexif().get(0x0112, 1) != 1:  # an orientation other than "upright": apply it
            image = ImageOps.exif_transpose(image)
        return _reduce(_convert(image, channels), reduce_to)  # palette, 1-bit and 16-bit: once converted
    except BaseException:
        image.close()
        raise


def _reduce(image: Image.Image, side: int | None) -> Image.Image:
    """`image` box-reduced by the largest integer factor that keeps its shorter side >= REDUCING_GAP x `side`."""
    factor = min(image.size) // (REDUCING_GAP * side) if side else 0
    if factor < 2 or image.mode not in _REDUCIBLE:
        return image
    reduced = image.reduce(factor)
    image.close()  # frees the full-size pixels now, not when the caller's references go
    return reduced


def _convert(image: Image.Image, channels: int) -> Image.Image:
    if image.mode in _SIXTEEN_BIT:
        values = np.asarray(image, dtype=np.int64)
        if image.mode != "I" or values.max(initial=0) > 255:
            values = values // 257  # 0..65535 -> 0..255 (65535 / 257 = 255 exactly)
        image = Image.fromarray(values.clip(0, 255).astype(np.uint8), mode="L")
    has_alpha = image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    mode = "L" if channels == 1 else "RGB"
    return image if image.mode == mode else image.convert(mode)


def decode(path: Path, channels: int = 3, max_pixels: int = MAX_PIXELS, draft: int | None = None) -> torch.Tensor:
    """uint8 [C, H, W] of an image file; raises ImageProblem."""
    array = np.asarray(load_pil(path, channels, max_pixels, draft), dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1)  # a [C, H, W] view of Pillow's [H, W, C]


def check(path: Path, max_pixels: int = MAX_PIXELS) -> ImageProblem | None:
    """The problem with a file, or None when it decodes completely."""
    try:
        load_pil(path, 3, max_pixels)
    except ImageProblem as problem:
        return problem
    return None
