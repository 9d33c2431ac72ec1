"""A run's per-image results: `RUN/predictions.safetensors`, so two runs can be compared image by image.

For each scored split (val, test) it keeps the predicted class and the true label of every image, in the
split's order, from the weights that produced the run's reported score. Correctness is `predicted == label`.
Two runs are comparable on a split when their label vectors are equal (same images, same order: the split
seed fixes both), which the reader checks rather than trusts. Size: 2 bytes per image and split for up to
32,767 classes (ImageNet's 50,000 validation images: 200 KB), written atomically; a file larger than
MAX_BYTES is refused before it is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from ..errors import DataError
from ..io import atomic_write

FILE_NAME = "predictions.safetensors"
FORMAT = "cnnlab.predictions/1"
MAX_BYTES = 256 << 20  # 32M images x 2 splits x 2 vectors x 2 bytes: far beyond any split cnnlab reads


@dataclass(frozen=True)
class SplitPredictions:
    predicted: np.ndarray
    label: np.ndarray

    @property
    def correct(self) -> np.ndarray:
        return np.asarray(self.predicted == self.label)

    def same_images(self, other: SplitPredictions) -> bool:
        """Whether `other` was scored on the same images in the same order (as far as the labels can tell)."""
        return self.label.shape == other.label.shape and bool(np.array_equal(self.label, other.label))


def _compact(values: torch.Tensor) -> torch.Tensor:
    small = values.numel() == 0 or int(values.max()) < 32768
    return values.to(torch.int16 if small else torch.int32).contiguous()


def write_predictions(run_path: Path, splits: dict[str, dict[str, torch.Tensor]]) -> Path:
    """`splits`: {'test': {'predicted': ..., 'label': ...}, 'val': ...} as `evaluate_model(per_image=True)` gives."""
    tensors = {}
    for split, result in splits.items():
        tensors[f"{split}.predicted"] = _compact(result["predicted"])
        tensors[f"{split}.label"] = _compact(result["label"])
    payload = save_tensors(tensors, metadata={"format": FORMAT, "splits": json.dumps(sorted(splits))})
    path = Path(run_path) / FILE_NAME
    atomic_write(path, lambda tmp: tmp.write_bytes(payload))
    return path


def read_predictions(run_path: Path) -> dict[str, SplitPredictions]:
    """The per-image results of a run ({} when it has none: a run from before they were kept)."""
    path = Path(run_path) / FILE_NAME
    if not path.is_file():
        return {}
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise DataError(f"'{path}' is {size:,} bytes, more than the {MAX_BYTES:,} a predictions file can hold; "
                        "it is not one cnnlab wrote: delete it (the run's other files are unaffected)")
    try:
        tensors = load_tensors(path.read_bytes())
    except (SafetensorError, ValueError) as exc:
        raise DataError(f"'{path}' is not a readable predictions file ({exc}); delete it and evaluate the run "
                        "again (cnnlab eval RUN)") from None
    out = {}
    for key in tensors:
        split, _, field = key.partition(".")
        if field == "predicted" and f"{split}.label" in tensors:
            predicted, label = tensors[key].numpy().astype(np.int64), tensors[f"{split}.label"].numpy().astype(np.int64)
            if predicted.shape != label.shape or predicted.ndim != 1:
                raise DataError(f"'{path}': the {split} predictions and labels differ in shape; delete the file")
            out[split] = SplitPredictions(predicted, label)
    return out
