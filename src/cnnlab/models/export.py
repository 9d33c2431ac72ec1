"""A trained network as a file other programs run: ONNX, TorchScript or a torch.export ExportedProgram.

Each takes normalised float32 images [N, C, H, W] with the batch dimension N dynamic and returns logits.
- onnx: torch.onnx.export's dynamo exporter (torch.export underneath, translated by onnxscript), run back
  with onnxruntime on the CPU (the optional extra `pip install 'cnnlab[export]'`);
- torchscript: torch.jit.trace; deprecated by PyTorch in favour of torch.export but still what C++
  libtorch and older serving stacks load. A trace records the shapes it saw as constants where the model
  computes with them, so the caller checks it at a batch size other than the traced one;
- exported-program: torch.export.export with a symbolic batch dimension, saved with torch.export.save (.pt2).
`load` reads any of them back as a callable from a float tensor to a float tensor, for the check against
PyTorch and for `cnnlab predict FILE`.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError, DataError

SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "exported-program": ".pt2"}
Forward = Callable[[torch.Tensor], torch.Tensor]


def check_format(name: str) -> str:
    if name not in SUFFIXES:
        raise ConfigError(f"--format must be one of {', '.join(SUFFIXES)}, not '{name}'")
    if name == "onnx":
        _require_onnx()
    return name


def _require_onnx() -> None:
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401  (torch.onnx's exporter)
    except ImportError as exc:
        raise ConfigError(f"--format onnx needs onnx, onnxscript and onnxruntime ({exc.name} is missing), an "
                          "optional extra: pip install 'cnnlab[export]'") from None


def write(model: nn.Module, example: torch.Tensor, file_format: str, path: Path) -> None:
    """`model` (eval mode, on the CPU) exported to `path`, traced on `example` with the batch dimension
    dynamic. A model the exporter cannot handle is a DataError naming the format and the reason."""
    model = model.eval()
    try:
        with warnings.catch_warnings():  # torch's deprecation and tracer notes are not the user's to act on
            warnings.simplefilter("ignore")
            _WRITERS[file_format](model, example, path)
    except (RuntimeError, TypeError, ValueError, NotImplementedError, AssertionError) as exc:
        raise DataError(f"cannot export {type(model).__name__} as {file_format}: {type(exc).__name__}: "
                        f"{str(exc).strip().splitlines()[0][:300]}; try another --format") from None


def _batch_dim() -> dict[int, torch.export.Dim]:
    return {0: torch.export.Dim("batch", min=1)}


def _write_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its progress steps
        torch.onnx.export(model, (example,), str(path), dynamo=True, dynamic_shapes=(_batch_dim(),),
                          input_names=["images"], output_names=["logits"], external_data=False, verbose=False)


def _write_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    with torch.no_grad():
        traced = torch.jit.trace(model, example, check_trace=False)
    torch.jit.save(traced, str(path))


def _write_exported_program(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    program = torch.export.export(model, (example,), dynamic_shapes=(_batch_dim(),))
    with open(path, "wb") as handle:  # a file object: torch.export warns about any name not ending in .pt2
        torch.export.save(program, handle)


_WRITERS = {"onnx": _write_onnx, "torchscript": _write_torchscript, "exported-program": _write_exported_program}


def load(path: Path, file_format: str) -> Forward:
    """The exported network at `path` as a function from float32 images to logits, on the CPU."""
    check_format(file_format)
    try:
        if file_format == "onnx":
            import onnxruntime

            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            name = session.get_inputs()[0].name
            return lambda images: torch.from_numpy(session.run(None, {name: images.float().cpu().numpy()})[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if file_format == "torchscript":
                module = torch.jit.load(str(path), map_location="cpu")
            else:
                with open(path, "rb") as handle:
                    module = torch.export.load(handle).module()
    except Exception as exc:  # noqa: BLE001  (each runtime raises its own types for a damaged file)
        raise DataError(f"cannot load '{path}' as {file_format}: {type(exc).__name__}: {str(exc)[:300]}; export it "
                        "again with cnnlab export") from None

    def forward(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(images.float().cpu())

    return forward
