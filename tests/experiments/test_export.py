"""`cnnlab export RUN --format onnx|torchscript|exported-program` on a small trained LeNet-5 (real CLI
processes): each file is checked against PyTorch on the run's test images, states its preprocessing in the
JSON beside it, runs with its own runtime at batch sizes it was not traced with, and `cnnlab predict FILE`
gives the run's own predictions; an export that does not match is refused, exit 2, nothing left behind."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.errors import ConfigError, DataError
from tests.helpers import FAST

ROOT = Path(__file__).resolve().parents[2]
# a real `cnnlab` process whose TorchScript writer exports a copy of the network with one weight changed: what
# a wrong exporter would write; the check must catch it
BROKEN = ("import copy, torch, cnnlab.models.export as export\n"
          "def broken(model, example, path):\n"
          "    model = copy.deepcopy(model)\n"
          "    with torch.no_grad():\n"
          "        next(model.parameters()).add_(0.05)\n"
          "    torch.jit.save(torch.jit.trace(model, example), str(path))\n"
          "export._WRITERS['torchscript'] = broken\n"
          "from cnnlab.cli import run\nrun()\n")


def cnnlab_process(*args: str, cwd: Path, code: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "cnnlab"]
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LeNet-5 trained two epochs on 256 digits, and three digit images as PNG files beside it."""
    folder = tmp_path_factory.mktemp("export")
    # FAST pins fp32 (tests/test_scoring_precision.py trains the bf16 case: a run scores and predicts in fp32 too)
    result = cnnlab_process("train", "--name", "tiny", "--quiet", *FAST, cwd=folder)
    assert result.returncode == 0, result.stderr
    from sklearn.datasets import load_digits

    digits = load_digits()
    for index in (0, 1, 2):
        Image.fromarray((digits.images[index] * 16).clip(0, 255).astype(np.uint8)).save(folder / f"digit{index}.png")
    from_run = cnnlab_process("predict", "runs/tiny", *pictures(folder), cwd=folder)  # what each export must print
    assert from_run.returncode == 0, from_run.stderr
    (folder / "predicted_by_run.txt").write_text(from_run.stdout)
    return folder / "runs" / "tiny"


def pictures(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.glob("digit*.png"))


def first_test_images(run_dir: Path) -> tuple[torch.Tensor, torch.nn.Module]:
    run = cnnlab.load_run(run_dir)
    batches, _ = run.batches("test", device="cpu", batch_size=64)
    return next(iter(batches))[0], run.model("auto")


def run_exported(path: Path, file_format: str, images: torch.Tensor) -> torch.Tensor:
    """The exported file run by its own runtime, independently of cnnlab's loader."""
    if file_format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(None, {"images": images.numpy()})[0])
    if file_format == "torchscript":
        with warnings.catch_warnings():  # torch.jit.load's deprecation notice
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path))(images)
    with open(path, "rb") as handle:
        return torch.export.load(handle).module()(images)


@pytest.mark.slow
@pytest.mark.parametrize("file_format", ["onnx", "torchscript", "exported-program"])
def test_export_is_checked_describes_its_input_and_predicts(trained: Path, file_format: str) -> None:
    folder = trained.parent.parent
    out = [] if file_format == "onnx" else ["--out", str(folder / f"lenet.{file_format}")]  # onnx: the default
    result = cnnlab_process("export", str(trained), "--format", file_format, *out, cwd=folder)
    assert result.returncode == 0, result.stderr
    path = trained / "export" / "model.onnx" if file_format == "onnx" else folder / f"lenet.{file_format}"
    difference = float(re.search(r"max \|Δ logit\| (\S+), \|Δ probability\| \S+ against PyTorch", result.stdout).group(1))
    assert difference <= 1e-3 and f"wrote {path} ({file_format}, dynamic batch)" in result.stdout

    described = json.loads(Path(f"{path}.json").read_text())
    data = json.loads((trained / "run.json").read_text())["data"]
    assert described["format"] == file_format and described["classes"] == data["classes"]
    assert described["input"]["mean"] == data["mean"] and described["input"]["std"] == data["std"]
    assert described["input"]["max_pixels"] == cnnlab.load_run(trained).config.data.max_pixels
    assert described["input"]["shape"] == ["batch", 1, 32, 32] and described["output"]["shape"] == ["batch", 10]
    assert described["check"]["batch_sizes"] == [16, 3] and f"{described['check']['max_abs_logit_difference']:.3g}" == f"{difference:.3g}"

    images, model = first_test_images(trained)  # batch sizes neither traced (2) nor checked (16, 3): dynamic
    for size in (5, 64):
        with torch.no_grad():
            assert torch.allclose(run_exported(path, file_format, images[:size]), model(images[:size]), atol=1e-4)

    from_file = cnnlab_process("predict", str(path), *pictures(folder), cwd=folder)
    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout == (folder / "predicted_by_run.txt").read_text() and from_file.stdout.count("%") == 15
    exported = cnnlab.predict(path, pictures(folder), k=10)
    reference = cnnlab.predict(trained, pictures(folder), k=10)
    for mine, theirs in zip(exported, reference):
        assert [label for label, _ in mine["top"]] == [label for label, _ in theirs["top"]]
        assert np.allclose([p for _, p in mine["top"]], [p for _, p in theirs["top"]], atol=1e-5)


@pytest.mark.slow
def test_an_export_that_differs_is_refused_and_not_left_behind(trained: Path) -> None:
    folder = trained.parent.parent
    target = folder / "refused" / "model.pt"
    result = cnnlab_process("export", str(trained), "--format", "torchscript", "--out", str(target), cwd=folder,
                            code=BROKEN)
    assert result.returncode == 2, result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "logits differ from PyTorch's by up to" in error[0] and "not written" in error[0]
    assert "Traceback" not in result.stderr
    assert not target.exists() and not Path(f"{target}.json").exists() and not list(target.parent.iterdir())
    # the same export, unbroken, is kept: the refusal came from the difference, not the format
    kept = cnnlab_process("export", str(trained), "--format", "torchscript", "--out", str(target), cwd=folder)
    assert kept.returncode == 0, kept.stderr
    assert target.is_file() and Path(f"{target}.json").is_file()


def test_predict_on_a_file_without_its_description_and_bad_requests(trained: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    lonely = tmp_path / "model.pt2"
    lonely.write_bytes(b"")
    with pytest.raises(DataError, match="has no 'model.pt2.json' beside it"):
        cnnlab.predict(lonely, pictures(trained.parent.parent))
    record = (trained / "run.json").read_bytes()
    with pytest.raises(ConfigError, match="--out '.*run.json' is inside the run directory"):
        cnnlab.export(trained, "torchscript", out=trained / "run.json")
    assert (trained / "run.json").read_bytes() == record
    with pytest.raises(ConfigError, match="--tolerance must be a finite number >= 0"):
        cnnlab.export(trained, "torchscript", tolerance=-1.0, out=tmp_path / "x.pt")
    with pytest.raises(ConfigError, match="--format must be one of onnx, torchscript, exported-program"):
        cnnlab.export(trained, "tflite", out=tmp_path / "x.tflite")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as where the extra is not installed
    with pytest.raises(ConfigError, match=r"needs onnx, onnxscript and onnxruntime .*pip install 'cnnlab\[export\]'"):
        cnnlab.export(trained, "onnx", out=tmp_path / "x.onnx")
    assert not list(tmp_path.glob("x*"))
