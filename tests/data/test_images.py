"""Image decoding on real files written with Pillow: every mode converted right, every broken file named."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.data.images import ImageProblem, check, decode
from tests.helpers import png_header_only


def save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


def test_gray_and_one_bit_become_rgb(tmp_path: Path) -> None:
    gray = decode(save(Image.new("L", (3, 2), 77), tmp_path / "g.png"))
    assert gray.shape == (3, 2, 3) and bool((gray == 77).all())
    bits = decode(save(Image.new("1", (4, 4), 1), tmp_path / "b.png"))
    assert bool((bits == 255).all())
    assert decode(tmp_path / "g.png", channels=1).shape == (1, 2, 3)


def test_transparency_is_composited_over_white(tmp_path: Path) -> None:
    image = Image.new("RGBA", (3, 1))
    image.putpixel((0, 0), (10, 20, 30, 0))
    image.putpixel((1, 0), (10, 20, 30, 255))
    image.putpixel((2, 0), (0, 0, 0, 128))
    out = decode(save(image, tmp_path / "a.png"))
    assert out[:, 0, 0].tolist() == [255, 255, 255]
    assert out[:, 0, 1].tolist() == [10, 20, 30]
    assert all(abs(v - 127) <= 1 for v in out[:, 0, 2].tolist())


def test_palette_with_and_without_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    out = decode(save(image, tmp_path / "p.png"))
    assert out[:, 0, 0].tolist() == [255, 0, 0] and out[:, 0, 1].tolist() == [0, 0, 255]
    out = decode(save(image, tmp_path / "pt.png", transparency=0))
    assert out[:, 0, 0].tolist() == [255, 255, 255] and out[:, 0, 1].tolist() == [0, 0, 255]


def test_cmyk_jpeg(tmp_path: Path) -> None:
    out = decode(save(Image.new("CMYK", (8, 8), (0, 0, 0, 0)), tmp_path / "c.jpg", quality=100))
    assert out.shape == (3, 8, 8) and int(out.min()) >= 250


def test_sixteen_bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    out = decode(save(Image.fromarray(values), tmp_path / "s.png"))
    assert out[0, 0].tolist() == [0, 100, 255]


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((2, 3, 3), dtype=np.uint8)  # 2 rows, 3 columns
    pixels[0, 0] = 255  # top-left white
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    out = decode(save(image, tmp_path / "o.png", exif=exif.tobytes()))
    assert out.shape == (3, 3, 2)  # displayed upright: 3 rows, 2 columns
    assert int(out[0, 0, 1]) == 255  # the top-left pixel moved to the top-right


@pytest.mark.parametrize("writer,kind", [
    (lambda p: p.write_bytes(b""), "zero-byte"),
    (lambda p: p.write_text("not a picture at all"), "not an image"),
    (lambda p: _truncated(p, "JPEG"), "truncated"),
    (lambda p: _truncated(p, "PNG"), "truncated"),
    (lambda p: Image.new("F", (4, 4), 0.5).save(p.with_suffix(".tif")) or p.with_suffix(".tif").rename(p), "unsupported mode"),
])
def test_problems_are_named(tmp_path: Path, writer, kind: str) -> None:
    path = tmp_path / "x.img"
    writer(path)
    problem = check(path)
    assert problem is not None and problem.kind == kind, problem
    with pytest.raises(ImageProblem, match=f"x.img: {kind}"):
        decode(path)


def _truncated(path: Path, fmt: str) -> None:
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, fmt)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 2 // 3])


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    path = save(Image.new("1", (10_000, 9_000)), tmp_path / "bomb.png")  # 90M pixels in a few kB
    assert path.stat().st_size < 100_000
    problem = check(path)
    assert problem is not None and problem.kind == "too large"
    small = save(Image.new("RGB", (40, 40)), tmp_path / "small.png")
    assert check(small, max_pixels=1000).kind == "too large" and check(small) is None


def test_every_bomb_names_the_limit_and_a_larger_limit_is_honoured(tmp_path: Path) -> None:
    """Above twice Pillow's threshold Pillow refuses at open: the message still names our limit, not its own.
    Between its threshold (89 M) and twice that, data.max_pixels decides: a larger limit lets the image in."""
    from cnnlab.data.images import load_pil

    problem = check(png_header_only(tmp_path / "bomb.png", 100_000, 100_000))
    assert problem is not None and problem.kind == "too large"
    assert "10,000,000,000 pixels" in problem.detail and "the limit of 89,478,485" in problem.detail
    big = save(Image.new("L", (10_000, 9_000), 90), tmp_path / "big.png", optimize=True)  # 90 M pixels
    assert check(big).kind == "too large" and "the limit of 89,478,485" in check(big).detail
    image = load_pil(big, 1, max_pixels=100_000_000, reduce_to=32)
    assert image.size == (72, 65) and image.getpixel((3, 3)) == 90  # reduced by 9000 // 64 = 140


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_large_image_is_decoded_small_when_the_caller_wants_it_small(tmp_path: Path, suffix: str) -> None:
    """JPEG through libjpeg's scaling (draft), other formats box-reduced after decoding: the shorter side ends
    between 2x and 4x the wanted side (reducing_gap 2), colours kept, EXIF orientation still applied."""
    from cnnlab.data.images import load_pil

    image = Image.new("RGB", (4000, 3000), (200, 100, 50))
    exif = image.getexif()
    exif[0x0112] = 6  # stored sideways: shown rotated by 90 degrees
    path = save(image, tmp_path / f"photo{suffix}", exif=exif)
    small = load_pil(path, 3, reduce_to=40)
    assert small.height > small.width and 2 * 40 <= small.width < 4 * 40 * (1 + (suffix == ".jpg")), small.size
    assert max(abs(a - b) for a, b in zip(small.getpixel((10, 10)), (200, 100, 50))) <= 3
    assert load_pil(path, 3).size == (3000, 4000)  # nothing asked: full size
