"""Writers of real on-disk dataset formats, used by the tests to create their own fixture files."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """An IDX file exactly as LeCun specifies: 0x0000, type 0x08 (ubyte), ndim, big-endian dims, data."""
    assert array.dtype == np.uint8
    payload = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)
    return path


def learnable_images(labels: np.ndarray, size: int = 28, seed: int = 0) -> np.ndarray:
    """uint8 images whose class is visible: a bright bar at a class-dependent row, plus noise."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, size=(len(labels), size, size), dtype=np.uint8)
    for i, label in enumerate(labels):
        row = 2 + int(label) * (size - 4) // 10
        images[i, row : row + 2, 4:-4] = 250
    return images


def write_mnist_like(directory: Path, train: int = 200, test: int = 50, gz: bool = False, seed: int = 0) -> Path:
    """The four MNIST/Fashion-MNIST IDX files with `train` and `test` images of 10 classes."""
    rng = np.random.default_rng(seed)
    for prefix, count in (("train", train), ("t10k", test)):
        labels = (np.arange(count) % 10).astype(np.uint8)
        rng.shuffle(labels)
        write_idx(directory / f"{prefix}-images-idx3-ubyte", learnable_images(labels, seed=seed), gz)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels, gz)
    return directory


def write_cifar10(directory: Path, per_batch: int = 20, seed: int = 0) -> Path:
    """cifar-10-batches-py as the official archive has it: pickled dicts with bytes keys, protocol 2."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    for name in names:
        labels = [int(x) for x in rng.integers(0, 10, per_batch)]
        batch = {
            b"batch_label": name.encode(),
            b"labels": labels,
            b"data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
            b"filenames": [f"img_{i}.png".encode() for i in range(per_batch)],
        }
        with open(directory / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    meta = {b"label_names": [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer", "dog",
                                                  "frog", "horse", "ship", "truck")],
            b"num_cases_per_batch": per_batch, b"num_vis": 3072}
    with open(directory / "batches.meta", "wb") as handle:
        pickle.dump(meta, handle, protocol=2)
    return directory


# fp32 pinned: on a CPU with native bf16, precision=auto trains in bf16 (train/cpu.py), and tests that compare a
# run with fp32 arithmetic (predict against the model, an export against its run, an ensemble's vote) would
# compare two precisions
FAST = ["data=digits", "model=lenet5", "data.train_limit=256", "epochs=2", "batch_size=32", "train.precision=fp32"]


def write_jpeg_tree(root: Path, classes: dict[str, int], size: tuple[int, int] = (48, 36), seed: int = 0,
                    suffix: str = ".jpg") -> Path:
    """root/<class>/image_NNNN.jpg with real JPEG bytes; each class has its own colour so it is learnable."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for index, (name, count) in enumerate(classes.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        base = np.array([(index * 67) % 256, (index * 131) % 256, (index * 29 + 80) % 256], dtype=np.int16)
        for i in range(count):
            noise = rng.integers(-20, 21, size=(size[1], size[0], 3))
            pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"image_{i + 1:04d}{suffix}", quality=90)
    return root


def write_caltech(root: Path, classes: int = 4, per_class: int = 12, background: int = 5) -> Path:
    """A Caltech-101-shaped folder: root/caltech101/101_ObjectCategories/<class>/image_NNNN.jpg, with the
    BACKGROUND_Google clutter class the real archive has."""
    names = {f"class_{i:02d}": per_class for i in range(classes)}
    names["BACKGROUND_Google"] = background
    return write_jpeg_tree(root / "caltech101" / "101_ObjectCategories", names)


def write_cifar100(directory: Path, train: int = 40, test: int = 20, seed: int = 0) -> Path:
    """cifar-100-python/{train,test,meta} as the official archive has them (fine and coarse labels)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for name, count in (("train", train), ("test", test)):
        fine = [int(x) for x in rng.integers(0, 100, count)]
        batch = {b"filenames": [b"x.png"] * count, b"batch_label": name.encode(), b"fine_labels": fine,
                 b"coarse_labels": [f // 5 for f in fine],
                 b"data": rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)}
        with open(directory / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    meta = {b"fine_label_names": [f"fine_{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse_{i}".encode() for i in range(20)]}
    with open(directory / "meta", "wb") as handle:
        pickle.dump(meta, handle, protocol=2)
    return directory


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose IHDR declares width x height RGB pixels over 100 zero bytes of data: a decompression
    bomb's header, hand-built (no encoder writes one)."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB, deflate, no interlace
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100))
                     + chunk(b"IEND", b""))
    return path


def jpeg_header_only(path: Path, width: int, height: int) -> Path:
    """A JPEG whose baseline SOF0 header declares width x height (at most 65,535 each) with 3 components,
    and nothing after it: start of image, the frame header, end of image."""
    components = b"\x01\x22\x00" + b"\x02\x11\x01" + b"\x03\x11\x01"  # Y 2x2-sampled, Cb and Cr 1x1
    frame = b"\xff\xc0" + struct.pack(">HBHHB", 8 + len(components), 8, height, width, 3) + components
    path.write_bytes(b"\xff\xd8" + frame + b"\xff\xd9")
    return path
