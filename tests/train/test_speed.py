"""Issue 35's speed choices: the allocator that keeps a step's freed memory (page faults counted in a real
process), the threads by batch size, and train.compile=auto's decisions: pure rules on hand-written numbers,
the probe on a real model (weights and random streams untouched), and the decision a real run records in
run.json and keeps on resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.train import allocator, speed
from cnnlab.train.compile_probe import probe_compile
from cnnlab.train.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]

# one process: the seed convnet's step at batch 64 (Fashion-MNIST's 1x32x32), minor page faults per step after
# warm-up; argv[1] = "cnnlab": the runtime cnnlab chooses (choose_runtime), "default": glibc as the process starts
FAULTS = """
import resource, sys, torch, torch.nn.functional as F
from cnnlab.models import build_model
from cnnlab.train.runtime import choose_runtime
torch.set_num_threads(1)
if sys.argv[1] == "cnnlab":
    print(choose_runtime(torch.device("cpu"), "fp32", True, 64).allocator, file=sys.stderr)
torch.manual_seed(0)
model = build_model("convnet", {}, num_classes=10, in_channels=1, image_size=32).to(memory_format=torch.channels_last)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
images = torch.randn(64, 1, 32, 32).contiguous(memory_format=torch.channels_last)
labels = torch.randint(0, 10, (64,))
def step():
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(images), labels).backward()
    optimizer.step()
for _ in range(5):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_the_runtime_keeps_freed_memory_so_a_step_faults_in_no_pages() -> None:
    """Before issue 35 every step of this process faulted ~3,500 pages (14 MB zeroed by the kernel, 8 ms of a
    27 ms step on the docs' AMD EPYC): glibc returned the step's freed activations to the kernel. With the
    runtime cnnlab chooses, a warm step faults next to none."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "LD_PRELOAD"}
    env["PYTHONPATH"] = str(ROOT / "src")
    faults = {}
    for side in ("default", "cnnlab"):
        done = subprocess.run([sys.executable, "-c", FAULTS, side], capture_output=True, text=True, env=env,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        faults[side] = float(done.stdout.strip().splitlines()[-1])
    if faults["default"] < 500:
        pytest.skip(f"this C library does not hand a step's memory back ({faults['default']:.0f} faults per step)")
    # 0-1 per warm step when the process has the cores to itself; a busy machine adds a few dozen (58.8 in one
    # make test run beside another worker): a bound of 200 still fails on glibc's ~3,000 and is not flaky
    assert faults["cnnlab"] < 200, faults
    assert faults["cnnlab"] * 20 < faults["default"], faults


def test_the_allocator_is_left_alone_where_the_user_chose_or_it_is_not_glibc() -> None:
    assert allocator.allocator_choice("linux", {}, True) is None  # cnnlab sets glibc's thresholds
    assert "left as it is" in allocator.allocator_choice("linux", {"CNNLAB_ALLOCATOR": "system"}, True)
    assert "not glibc" in allocator.allocator_choice("darwin", {}, False)
    assert "not glibc" in allocator.allocator_choice("linux", {}, False)  # musl
    assert "MALLOC_TRIM_THRESHOLD_ is set" in allocator.allocator_choice("linux", {"MALLOC_TRIM_THRESHOLD_": "0"}, True)
    preload = {"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}
    assert "jemalloc preloaded" in allocator.allocator_choice("linux", preload, True)


def test_threads_follow_the_study_then_the_user_then_the_batch_size(monkeypatch) -> None:
    assert speed.threads_for(64, {"CNNLAB_NUM_THREADS": "1", "OMP_NUM_THREADS": "2"}) == 1  # study --jobs 2
    assert speed.threads_for(64, {"OMP_NUM_THREADS": "2"}) == 0  # the user's: torch already follows it
    monkeypatch.setattr(speed, "ONE_THREAD_UP_TO", 32)
    assert speed.threads_for(16, {}) == 1 and speed.threads_for(32, {}) == 1
    assert speed.threads_for(64, {}) == speed.DEFAULT_THREADS
    assert speed.threads_for(0, {}) == speed.DEFAULT_THREADS  # batch unknown (full batch): torch's default


def test_compile_decisions_on_hand_written_timings() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert speed.fixed_choice(True, cpu).used and not speed.fixed_choice(False, cpu).used
    assert speed.fixed_choice("auto", cpu) is None  # measured
    gpu = speed.fixed_choice("auto", cuda)
    assert not gpu.used and "unmeasured" in gpu.why  # GPU paths stay off until a GPU proves them
    # 30 s of compile, at best 2x: an eager run must last over 60 s for a compile to possibly pay
    assert not speed.worth_probing(1000, 0.05) and speed.worth_probing(1300, 0.05)
    assert speed.bound_choice(100, 0.001).why.startswith("auto: eager; 100 steps take at least 0.1 s")
    assert speed.bound_choice(100_000, 0.001) is None  # 100 s at peak: worth measuring
    assert speed.compile_pays(1000, 0.020, 0.018) and not speed.compile_pays(1000, 0.020, 0.0195)  # 5% margin
    assert not speed.compile_pays(0, 0.020, 0.010)
    probed = speed.probed_choice(10_000, 0.020, 0.040, 25.0)
    assert not probed.used and "0.50x of eager's" in probed.why and probed.compile_seconds == 25.0
    faster = speed.probed_choice(10_000, 0.020, 0.010, 25.0)
    assert faster.used and "2.00x the eager step, saves ~100 s over 10,000 steps" in faster.why
    kept = speed.resumed_choice(faster.to_dict(), "auto")
    assert kept.used and kept.why.endswith("(decided when the run started, kept on resume)")
    assert speed.resumed_choice(kept.to_dict(), "auto").why == kept.why  # said once, however many resumes
    assert speed.resumed_choice(faster.to_dict(), False) is None  # an explicit setting is the setting
    assert speed.CompileChoice.from_dict(faster.to_dict()) == faster


def test_the_probe_leaves_the_model_and_the_random_streams_as_they_were(monkeypatch) -> None:
    """A run decided eager must compute exactly what it would have without the probe: the probe times a
    scratch copy (dropout draws included) under a forked random stream."""
    from cnnlab.models import build_model

    torch.manual_seed(3)
    model = build_model("convnet", {"dropout": 0.3}, num_classes=10, in_channels=1, image_size=32)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.random.get_rng_state()
    from cnnlab.train import compile_probe

    monkeypatch.setattr(compile_probe, "fastest_step_seconds", lambda *args: None)  # no lower bound: measure
    monkeypatch.setattr(speed, "COMPILE_SECONDS", 1e9)  # then too short to compile: measured eager, never compiled
    choice = probe_compile(model, (8, 1, 32, 32), 10, Runtime(torch.device("cpu"), None, True), steps=10**9)
    assert not choice.used and choice.eager_step_ms > 0 and "too short to pay for a compile" in choice.why
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_a_run_records_how_it_computed_and_a_resume_keeps_the_compile_decision(tmp_path: Path) -> None:
    args = ["data=digits", "data.train_limit=64", "batch_size=16", "epochs=1", "augment=false"]
    first = cnnlab.train(None, args, runs_dir=tmp_path, name="run", quiet=True)
    recorded = json.loads((first.run_dir / "run.json").read_text())["speed"]
    assert recorded["precision"] in ("fp32", "bf16") and recorded["channels_last"] is True
    assert recorded["threads"] == torch.get_num_threads() and recorded["allocator"]
    assert recorded["compile"]["requested"] == "auto" and recorded["compile"]["used"] is False
    assert "too short to pay for a compile" in recorded["compile"]["why"]
    more = cnnlab.train(resume=first.run_dir, overrides=["epochs=2"], quiet=True, allow_config_change=True)
    assert more.status == "completed"
    resumed = json.loads((first.run_dir / "run.json").read_text())["speed"]["compile"]
    assert resumed["used"] is False and resumed["why"].endswith("kept on resume)")


@pytest.mark.slow
def test_auto_compiles_the_probe_when_the_run_could_pay_and_records_both_steps(tmp_path: Path, monkeypatch) -> None:
    """The measured path end to end (make test-long: it compiles): with the compile's price set to nothing the
    probe compiles the scratch copy, times both steps, and the run trains as the measurement decides; on
    the docs' AMD EPYC the compiled convnet step was slower, so there it trains eagerly and says so."""
    from cnnlab.train import compile_probe

    monkeypatch.setattr(speed, "COMPILE_SECONDS", 0.0)
    monkeypatch.setattr(compile_probe, "fastest_step_seconds", lambda *args: None)
    args = ["data=digits", "data.train_limit=128", "batch_size=32", "epochs=1", "augment=false", "model=convnet"]
    run = cnnlab.train(None, args, runs_dir=tmp_path, name="probed", quiet=True)
    decided = json.loads((run.run_dir / "run.json").read_text())["speed"]["compile"]
    assert decided["requested"] == "auto" and decided["compile_seconds"] > 0
    assert decided["eager_step_ms"] > 0 and decided["compiled_step_ms"] > 0
    faster = decided["compiled_step_ms"] < decided["eager_step_ms"] * (1 - speed.MARGIN)
    assert decided["used"] is faster and decided["why"].startswith("auto: compiled" if faster else "auto: eager")
