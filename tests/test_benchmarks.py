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
def test_peers_cpu_trains_the_same_network_three_ways_and_writes_its_json(tmp_path: Path) -> None:
    out = tmp_path / "peers.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers_cpu.py"), "--limit", "512",
                           "--epochs", "1", "--out", str(out)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["train_images"] == 512 and report["batch_size"] == 64 and report["input"] == [1, 32, 32]
    ran = ["cnnlab", "plain"]
    if importlib.util.find_spec("lightning") is not None:
        ran.append("lightning")
    else:
        assert "pip install 'cnnlab[bench]'" in report["lightning"]["skipped"]
        assert "pip install 'cnnlab[bench]'" in done.stdout
    parameters = {report[side]["parameters"] for side in ran}
    assert parameters == {254_858}  # convnet for 1x32x32 Fashion-MNIST, the same network on every side
    for side in ran:
        assert report[side]["images_per_second"] > 0 and 0.0 <= report[side]["test_acc"] <= 1.0
        assert f"{side:<10}" in done.stdout
    assert set(report["ratios"]) == {f"cnnlab/{side}" for side in ran[1:]}
    assert report["ratios"]["cnnlab/plain"] == pytest.approx(
        report["cnnlab"]["images_per_second"] / report["plain"]["images_per_second"])
    assert report["cpu"] and report["threads"] == 1


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
