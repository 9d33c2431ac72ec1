"""The versions a run was made with, for run.json: results are reproducible bit for bit only with the same ones."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version


def versions() -> dict[str, str]:
    import numpy
    import torch

    from .._version import __version__

    return {"cnnlab": __version__, "torch": torch.__version__, "torchvision": _installed("torchvision"),
            "numpy": numpy.__version__, "python": platform.python_version()}


def _installed(package: str) -> str:
    """The installed distribution's version, read from its metadata: importing torchvision just to read
    `__version__` would load torch._dynamo, about a second of every run's start."""
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"
