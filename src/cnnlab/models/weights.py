"""`--weights FILE`: start a network from saved weights, ours or another library's.

Readers: our checkpoints and any safetensors file (safetensors, no pickle); torchvision/timm/Lightning
state dicts saved with torch.save, read with torch.load(weights_only=True), which refuses arbitrary
objects. Keys are matched by name after removing wrapper prefixes ('module.' from DataParallel,
'_orig_mod.' from torch.compile, 'model.' from our checkpoints); tensors whose shape differs (the 1000-way
ImageNet head against a 10-class model) are left at their fresh initialisation, i.e. the head is
re-initialised. What loaded, what is missing, unexpected or mismatched is reported and saved in run.json.
A weights name instead of a file (`imagenet`, `IMAGENET1K_V1`) stands for the model's published weights,
fetched once into torch's hub cache (models/pretrained.py).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import DataError
from .pretrained import fetch, is_weights_name, resolve

_PREFIXES = ("module.", "_orig_mod.", "model.")
_WRAPPERS = ("state_dict", "model_state_dict", "model", "net", "weights")


@dataclass
class WeightsReport:
    path: str
    loaded: int
    total: int
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # "key: file shape -> model shape"
    published: dict[str, Any] | None = None  # by name: which weights, their URL, the file's SHA-256

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        parts = [f"loaded {self.loaded}/{self.total} tensors from {self.path}"]
        if self.mismatched:
            parts.append(f"re-initialised (shape differs): {', '.join(m.split(':')[0] for m in self.mismatched)}")
        if self.missing:
            parts.append(f"{len(self.missing)} missing (kept fresh): {', '.join(self.missing[:4])}")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected (ignored): {', '.join(self.unexpected[:4])}")
        if self.published:  # trained on ImageNet-normalised input; the run normalises with its own data's
            parts.append(f"{self.published['name']} (trained on images normalised with ImageNet's mean/std: "
                         "data.normalize=imagenet feeds them the same statistics)")
        return "; ".join(parts)


def weights_file(source: str | Path) -> Path:
    """A weights file, or a run directory standing for its best checkpoint (else its last)."""
    source = Path(source)
    if source.is_dir():
        for name in ("best.safetensors", "last.safetensors"):
            if (source / "checkpoints" / name).is_file():
                return source / "checkpoints" / name
        raise DataError(f"'{source}' is a directory without checkpoints/best.safetensors or last.safetensors; "
                        "give a run directory or a weights file")
    if not source.is_file():
        raise DataError(f"weights file '{source}' does not exist")
    return source


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = weights_file(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
            if any(k.startswith("model.") for k in state):  # a cnnlab checkpoint: weights only
                state = {k: v for k, v in state.items() if k.startswith("model.")}
        else:
            with warnings.catch_warnings():  # a bare pickle draws torch's protocol warning; the error says it
                warnings.simplefilter("ignore", UserWarning)
                state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (torch and safetensors raise many types for a bad file)
        raise DataError(f"cannot read weights '{path}': {type(exc).__name__}: {str(exc)[:300]}") from None
    for key in _WRAPPERS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"'{path}' is not a state dict (a mapping of names to tensors)")
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise DataError(f"weights '{path}' hold NaN/Inf values (in '{name}'): a diverged run leaves such "
                            "weights; use an earlier checkpoint")
    return {_strip(k): v for k, v in state.items()}


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def load_weights(model: nn.Module, path: str | Path, model_name: str | None = None,
                 progress: bool = True) -> WeightsReport:
    """Weights from a file, or (given the model's registry name) the published weights `path` names."""
    published = None
    if model_name is not None and is_weights_name(str(path)):
        weights = resolve(model_name, str(path))
        path, digest = fetch(weights, progress)
        published = {**weights.describe(), "sha256": digest}
    state = read_state_dict(path)
    own = model.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    mismatched = [f"{k}: {tuple(v.shape)} -> {tuple(own[k].shape)}" for k, v in state.items()
                  if k in own and own[k].shape != v.shape]
    if not matched:
        examples = ", ".join(list(state)[:3])
        raise DataError(f"no tensor of '{path}' matches this model by name and shape (the file has e.g. "
                        f"{examples}); is it the same architecture?")
    model.load_state_dict(matched, strict=False)
    return WeightsReport(str(path), len(matched), len(own), missing=[k for k in own if k not in state],
                         unexpected=[k for k in state if k not in own], mismatched=mismatched, published=published)
