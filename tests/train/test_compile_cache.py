"""train.compile=auto compiles a network to measure it once per step and machine: the probe's measurement is
kept (train/compile_cache.py) and a later run of the same step applies the kept ratio to its own eager step
without compiling again; an unreadable cache is replaced, CNNLAB_CACHE_DIR=off keeps nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnlab.models import build_model
from cnnlab.train import compile_cache, compile_probe, speed
from cnnlab.train.compile_probe import probe_compile
from cnnlab.train.runtime import Runtime

SHAPE = (8, 1, 32, 32)
RUNTIME = Runtime(torch.device("cpu"), None, True)


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch) -> list[nn.Module]:
    """Every run long enough to probe, and torch.compile replaced by a counter (the 'compiled' step is the eager
    one, so nothing takes a compiler's time): the list holds each model compiled."""
    compiled: list[nn.Module] = []
    monkeypatch.setattr(speed, "COMPILE_SECONDS", 0.0)
    monkeypatch.setattr(compile_probe, "fastest_step_seconds", lambda *args: None)

    def fake_compile(module: nn.Module) -> nn.Module:
        compiled.append(module)
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    return compiled


def convnet() -> nn.Module:
    torch.manual_seed(0)
    return build_model("convnet", {}, num_classes=10, in_channels=1, image_size=32)


def test_the_kept_ratio_is_applied_to_the_runs_own_eager_step() -> None:
    slower = speed.cached_choice(1000, 0.020, {"eager_ms": 10.0, "compiled_ms": 25.0, "compile_seconds": 30.0,
                                               "measured": "2026-12-07"})
    assert not slower.used and slower.compiled_step_ms == pytest.approx(50.0) and slower.eager_step_ms == 20.0
    assert "0.40x of eager's" in slower.why and "on 2026-12-07" in slower.why and "nothing compiled again" in slower.why
    faster = speed.cached_choice(1000, 0.020, {"eager_ms": 10.0, "compiled_ms": 5.0, "compile_seconds": 30.0,
                                               "measured": "2026-12-07"})
    assert faster.used and faster.compiled_step_ms == pytest.approx(10.0) and "2.00x the eager step" in faster.why
    assert "saves ~10 s over 1,000 steps" in faster.why
    within_margin = {"eager_ms": 10.0, "compiled_ms": 9.8, "compile_seconds": 1.0, "measured": "x"}
    assert not speed.cached_choice(1000, 0.02, within_margin).used  # 2% faster is inside the 5% margin


def test_a_probe_compiles_once_then_the_same_step_is_read_from_the_cache(measured: list[nn.Module]) -> None:
    first = probe_compile(convnet(), SHAPE, 10, RUNTIME, steps=10**6)
    assert len(measured) == 1 and first.compile_seconds is not None and "compiling took" in first.why
    path = compile_cache.cache_file()
    assert path is not None and path.is_file()
    (entry,) = json.loads(path.read_text()).values()
    assert entry["eager_ms"] > 0 and entry["compiled_ms"] > 0 and entry["measured"]
    again = probe_compile(convnet(), SHAPE, 10, RUNTIME, steps=10**6)
    assert len(measured) == 1, "the same step compiled again"
    assert "measured on this machine for this network, batch and precision" in again.why
    assert again.compile_seconds is None and again.eager_step_ms > 0
    other = probe_compile(convnet(), (16, 1, 32, 32), 10, RUNTIME, steps=10**6)  # another batch: another step
    assert len(measured) == 2 and "compiling took" in other.why
    wider = build_model("convnet", {"filters": [8, 16, 32]}, num_classes=10, in_channels=1, image_size=32)
    probe_compile(wider, SHAPE, 10, RUNTIME, steps=10**6)  # another network: measured
    assert len(measured) == 3 and len(json.loads(path.read_text())) == 3


def test_an_unreadable_cache_is_replaced_and_off_keeps_nothing(measured: list[nn.Module], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path / "mine"))
    path = compile_cache.cache_file()
    assert path == tmp_path / "mine" / "compile_probes.json"
    path.parent.mkdir()
    for damaged in ("{not json", "[1, 2]", json.dumps({compile_cache.step_key(convnet(), SHAPE, "fp32", True):
                                                       {"eager_ms": 0, "compiled_ms": 1, "compile_seconds": 1,
                                                        "measured": "x"}})):
        path.write_text(damaged)
        probe_compile(convnet(), SHAPE, 10, RUNTIME, steps=10**6)
        assert compile_cache.recall(compile_cache.step_key(convnet(), SHAPE, "fp32", True), path) is not None
    assert len(measured) == 3  # each damaged file meant a new measurement, then a good entry
    monkeypatch.setenv("CNNLAB_CACHE_DIR", "off")
    assert compile_cache.cache_file() is None
    probe_compile(convnet(), SHAPE, 10, RUNTIME, steps=10**6)
    probe_compile(convnet(), SHAPE, 10, RUNTIME, steps=10**6)
    assert len(measured) == 5  # nothing kept: measured every time


def test_a_cache_that_cannot_be_written_only_costs_the_next_compile(measured: list[nn.Module], tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(blocked))
    choice = probe_compile(convnet(), SHAPE, 10, RUNTIME, steps=10**6)
    assert choice.compile_seconds is not None and blocked.read_text().startswith("a file")
