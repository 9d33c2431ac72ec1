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
@pytest.mark.parametrize("precisions", ["bf16", "fp32,bf16"])
def test_peers_cpu_trains_the_same_network_three_ways_at_each_precision_and_writes_its_json(
        tmp_path: Path, precisions: str) -> None:
    """Issue 35: each peer in fp32 and in bf16 (the plain loop under autocast, Lightning's bf16-mixed) against
    cnnlab at the same precision, each training in its own process (both precisions: make test-long)."""
    out = tmp_path / "peers.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers_cpu.py"), "--limit", "512",
                           "--epochs", "1", "--repeats", "1", "--workers", "0", "--precisions", precisions,
                           "--out", str(out)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["train_images"] == 512 and report["batch_size"] == 64 and report["input"] == [1, 32, 32]
    assert report["threads"] == 1 and report["cpu"] and set(report["precisions"]) == set(precisions.split(","))
    ran = ["cnnlab", "plain"]
    if importlib.util.find_spec("lightning") is not None:
        ran.append("lightning")
    else:
        assert "pip install 'cnnlab[bench]'" in report["precisions"]["bf16"]["lightning"]["skipped"]
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
    assert all(f"{p}:" in done.stdout for p in precisions.split(",")) and "cnnlab/plain" in done.stdout


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


def test_step_choices_times_each_choice_against_cnnlabs_step_with_its_fraction_of_peak(tmp_path: Path) -> None:
    """Issue 35 item 2: every choice of the step measured in one run against the alternative (compile left out
    here: its own test compiles, test_bench.py)."""
    done = _run_script("step_choices.py", ["--precisions", "bf16", "--blocks", "1", "--steps", "1",
                                           "--allocator-runs", "1", "--no-compile", "--out", str(tmp_path / "s.json")],
                       tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["flops_per_image"] == 16_031_232  # convnet at 1x32x32: 3 x forward less conv1's
    for precision in ("bf16",):
        rows = report["precisions"][precision]["variants"]
        assert list(rows)[0] == "cnnlab (NHWC, foreach SGD, eager)" and rows[list(rows)[0]]["ratio_to_cnnlab"] == 1.0
        assert {"NCHW", "fused SGD", "allocator as cnnlab sets it", "allocator: glibc as it starts"} <= set(rows)
        for row in rows.values():
            assert row["images_per_second"] > 0 and row["gflops_per_second"] > 0
            assert row["fraction_of_peak"] is None or 0 < row["fraction_of_peak"] < 1
    assert "of peak" in done.stdout or report["precisions"]["fp32"]["peak_gflops_per_second"] is None


def test_scaling_times_the_step_against_batch_width_and_image_size(tmp_path: Path) -> None:
    """Issue 35 item 4, the sections timed in one process (the data and --jobs sections: make test-long)."""
    done = _run_script("scaling.py", ["--sections", "batch,width,image", "--batches", "16", "--sides", "32,64",
                                      "--images", "32", "--repeats", "1", "--out", str(tmp_path / "sc.json")], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "sc.json").read_text())
    assert [p["batch_size"] for p in report["batch"]] == [16] and report["batch"][0]["threads"] == 1
    assert [p["filters"] for p in report["width"]] == [[24, 48, 96], [64, 128, 256]]
    assert report["width"][1]["flops_per_image"] > 4 * report["width"][0]["flops_per_image"]  # the wider column
    assert {(p["model"], p["image_size"]) for p in report["image"]} == {
        ("convnet", 32), ("convnet", 64), ("alexnet_tv", 64)}
    for point in report["batch"] + report["width"] + report["image"]:
        assert point["images_per_second"] > 0 and point["gflops_per_second"] > 0


@pytest.mark.skipif(not _fashion_mnist_present(), reason="Fashion-MNIST is not on this machine")
def test_scaling_trains_in_memory_and_streamed_datasets_and_a_study_on_one_and_two_jobs(tmp_path: Path) -> None:
    """Issue 35 item 4: dataset size (in memory, then a PNG folder streamed, with each process's peak RSS) and
    `study run --jobs 1/2`, real cnnlab processes at tiny sizes."""
    done = _run_script("scaling.py", ["--sections", "data,jobs", "--data-sizes", "1000", "--folder-sizes", "200",
                                      "--jobs-images", "256", "--out", str(tmp_path / "sc.json")], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "sc.json").read_text())
    memory, folder = report["data"]
    assert memory["images"] == 1000 and memory["path"].startswith("in memory") and memory["peak_rss_mb"] > 50
    assert folder["images"] == 200 and folder["path"].startswith("folder") and folder["images_per_second"] > 0
    assert [p["jobs"] for p in report["jobs"]] == [1, 2] and all(p["runs"] == 4 for p in report["jobs"])


def test_gpu_paths_is_one_command_that_says_when_there_is_no_gpu(tmp_path: Path) -> None:
    """Issue 35 item 6: the GPU paths' benchmark is ready to run in one command; on a machine without CUDA it
    says so and writes `skipped` (exit 0). On a GPU it runs tests/test_gpu.py and the real runs."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: run benchmarks/gpu_paths.py itself (minutes)")
    done = _run_script("gpu_paths.py", ["--out", str(tmp_path / "g.json")], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "no CUDA device: the GPU paths stay off" in done.stdout
    assert json.loads((tmp_path / "g.json").read_text()) == {"skipped": "no CUDA device"}
