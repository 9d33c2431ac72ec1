"""The decoded uint8 cache of a folder dataset: every image decoded once, resized (shorter side) to
`size` and centre-cropped square, stored in one memory-mapped .npy file [N, C, size, size].

Later epochs (and later runs) read pixels instead of decoding JPEGs. The file is keyed by the exact file
list (paths, sizes, modification times), the size and the channels, so a changed folder builds a new cache
instead of reading a stale one. It is written to a temporary name and renamed when complete: an
interrupted build leaves no half cache behind. Files that fail to decode are reported, not cached.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .base import FileList
from .images import ImageProblem, decode
from .roots import user_cache_dir
from .scan import default_workers, process_pool

_CHUNK = 64


@dataclass
class DecodedCache:
    path: Path
    array: np.ndarray  # memory-mapped uint8 [N, C, S, S]
    rows: dict[str, int]  # file path -> row

    @property
    def size(self) -> int:
        return int(self.array.shape[-1])

    def row_indices(self, files: FileList) -> np.ndarray:
        return np.array([self.rows[str(files.path(i))] for i in range(len(files))], dtype=np.int64)

    def images(self, files: FileList) -> torch.Tensor:
        """The cached images of `files` as one in-memory uint8 tensor (for the device path)."""
        return torch.from_numpy(np.ascontiguousarray(self.array[self.row_indices(files)]))


def cache_dir() -> Path:
    return user_cache_dir().parent / "decoded"


def cache_key(paths: list[Path], size: int, channels: int) -> str:
    digest = hashlib.sha256(f"{size}:{channels}".encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def decode_square(path: Path, size: int, channels: int, max_pixels: int) -> torch.Tensor:
    """Decode, resize the shorter side to `size` (antialiased), centre-crop to size x size."""
    from torchvision.transforms.v2 import functional as TF  # here, not at load: see data/transforms.py

    image = decode(path, channels, max_pixels, draft=size)
    image = TF.resize(image, size, antialias=True)
    return TF.center_crop(image, [size, size])


def _decode_chunk(args: tuple[list[Path], int, int, int]) -> list[np.ndarray | str]:
    paths, size, channels, max_pixels = args
    out: list[np.ndarray | str] = []
    for path in paths:
        try:
            out.append(decode_square(path, size, channels, max_pixels).numpy())
        except ImageProblem as problem:
            out.append(f"{problem.kind}: {problem.detail}")
    return out


def ensure_cache(paths: list[Path], size: int, channels: int, max_pixels: int, workers: int | None = None,
                 directory: Path | None = None) -> tuple[DecodedCache, dict[str, str]]:
    """Open the cache of these files, building it first if needed. Returns (cache, {path: problem})."""
    directory = directory or cache_dir()
    key = cache_key(paths, size, channels)
    array_path, meta_path = directory / f"{key}.npy", directory / f"{key}.json"
    if array_path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        return _open(array_path, meta), meta["bad"]
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{key}.{os.getpid()}.npy"
    array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), channels, size, size))
    bad = _fill(array, paths, size, channels, max_pixels, workers)
    array.flush()
    del array
    meta = {"files": [str(p) for p in paths], "size": size, "channels": channels, "bad": bad}
    meta_path.write_text(json.dumps(meta))
    os.replace(tmp, array_path)
    return _open(array_path, meta), bad


def _fill(array: np.ndarray, paths: list[Path], size: int, channels: int, max_pixels: int,
          workers: int | None) -> dict[str, str]:
    from .progress import track

    chunks = [(paths[i : i + _CHUNK], size, channels, max_pixels) for i in range(0, len(paths), _CHUNK)]
    workers = default_workers() if workers is None else workers
    bad: dict[str, str] = {}
    results: Iterator[Any]
    if workers <= 1 or len(chunks) == 1:
        results = map(_decode_chunk, chunks)
        pool = None
    else:
        pool = process_pool(workers)
        results = pool.map(_decode_chunk, chunks)
    try:
        for index, chunk in enumerate(track(results, len(chunks), f"decoding {len(paths)} images into the cache")):
            for offset, item in enumerate(chunk):
                row = index * _CHUNK + offset
                if isinstance(item, str):
                    bad[str(paths[row])] = item
                else:
                    array[row] = item
    finally:
        if pool is not None:
            pool.shutdown()
    return bad


def _open(array_path: Path, meta: dict) -> DecodedCache:
    array = np.load(array_path, mmap_mode="r")
    return DecodedCache(array_path, array, {p: i for i, p in enumerate(meta["files"])})
