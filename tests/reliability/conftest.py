"""The fault-injection suite runs the real program (subprocesses of `python -m cnnlab`), so each test
starts from a fresh interpreter the way a user's shell would."""

import os

import pytest


@pytest.fixture(autouse=True)
def quiet_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes at once share the two cores of a CI machine without oversubscribing them."""
    monkeypatch.setenv("CNNLAB_NUM_THREADS", os.environ.get("CNNLAB_NUM_THREADS", "1"))
