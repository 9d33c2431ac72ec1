"""The versions a run was made with, for run.json: results are reproducible bit for bit only with the same ones."""

from __future__ import annotations

import platform


def versions() -> dict[str, str]:
    import numpy
    import torch
    import torchvision

    from .._version import __version__

    return {"cnnlab": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}
