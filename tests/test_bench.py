"""`cnnlab bench` (images per second with warm-up and spread, torchvision's twin in the same run) and
`train.compile=true` on the CPU (inductor): the compiled run computes the eager run's losses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cnnlab
from cnnlab.cli import main
from cnnlab.config import load_config
from cnnlab.experiments.bench import BenchCase, run_bench, torchvision_twin
from cnnlab.train import resolve_runtime


def test_bench_times_ours_against_torchvisions_twin_and_writes_json(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "resnet18", "--batch-size", "4", "--image-size", "32", "--compare", "torchvision",
                 "--steps", "2", "--repeats", "3", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    precision = resolve_runtime(load_config(None, ["device=cpu"])).precision  # train's auto, bench's auto

    assert f"resnet18 train, batch 4, synthetic data, {precision}, NHWC, CPU" in out and "torchvision resnet18" in out
    rows = json.loads(Path("runs/bench/resnet18_train_synthetic_b4.json").read_text())
    assert [r["implementation"] for r in rows] == ["cnnlab", "torchvision resnet18"]
    for row in rows:
        assert row["min"] <= row["images_per_second"] <= row["max"] and row["repeats"] == 3 and row["std"] >= 0
    assert rows[0]["ratio"] == pytest.approx(rows[0]["images_per_second"] / rows[1]["images_per_second"])


def test_bench_out_replaces_only_a_file_bench_wrote(tmp_path: Path, capsys, monkeypatch) -> None:
    """--out FILE: a new file, or one an earlier `cnnlab bench` wrote (its rows say so), as export-samples
    replaces only a folder holding its marker; someone else's .json (even one of bench's shape) is kept."""
    monkeypatch.chdir(tmp_path)
    quick = ["bench", "lenet5", "--steps", "1", "--repeats", "1", "--warmup", "0", "--out"]
    theirs = {"results.json": "[1, 2, 3]\n", "rows.json": '[{"implementation": "mine", "images_per_second": 1}]',
              "broken.json": "{not json"}
    for name, text in theirs.items():
        Path(name).write_text(text)
        assert main([*quick, name]) == 2
        err = capsys.readouterr().err
        assert f"--out '{name}' exists and is not a file cnnlab bench wrote" in err and "move that file away" in err
        assert Path(name).read_text() == text
    assert main([*quick, "mine.json"]) == 0 and main([*quick, "mine.json"]) == 0  # new, then its own: replaced
    rows = json.loads(Path("mine.json").read_text())
    assert rows[0]["written_by"] == "cnnlab bench" and rows[0]["model"] == "lenet5"


def test_bench_modes_and_data(tmp_path: Path) -> None:
    loader = run_bench(BenchCase("lenet5", 32, "cpu", data="digits", mode="loader"), steps=5, warmup=1, repeats=2)
    assert loader[0]["implementation"] == "cnnlab loader" and loader[0]["images_per_second"] > 0
    real = run_bench(BenchCase("lenet5", 32, "cpu", data="digits", mode="train"), steps=3, warmup=1, repeats=2)
    infer = run_bench(BenchCase("lenet5", 32, "cpu", mode="eval", channels_last=False), steps=3, warmup=1, repeats=2)
    assert real[0]["data"] == "digits" and infer[0]["channels_last"] is False and "ratio" not in infer[0]
    assert torchvision_twin("alexnet_tv") == "alexnet" and torchvision_twin("vgg11_bn") == "vgg11_bn"
    assert torchvision_twin("convnet") is None


@pytest.mark.parametrize("argv,message", [
    (["bench", "--mode", "loader"], "--mode loader times cnnlab's data loader: name a dataset"),
    (["bench", "convnet", "--compare", "torchvision"], "torchvision has no 'convnet'"),
    (["bench", "nosuchnet"], "nosuchnet"),
    (["bench", "--steps", "0"], "--steps, --repeats and --batch-size must be at least 1"),
    # a batch of 64 images of 10^6 x 10^6 pixels: ~700 TiB, beyond any address space (refused, never touched)
    (["bench", "convnet", "--image-size", "1000000", "--steps", "1", "--warmup", "1", "--repeats", "1"],
     "GiB): lower batch_size (--batch-size), the image size (data.image_size, --image-size)"),
])
def test_bench_mistakes(argv: list[str], message: str, capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_out_of_memory_is_told_as_the_sizes_to_lower() -> None:
    import torch

    from cnnlab.errors import out_of_memory

    gpu = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79 GiB")
    assert out_of_memory(gpu).startswith("out of memory (one allocation of 2.00 GiB): lower batch_size")
    cpu = RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                       "you tried to allocate 3221225472 bytes. Error code 12 (Cannot allocate memory)")
    assert out_of_memory(cpu).startswith("out of memory (one allocation of 3.0 GiB)")
    assert out_of_memory(MemoryError()).startswith("out of memory: lower batch_size")
    assert out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied")) is None  # a bug stays a bug


@pytest.mark.slow(first=True)
def test_compiled_training_computes_the_eager_losses(tmp_path: Path) -> None:
    """inductor on the CPU (gcc): the first step's loss (before any update) equals eager's to float rounding;
    later steps drift as fused kernels reorder float sums and each update carries the difference on. Measured
    over 6 steps on a 2-core CPU: convnet identical; resnet20 (batch norm, 20 layers) within 0.68%. Both
    models in one test, one after the other: the second reuses the precompiled C++ headers the first built
    (about 10 s of gcc), which two tests on two workers at once would each build."""
    for model, tolerance in (("convnet", 1e-4), ("resnet20", 2e-2)):
        args = ["data=digits", f"model={model}", "data.train_limit=96", "batch_size=32", "epochs=2", "augment=false",
                "train.precision=fp32"]  # the float rounding measured above is fp32's
        eager = cnnlab.train(None, args, runs_dir=tmp_path, name=f"{model}_eager", quiet=True)
        compiled = cnnlab.train(None, [*args, "train.compile=true"], runs_dir=tmp_path, name=f"{model}_compiled",
                                quiet=True)
        steps = [[float(line.split(",")[2]) for line in (tmp_path / name / "steps.csv").read_text().splitlines()[1:]]
                 for name in (f"{model}_eager", f"{model}_compiled")]
        assert len(steps[0]) == len(steps[1]) == 6, model
        assert steps[1][0] == pytest.approx(steps[0][0], rel=1e-6), model
        assert steps[1] == pytest.approx(steps[0], rel=tolerance), model
        assert compiled.test["acc"] == pytest.approx(eager.test["acc"], abs=2 / 359), model


def test_flops_per_image_and_achieved_gflops_by_hand(tmp_path: Path, capsys, monkeypatch) -> None:
    """A 12 -> 5 linear layer without bias: 60 multiply-adds = 120 FLOPs forward; training adds its weights'
    gradient (120) but not its input's (the images need none): 240 per training image. At a million img/s
    training: 0.24 GFLOP/s; on a core of 16 FMA lanes at 1,000 MHz (16 x 2 x 1e9 = 32 GFLOP/s fp32 peak),
    0.75% of it; in bf16 with AVX512_BF16 (2x: 64 GFLOP/s) 0.375%. A machine that reports no maximum clock
    (a VM) is measured against the clock /proc/cpuinfo reports, and says so."""
    from torch import nn

    from cnnlab.experiments.bench import achieved, flops_per_image
    from cnnlab.train.cpu import CpuPeak

    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5, bias=False))
    assert flops_per_image(model, (3, 2, 2), "eval") == 120
    assert flops_per_image(model, (3, 2, 2), "train") == 240
    assert flops_per_image(model, (3, 2, 2), "loader") == 0
    core = CpuPeak("test CPU", cores=1, lanes=16, max_mhz=1000.0, current_mhz=None, bf16_factor=2)
    row = achieved(1e6, 240, core)
    assert row["gflops_per_second"] == pytest.approx(0.24) and row["peak_gflops_per_second"] == pytest.approx(32.0)
    assert row["fraction_of_peak"] == pytest.approx(0.24 / 32) and row["peak_clock"] == "max"
    bf16 = achieved(1e6, 240, core, "bf16")
    assert bf16["peak_gflops_per_second"] == pytest.approx(64.0) and bf16["fraction_of_peak"] == pytest.approx(0.24 / 64)
    assert bf16["peak"].startswith("peak 64 GFLOP/s bf16 (1 core x 16 fp32 FMA lanes x 2 x 2 (bf16) x 1,000 MHz")
    unknown = achieved(1000.0, 240, CpuPeak("VM", cores=1, lanes=16, max_mhz=None, current_mhz=None))
    assert unknown["peak_gflops_per_second"] is None and "fraction_of_peak" not in unknown
    assert unknown["peak"].startswith("peak unknown")
    vm = achieved(1e6, 240, CpuPeak("VM", cores=1, lanes=16, max_mhz=None, current_mhz=1000.0, bf16_factor=2), "bf16")
    assert vm["peak_gflops_per_second"] is None and vm["peak_clock"] == "reported"
    assert vm["fraction_of_peak"] == pytest.approx(0.24 / 64) and vm["reference_gflops_per_second"] == pytest.approx(64)
    assert achieved(1000.0, 0, None) == {}  # the loader alone computes nothing

    # convnet for Fashion-MNIST (1x32x32): 5.66 MFLOP forward (cnnlab summary); training 3 x that less conv1's
    # 0.94 M (its input needs no gradient): 16.03 M
    convnet = cnnlab.experiments.bench._ours(BenchCase("convnet"), 1, 32, 10, False)
    assert flops_per_image(convnet, (1, 32, 32), "train") == 3 * 5_657_344 - 940_800 == 16_031_232
    assert flops_per_image(convnet, (1, 32, 32), "eval") == 5_657_344

    monkeypatch.chdir(tmp_path)
    assert main(["bench", "lenet5", "--steps", "2", "--repeats", "1", "--warmup", "1", "--out", "b.json"]) == 0
    out = capsys.readouterr().out
    first = json.loads(Path("b.json").read_text())[0]
    assert first["gflops_per_second"] == pytest.approx(first["images_per_second"] * first["flops_per_image"] / 1e9)
    assert "GFLOP/s" in out and "FLOPs per training image (forward + backward, no gradient of the images); CPU" in out


def test_bench_auto_means_what_train_auto_means(tmp_path: Path, monkeypatch) -> None:
    """Issue 35: one definition of auto. On a CPU with native bf16 (AVX512_BF16 forced here, as on the docs'
    AMD EPYC) `cnnlab train` trains in bf16, while bench's `--precision auto` used to mean fp32 on any CPU;
    now both resolve through train/runtime.py's choose_runtime, and a real run's run.json and bench's JSON
    say the same precision, memory format, threads and allocator."""
    from cnnlab.train import cpu

    read = cpu.cpu_flags
    monkeypatch.setattr(cpu, "cpu_flags", lambda text=None: read("flags : avx2 fma avx512f avx512_bf16"))
    monkeypatch.setattr(cpu, "mkldnn_bf16_supported", lambda: True)
    run = cnnlab.train(None, ["data=digits", "data.train_limit=64", "epochs=1", "batch_size=16", "device=cpu"],
                       runs_dir=tmp_path, name="auto", quiet=True)
    rows = run_bench(BenchCase("convnet", 16, "cpu"), steps=1, warmup=0, repeats=1)
    trained = json.loads((run.run_dir / "run.json").read_text())["speed"]
    benched = rows[0]["speed"]
    assert rows[0]["precision"] == trained["precision"] == benched["precision"] == "bf16"
    for key in ("precision", "channels_last", "threads", "allocator"):
        assert trained[key] == benched[key], key
    assert trained["compile"]["requested"] == benched["compile"]["requested"] == "auto"
    assert trained["compile"]["used"] is benched["compile"]["used"] is False  # both far too short to compile
