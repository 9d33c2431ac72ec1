"""Checking every image of a folder dataset before the first training step, so that a corrupt file stops
the run at once with its path (or is skipped with `data.skip_bad`) instead of crashing it hours later.

Each file is decoded completely (a truncated JPEG only shows when its last rows are read), in parallel
worker processes. Results are remembered per file (size and modification time) in the user cache, so a
second run over the same folder only looks at the files that changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .images import check
from .roots import user_cache_dir

_PARALLEL_FROM = 64  # fewer files are checked in this process


def default_workers() -> int:
    return min(8, os.cpu_count() or 1)


def _single_threaded() -> None:
    """Worker initializer. A forked child must not enter an OpenMP parallel region the parent already
    used (GNU libgomp then deadlocks); with one intra-op thread torch ops run inline, as in DataLoader
    workers, which set the same."""
    import torch

    torch.set_num_threads(1)


def process_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(workers, initializer=_single_threaded)


def find_bad_files(paths: Iterable[Path], max_pixels: int, workers: int | None = None,
                   progress: bool = False) -> dict[str, str]:
    """{path: problem} for every file that does not decode (an empty dict when all are fine)."""
    paths = [Path(p) for p in paths]
    memo_path = _memo_path(paths)
    memo = _read_memo(memo_path)
    stamps = {str(p): _stamp(p) for p in paths}
    todo = [p for p in paths if memo.get(str(p), {}).get("stamp") != stamps[str(p)]
            or memo[str(p)].get("max_pixels") != max_pixels]
    for path, problem in zip(todo, _check_all(todo, max_pixels, workers, progress)):
        memo[str(path)] = {"stamp": stamps[str(path)], "max_pixels": max_pixels, "problem": problem}
    if todo:
        _write_memo(memo_path, memo)
    return {str(p): memo[str(p)]["problem"] for p in paths if memo[str(p)]["problem"]}


def _check_one(args: tuple[Path, int]) -> str | None:
    problem = check(*args)
    return None if problem is None else f"{problem.kind}: {problem.detail}"


def _check_all(paths: list[Path], max_pixels: int, workers: int | None, progress: bool) -> list[str | None]:
    jobs = [(p, max_pixels) for p in paths]
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(jobs) < _PARALLEL_FROM:
        return [_check_one(job) for job in jobs]
    with process_pool(workers) as pool:
        results = pool.map(_check_one, jobs, chunksize=32)
        if progress:
            from .progress import track

            results = track(results, len(jobs), "checking images")
        return list(results)


def _stamp(path: Path) -> list[int]:
    try:
        stat = path.stat()
    except OSError:
        return [-1, -1]
    return [stat.st_size, stat.st_mtime_ns]


def _memo_path(paths: list[Path]) -> Path:
    key = hashlib.sha256(str(sorted({str(p.parent.parent) for p in paths})).encode()).hexdigest()[:20]
    return user_cache_dir().parent / "scans" / f"{key}.json"


def _read_memo(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_memo(path: Path, memo: dict) -> None:
    from ..io import atomic_write_text

    try:
        atomic_write_text(path, json.dumps(memo))
    except OSError:
        pass  # a read-only cache only costs a re-check next time
