"""`cnnlab export`: a run's network as ONNX, TorchScript or an ExportedProgram, checked against PyTorch."""

from __future__ import annotations

import argparse
from typing import Any

from .. import api
from ..errors import command_line
from .common import add_run_dir, command

FORMATS = ("onnx", "torchscript", "exported-program")


def register(sub: Any) -> None:
    export = command(sub, "export", _export, "write a run's network as ONNX, TorchScript or an ExportedProgram, "
                     "checked against PyTorch on the run's test images, with its preprocessing in FILE.json")
    add_run_dir(export)
    export.add_argument("--format", required=True, choices=FORMATS, help="the file format")
    export.add_argument("--checkpoint", default="auto",
                        help="best, last, previous, a checkpoint file, or auto (default: the weights of the run's "
                             "test score)")
    export.add_argument("--out", metavar="PATH",
                        help="the file to write (default: RUN_DIR/export/model.onnx, .torchscript.pt or .pt2)")
    export.add_argument("--tolerance", type=float, default=1e-3,
                        help="refuse the export when a logit differs from PyTorch's by more (default 1e-3)")
    export.add_argument("--allow-diverged", action="store_true",
                        help="export a run that diverged (its last good epoch's weights; refused without this)")
    export.add_argument("--images", type=int, default=16,
                        help="how many of the run's test images the check runs on (default 16)")


def _export(args: argparse.Namespace) -> int:
    result = api.export(args.run_dir, args.format, checkpoint=args.checkpoint, out=args.out,
                        tolerance=args.tolerance, images=args.images, allow_diverged=args.allow_diverged)
    sizes = " and ".join(str(size) for size in result.batch_sizes)
    print(f"max |Δ logit| {result.max_difference:.3g}, |Δ probability| {result.max_probability_difference:.2g} "
          f"against PyTorch on the run's test images (batch sizes "
          f"{sizes}; tolerance {result.tolerance:g})")
    print(f"wrote {result.path} ({result.file_format}, dynamic batch) and {result.description}")
    print(f"predict with: {command_line('predict', result.path)} IMAGE...")
    return 0
