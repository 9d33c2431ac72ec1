"""The C allocator of a CPU run: keep freed activation memory for the next step instead of returning it.

A training step allocates its activations and gradients afresh and frees them at the end. glibc's malloc
returns a freed region above its trim threshold to the kernel (and serves large requests by mmap), so the
next step faults the same pages in again, each zeroed by the kernel. glibc's default thresholds adapt to
the largest block freed (mmap threshold = that size, trim threshold = twice it), which a step's many
activations of a few MB exceed every time. Measured on the seed convnet (Fashion-MNIST 1x32x32, batch 64,
fp32, one thread, AMD EPYC Zen 4): 3,300-3,700 minor page faults per step and 8 ms of kernel time in a
27 ms step; with the thresholds below, 0-1 fault per step and 1.46x the img/s (1,600 -> 2,350).

`mallopt(M_MMAP_THRESHOLD, 32 MiB)` (glibc's largest: blocks below it come from the heap) and
`mallopt(M_TRIM_THRESHOLD, 1 GiB)` (freed memory at the heap's top is kept up to that much) do the same as
the MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ variables without restarting the process. A process
whose user set either variable, or preloads another allocator (jemalloc, tcmalloc), is left as it is; so
is any C library other than glibc, and a process started with CNNLAB_ALLOCATOR=system (to measure the
difference: benchmarks/step_choices.py). The cost: a process keeps its peak heap instead of giving it back,
which a training process reaches every step anyway. Results do not change: where memory comes from is
not arithmetic.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from collections.abc import Mapping

from ..errors import ConfigError

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's maximum (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)
TRIM_THRESHOLD = 1024 * 1024 * 1024
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")


def allocator_choice(platform: str, environ: Mapping[str, str], has_glibc: bool) -> str | None:
    """Why the allocator is left alone, or None when cnnlab sets glibc's thresholds (a pure decision)."""
    chosen = environ.get("CNNLAB_ALLOCATOR", "").strip()
    if chosen == "system":
        return "CNNLAB_ALLOCATOR=system: left as it is"
    if chosen:  # said, not ignored: 'System' or a typo would silently measure cnnlab's thresholds instead
        raise ConfigError(f"CNNLAB_ALLOCATOR takes one value, system (the C allocator as the process started), "
                          f"not '{chosen}'; unset it for cnnlab's thresholds")
    if not platform.startswith("linux") or not has_glibc:
        return "not glibc: left as it is"
    for name in USER_SETTINGS:
        if name in environ:
            return f"{name} is set: the user's settings kept"
    preload = environ.get("LD_PRELOAD", "")
    for other in OTHER_ALLOCATORS:
        if other in preload:
            return f"{other} preloaded: left as it is"
    return None


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
    except (OSError, AttributeError):
        return None
    return libc


@functools.cache  # mallopt is process-wide: decided once per process
def keep_freed_memory() -> str:
    """Set glibc's thresholds (see the module's notes); returns what the allocator is, for run.json and
    bench's JSON."""
    libc = _glibc() if sys.platform.startswith("linux") else None
    why = allocator_choice(sys.platform, os.environ, libc is not None)
    if why is None and libc is not None:
        done = all(libc.mallopt(option, value) == 1
                   for option, value in ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD)))
        why = ("glibc, freed memory kept (mmap threshold 32 MiB, trim threshold 1 GiB)" if done
               else "glibc refused mallopt: left as it is")
    return why or "left as it is"
