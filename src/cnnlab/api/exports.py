"""Export a run's network to a file other programs run (ONNX, TorchScript, ExportedProgram), checked."""

from __future__ import annotations

from pathlib import Path

from ..experiments.export import ExportResult, export_run
from ..runs import load_run


def export(run_dir: str | Path, file_format: str, checkpoint: str = "auto", out: str | Path | None = None,
           tolerance: float = 1e-3, images: int = 16, allow_diverged: bool = False) -> ExportResult:
    """Write the network of `run_dir` (the weights of `checkpoint`) as `file_format` ('onnx', 'torchscript',
    'exported-program') to `out` (default RUN/export/model.<suffix>) with `<out>.json` beside it, after
    checking it against PyTorch on `images` of the run's test images; refused (DataError, nothing written)
    when a logit differs by more than `tolerance`. `cnnlab.predict(out, images)` runs the exported file. A run
    that diverged is refused (ConfigError) unless `allow_diverged`; `<out>.json` says where the weights came
    from: the run, its status, the checkpoint's epoch and whether the run diverged."""
    return export_run(load_run(run_dir), file_format, checkpoint, out, tolerance, images, allow_diverged)
