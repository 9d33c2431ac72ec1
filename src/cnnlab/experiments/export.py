"""`cnnlab export RUN`: a run's network as ONNX, TorchScript or an ExportedProgram, checked before it is kept.

The exported file is written to a temporary name, loaded back with its own runtime (onnxruntime for ONNX)
and run on the run's own test images, exactly as evaluation prepares them (`Run.batches`), at two batch
sizes other than the one it was traced with (the batch dimension is dynamic). The largest |logit
difference| against the PyTorch model is reported; above the tolerance the file is deleted and the export
refused, so a file that is there has passed. Beside it, `<file>.json` states what the network expects
(input size, channels, mean/std, how images were resized) and what it returns (class names): all another
program needs, and what `cnnlab predict FILE` reads; and where it came from (`source`: the run, its status,
the epoch of the exported weights, whether the run diverged). A diverged run is refused unless
`allow_diverged` (`--allow-diverged`): its kept checkpoint is the last good epoch's, rarely the network meant.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data import DataSpec
from ..errors import ConfigError, DataError
from ..io import atomic_write, atomic_write_json, check_output_file, is_inside
from ..log import get as get_logger
from ..models.export import SUFFIXES, Forward, check_format, load, write
from ..runs import Run, RunDir, checkpoint_path
from ..runs.versions import versions
from ..train.checkpoint import load_checkpoint
from ..train.status import Status

LOG = get_logger(__name__)

SCHEMA = "cnnlab.export/1"
TRACE_BATCH = 2  # the example batch the exporters trace with; checked at other sizes


@dataclass(frozen=True)
class ExportResult:
    path: Path
    description: Path  # the JSON beside it
    file_format: str
    max_difference: float  # largest |logit difference| against PyTorch over the checked images
    max_probability_difference: float  # the same in softmax probability (what `cnnlab predict` prints)
    tolerance: float
    batch_sizes: tuple[int, ...]


def export_run(run: Run, file_format: str, checkpoint: str = "auto", out: str | Path | None = None,
               tolerance: float = 1e-3, images: int = 16, allow_diverged: bool = False) -> ExportResult:
    """Export `run`'s network (the weights of `checkpoint`) to `out` (default RUN/export/model.<format>)."""
    check_format(file_format)
    if run.status == Status.DIVERGED and not allow_diverged:
        error = ConfigError(f"run '{run.path}' diverged ({run.record.reason}); its checkpoint holds the weights of "
                            f"epoch {run.record.epochs_completed}, the last good one. Export them anyway with "
                            "allow_diverged=True (the description says the run diverged), or train the run again")
        error.cli = str(error).replace("allow_diverged=True", "--allow-diverged")
        raise error
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ConfigError(f"--tolerance must be a finite number >= 0, got {tolerance}")
    if images < 1:
        raise ConfigError(f"--images must be at least 1, got {images}")
    target = Path(out) if out is not None else run.path / "export" / f"model{SUFFIXES[file_format]}"
    if not is_inside(target, run.path / "export"):  # RUN/export/ is the exports' own; elsewhere no run's record
        check_output_file(target, "--out")
    source = checkpoint_path(RunDir(run.path), checkpoint, run.config)
    model = run.model(str(source), "cpu")
    batch = _test_images(run, images)
    sizes = tuple(sorted({len(batch), min(len(batch), TRACE_BATCH + 1)}, reverse=True))
    example = batch[:TRACE_BATCH] if len(batch) >= TRACE_BATCH else batch[:1].expand(TRACE_BATCH, -1, -1, -1)
    measured: list[float] = []

    def write_checked(temporary: Path) -> None:
        write(model, example.contiguous(), file_format, temporary)
        measured.extend(max_difference(model, load(temporary, file_format), batch, sizes))
        if measured[0] > tolerance:
            raise DataError(f"the exported {file_format} model's logits differ from PyTorch's by up to "
                            f"{measured[0]:.3g} on {len(batch)} test images of '{run.path}' (tolerance "
                            f"{tolerance:g}): not written. A larger --tolerance accepts it; another --format "
                            "may match better")

    owned = _claim_if_inside(run, target)
    try:
        atomic_write(target, write_checked)
        description = Path(f"{target}.json")
        atomic_write_json(description, describe(run, file_format, target, source, {
            "split": "test", "images": len(batch), "batch_sizes": list(sizes), "traced_batch": TRACE_BATCH,
            "max_abs_logit_difference": measured[0], "max_abs_probability_difference": measured[1],
            "tolerance": tolerance}))
        if run.status == Status.DIVERGED:
            LOG.warning(f"warning: run '{run.path}' diverged: {target} holds the weights of its last good epoch")
    finally:
        if owned:
            owned.release()
    return ExportResult(target, description, file_format, measured[0], measured[1], tolerance, sizes)


def _claim_if_inside(run: Run, target: Path) -> RunDir | None:
    """Writing into the run directory takes its lock (RunBusy while another process trains it)."""
    if not is_inside(target, run.path):
        return None
    return RunDir(run.path).require_claim()


def _test_images(run: Run, count: int) -> torch.Tensor:
    """The first `count` test images of the run, normalised as its evaluation feeds them, on the CPU."""
    batches, _ = run.batches("test", device="cpu", batch_size=count)
    for images, _labels in batches:
        return images.float().contiguous()
    raise DataError(f"run '{run.path}' has no test images to check the export on")


def max_difference(model: torch.nn.Module, exported: Forward, batch: torch.Tensor,
                   sizes: tuple[int, ...]) -> tuple[float, float]:
    """The largest |logit difference| between `exported` and `model` over the first n images, for each n, and
    the largest |probability difference| (softmax of each). Both in fp32, the precision a run reports in
    (train/runtime.py, Runtime.scoring)."""
    worst = worst_probability = 0.0
    with torch.no_grad():
        for size in sizes:
            expected = model(batch[:size]).float()
            try:
                got = exported(batch[:size]).float()
            except Exception as exc:  # noqa: BLE001  (onnxruntime and torch raise their own types)
                raise DataError(f"the exported model fails on a batch of {size} images ({type(exc).__name__}: "
                                f"{str(exc)[:200]}): its batch dimension is not dynamic") from None
            if got.shape != expected.shape:
                raise DataError(f"the exported model returns shape {tuple(got.shape)} for {size} images, PyTorch "
                                f"{tuple(expected.shape)}: its batch dimension is not dynamic")
            worst = max(worst, (got - expected).abs().max().item())
            worst_probability = max(worst_probability,
                                    (got.softmax(dim=1) - expected.softmax(dim=1)).abs().max().item())
    finite = math.isfinite(worst) and math.isfinite(worst_probability)
    return (worst, worst_probability) if finite else (math.inf, math.inf)


def describe(run: Run, file_format: str, target: Path, source: Path, check: dict[str, Any]) -> dict[str, Any]:
    """What the exported network expects and returns, for `<file>.json`."""
    spec = run.spec
    size = spec.image_size
    if spec.eval_resize:
        resize = f"shorter side resized to {spec.eval_resize} px (antialiased), then the centre {size}x{size} crop"
    else:
        native = spec.native_size or size
        resize = f"shorter side resized to {native} px (antialiased), then the centre {native}x{native} crop"
        if native != size:
            resize += f", then fitted to {size}x{size} (data.resize={spec.resize})"
    return {
        "schema": SCHEMA, "format": file_format, "file": target.name,
        "input": {"name": "images", "shape": ["batch", spec.channels, size, size], "dtype": "float32",
                  "layout": "NCHW", "channels": spec.channels, "color": "grayscale" if spec.channels == 1 else "RGB",
                  "size": size, "resize": resize, "normalize": "(pixel / 255 - mean) / std, per channel",
                  "mean": list(spec.mean), "std": list(spec.std),
                  "max_pixels": run.config.data.max_pixels},  # the run's bound on an image before decoding
        "output": {"name": "logits", "shape": ["batch", spec.num_classes],
                   "meaning": "class scores; softmax gives probabilities, in the order of classes"},
        "classes": list(spec.classes),
        "source": {"run": str(run.path), "checkpoint": str(source), "model": run.config.model.name,
                   "run_id": run.record.run_id, "status": run.status.value, "diverged": run.status == Status.DIVERGED,
                   "reason": run.record.reason, "epoch": _epoch_of(source),
                   "epochs_completed": run.record.epochs_completed},
        "check": check, "versions": _versions(file_format), "data": spec.to_dict(),
    }


def _epoch_of(checkpoint: Path) -> int | None:
    """The epoch whose weights a checkpoint holds (its header says)."""
    _, meta = load_checkpoint(checkpoint)
    epoch = meta.get("epoch", (meta.get("state") or {}).get("epoch"))
    return epoch if isinstance(epoch, int) else None


def _versions(file_format: str) -> dict[str, str]:
    from importlib.metadata import version

    extra = {name: version(name) for name in ("onnx", "onnxruntime")} if file_format == "onnx" else {}
    return {**versions(), **extra}


@dataclass(frozen=True)
class Exported:
    """An exported network read back for prediction, with what its input must be."""

    forward: Forward
    spec: DataSpec
    max_pixels: int | None  # the run's data.max_pixels: larger image files are refused before decoding


def read_exported(path: str | Path) -> Exported:
    """An exported network and the data description beside it (`<file>.json`), for prediction."""
    path = Path(path)
    description = Path(f"{path}.json")
    if not description.is_file():
        raise DataError(f"'{path}' has no '{description.name}' beside it, which says how to prepare its input; "
                        "export the run with `cnnlab export RUN`, which writes both")
    try:
        info = json.loads(description.read_text())
        spec = DataSpec.from_dict(info["data"])
        file_format = info["format"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"'{description}' is not a cnnlab export description ({type(exc).__name__}: {exc}); "
                        "export the run again") from None
    if info.get("schema") != SCHEMA:
        raise DataError(f"'{description}' has schema {info.get('schema')!r}, not {SCHEMA}; export the run again")
    return Exported(load(path, file_format), spec, info["input"].get("max_pixels"))
