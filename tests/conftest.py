"""Shared fixtures. Every data file a test reads is written by the tests, in the real on-disk format."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs two workers on two cores: one thread each, so they
    os.environ["OMP_NUM_THREADS"] = "1"  # (and the cnnlab subprocesses, which inherit it) do not fight over cores
    import torch

    torch.set_num_threads(1)

from tests.helpers import write_mnist_like

RELIABILITY = Path(__file__).parent / "reliability"


def pytest_itemcollected(item: pytest.Item) -> None:
    """Every test of tests/reliability runs the real program in subprocesses: slow (`pytest -m "not slow"`
    leaves them out of a quick loop)."""
    if RELIABILITY in Path(str(item.fspath)).parents:
        item.add_marker(pytest.mark.slow)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests (real processes, real training) first, the quick ones after. `make test` hands the
    two workers one test at a time (--maxschedchunk 1), so they share the long ones from the start and the
    quick ones fill the end, instead of one worker finishing a long test alone while the other has nothing."""
    items.sort(key=_order)


def _order(item: pytest.Item) -> tuple[bool, bool]:
    """Slow tests first, and first of them those marked `slow(first=True)` (the longest, so that neither
    worker is left with one at the end)."""
    slow = item.get_closest_marker("slow")
    return slow is None, not (slow is not None and slow.kwargs.get("first", False))


@pytest.fixture(autouse=True)
def isolated_data_roots(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads the developer's own dataset cache: $CNNLAB_DATA and the user cache point at empty dirs."""
    root = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(root))
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    return root


@pytest.fixture
def mnist_root(tmp_path: Path) -> Path:
    """A data root holding a small MNIST in the torchvision-style layout root/mnist/."""
    write_mnist_like(tmp_path / "data" / "mnist", gz=True)
    return tmp_path / "data"

