"""benchmarks/peers_cpu.py end to end, as a user runs it: one process training cnnlab, a torchvision
DataLoader loop and Lightning on the same network, writing one JSON with all three (quick: 512 images,
one epoch). Lightning is the `bench` extra: without it the script still runs the other two and says how to
install it."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def _fashion_mnist_present() -> bool:
    from cnnlab.config import load_config
    from cnnlab.data import load_raw
    from cnnlab.train import make_model  # noqa: F401  (fills the registries the config is checked against)

    try:
        load_raw(load_config(None, ["data=fashion-mnist"]).data)
    except DataError:
        return False
    return True


@pytest.mark.skipif(not _fashion_mnist_present(), reason="Fashion-MNIST is not on this machine")
def test_peers_cpu_trains_the_same_network_three_ways_at_each_precision_and_writes_its_json(tmp_path: Path) -> None:
    """Issue 35: each peer in fp32 and in bf16 (the plain loop under autocast, Lightning's bf16-mixed) against
    cnnlab at the same precision, each training in its own process."""
    out = tmp_path / "peers.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers_cpu.py"), "--limit", "512",
                           "--epochs", "1", "--repeats", "1", "--workers", "0", "--out", str(out)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["train_images"] == 512 and report["batch_size"] == 64 and report["input"] == [1, 32, 32]
    assert report["threads"] == 1 and report["cpu"] and set(report["precisions"]) == {"fp32", "bf16"}
    ran = ["cnnlab", "plain"]
    if importlib.util.find_spec("lightning") is not None:
        ran.append("lightning")
    else:
        assert "pip install 'cnnlab[bench]'" in report["precisions"]["fp32"]["lightning"]["skipped"]
        assert "pip install 'cnnlab[bench]'" in done.stdout
    for precision, entry in report["precisions"].items():
        assert {entry[side]["parameters"] for side in ran} == {254_858}  # the same network on every side
        assert entry["cnnlab"]["runs"][0]["speed"]["precision"] == precision  # cnnlab at the peers' precision
        for side in ran:
            assert entry[side]["images_per_second"] > 0 and 0.0 <= entry[side]["test_acc"] <= 1.0
            assert len(entry[side]["images_per_second_all"]) == 1 and entry[side]["spread"] == 0.0
        assert set(entry["ratios"]) == {f"cnnlab/{side}" for side in ran[1:]}
        assert entry["ratios"]["cnnlab/plain"] == pytest.approx(
            entry["cnnlab"]["images_per_second"] / entry["plain"]["images_per_second"])
        assert entry["verdicts"]["plain"]["verdict"] == "1 seed"  # one seed: no word about the configurations
    assert "fp32:" in done.stdout and "bf16:" in done.stdout and "cnnlab/plain" in done.stdout


def test_peers_cpu_summarises_the_median_its_spread_and_cnnlabs_verdict() -> None:
    """Hand-written runs: the median of three, (max - min) / median, and the paired verdict over the seeds,
    Holm over the two peers: +0.1 points with a spread of 0.1 is inside +-0.5 (equivalent); -3 points is worse."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import peers_cpu
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    runs = lambda rates, accs: [{"images_per_second": r, "test_acc": a, "parameters": 1} for r, a in zip(rates, accs)]
    ours = peers_cpu.summarise(runs([9000, 10000, 9500], [0.885, 0.889, 0.887]))
    assert ours["images_per_second"] == 9500 and ours["spread"] == pytest.approx(1000 / 9500)
    entry = {"cnnlab": ours, "plain": peers_cpu.summarise(runs([3000] * 3, [0.884, 0.887, 0.886])),
             "lightning": peers_cpu.summarise(runs([3000] * 3, [0.915, 0.92, 0.918]))}
    judged = peers_cpu.verdicts(entry, ["plain", "lightning"])
    assert judged["plain"]["verdict"] == "equivalent" and judged["plain"]["delta_points"] == pytest.approx(0.133, abs=1e-3)
    assert judged["lightning"]["verdict"] == "worse"


def _run_script(name: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_precision_cpu_times_three_variants_against_fp32_nhwc(tmp_path: Path) -> None:
    done = _run_script("precision_cpu.py", ["--steps", "1", "--repeats", "2", "--batch-size", "8",
                                            "--out", str(tmp_path / "p.json")], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "p.json").read_text())
    assert set(report["variants"]) == {"fp32 NCHW", "fp32 NHWC", "bf16 NHWC"}
    assert report["variants"]["fp32 NHWC"]["ratio_to_fp32_nhwc"] == 1.0
    assert all(len(v["all"]) == 2 and v["median_images_per_second"] > 0 for v in report["variants"].values())
    # 3x32x32: 3 x forward less conv1's 2,822,400 (the images need no gradient)
    assert report["flops_per_image"] == 3 * 7_538_944 - 2_822_400 and isinstance(report["native_bf16"], bool)


@pytest.mark.skipif(not _fashion_mnist_present(), reason="Fashion-MNIST is not on this machine")
def test_eval_speed_times_training_and_evaluation_in_one_process(tmp_path: Path) -> None:
    done = _run_script("eval_speed.py", ["--limit", "640", "--test-limit", "512", "--repeats", "1",
                                         "--clock", "process", "--out", str(tmp_path / "e.json")], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "e.json").read_text())
    assert set(report["images_per_second"]) == {"train epoch", "eval (channels_last weights)", "eval (NCHW weights)"}
    assert report["ratios_to_training"]["train epoch"] == 1.0 and report["clock"] == "process"
