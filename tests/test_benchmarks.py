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
