"""A run's per-image results: `RUN/predictions.safetensors`, so two runs can be compared image by image.

For each scored split (val, test) it keeps the predicted class and the true label of every image, in the
split's order, from the weights that produced the run's reported score. Correctness is `predicted == label`.
Two runs are comparable on a split when their label vectors are equal (same images, same order: the split
seed fixes both), which the reader checks rather than trusts. Size: 2 bytes per image and split for up to
32,767 classes (ImageNet's 50,000 validation images: 200 KB), written atomically; a file larger than
MAX_BYTES is refused before it is read.

Bound to its run: run.json records the file as written (`predictions`: its sha256, and per split the image
count, the accuracy it implies and the class count), and `read_predictions` checks the file against that record
by default. Another run's file copied in, or results edited afterwards (100 correct predictions set to class 99),
is a DataError naming the file and what disagrees, never a verdict computed from it. A run from before the
record was kept (no `predictions` in run.json) is read as before, its class range and implied test accuracy
still checked against what run.json says of the data and the test score.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from ..errors import DataError
from ..io import atomic_write
from .record import RunRecord

FILE_NAME = "predictions.safetensors"
FORMAT = "cnnlab.predictions/1"
MAX_BYTES = 256 << 20  # 32M images x 2 splits x 2 vectors x 2 bytes: far beyond any split cnnlab reads
FIX = ("restore the run's own file, or delete it (the run then has no per-image results; training it again with "
       "--overwrite writes them)")


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


def write_predictions(run_path: Path, splits: dict[str, dict[str, torch.Tensor]],
                      num_classes: int = 0) -> dict[str, Any]:
    """`splits`: {'test': {'predicted': ..., 'label': ...}, 'val': ...} as `evaluate_model(per_image=True)` gives.
    Returns what run.json records of the file (`RunRecord.predictions`): its sha256, and per split the image
    count, the accuracy the file implies and `num_classes` (every class in it lies below)."""
    tensors = {}
    for split, result in splits.items():
        tensors[f"{split}.predicted"] = _compact(result["predicted"])
        tensors[f"{split}.label"] = _compact(result["label"])
    payload = save_tensors(tensors, metadata={"format": FORMAT, "splits": json.dumps(sorted(splits))})
    path = Path(run_path) / FILE_NAME
    atomic_write(path, lambda tmp: tmp.write_bytes(payload))
    facts = {}
    for split, result in splits.items():
        count = int(result["label"].numel())
        correct = int((result["predicted"] == result["label"]).sum()) if count else 0
        facts[split] = {"count": count, "acc": correct / count if count else None, "classes": num_classes}
    return {"sha256": hashlib.sha256(payload).hexdigest(), "splits": facts}


def read_predictions(run_path: Path, record: RunRecord | None = None,
                     verify: bool = True) -> dict[str, SplitPredictions]:
    """The per-image results of a run ({} when it has none: a run from before they were kept), checked against
    the run's record (`record`, or RUN/run.json when there is one) unless `verify` is False: a file that is not
    the one the run wrote is a DataError naming it."""
    path = Path(run_path) / FILE_NAME
    if not path.is_file():
        return {}
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise DataError(f"'{path}' is {size:,} bytes, more than the {MAX_BYTES:,} a predictions file can hold; "
                        f"it is not one cnnlab wrote: {FIX}")
    payload = path.read_bytes()
    try:
        tensors = load_tensors(payload)
    except (SafetensorError, ValueError) as exc:
        raise DataError(f"'{path}' is not a readable predictions file ({exc}); {FIX}") from None
    out = {}
    for key in tensors:
        split, _, field = key.partition(".")
        if field == "predicted" and f"{split}.label" in tensors:
            predicted, label = tensors[key].numpy().astype(np.int64), tensors[f"{split}.label"].numpy().astype(np.int64)
            if predicted.shape != label.shape or predicted.ndim != 1:
                raise DataError(f"'{path}': the {split} predictions and labels differ in shape; {FIX}")
            out[split] = SplitPredictions(predicted, label)
    if verify:
        record = record if record is not None else RunRecord.load(Path(run_path) / "run.json")
        if record is not None:
            check_against_record(path, payload, out, record)
    return out


def check_against_record(path: Path, payload: bytes, splits: dict[str, SplitPredictions], record: RunRecord) -> None:
    """A DataError when the per-image results in `path` (its bytes `payload`, read as `splits`) are not those
    its run recorded: a class outside the run's classes, another image count, another implied accuracy, or
    (runs that recorded it) another digest. The most telling disagreement is the one named."""
    kept = record.predictions or {}
    recorded: dict[str, Any] = kept["splits"] if isinstance(kept.get("splits"), dict) else {}
    test = record.test or {}
    names = (record.data or {}).get("classes")
    classes = len(names) if isinstance(names, list) else None
    fix = f"it is not the file this run wrote (copied from another run, or changed since): {FIX}"
    for split, result in sorted(splits.items(), key=lambda item: item[0] != "test"):  # test first, then val
        facts: dict[str, Any] = recorded[split] if isinstance(recorded.get(split), dict) else {}
        limit = facts.get("classes") or classes
        if isinstance(limit, int) and limit > 0 and len(result.predicted) and (
                int(result.predicted.max()) >= limit or int(result.predicted.min()) < 0):
            bad = int(result.predicted.max()) if int(result.predicted.max()) >= limit else int(result.predicted.min())
            raise DataError(f"'{path}': a {split} prediction is class {bad}, outside this run's {limit} classes; {fix}")
        count = facts.get("count", test.get("count") if split == "test" else None)
        if isinstance(count, int) and count != len(result.label):
            raise DataError(f"'{path}' holds {len(result.label):,} {split} images, its run recorded {count:,}; {fix}")
        acc = facts.get("acc", test.get("acc") if split == "test" else None)
        implied = float(result.correct.mean()) if len(result.label) else None
        if isinstance(acc, (int, float)) and implied is not None and abs(implied - acc) > 0.5 / len(result.label):
            raise DataError(f"'{path}' implies a {split} accuracy of {implied:.2%}, its run recorded {acc:.2%}; {fix}")
    missing = sorted(set(recorded) - set(splits))
    if missing:
        raise DataError(f"'{path}' has no {missing[0]} results, which its run recorded; {fix}")
    digest = kept.get("sha256")
    if isinstance(digest, str) and digest != hashlib.sha256(payload).hexdigest():
        raise DataError(f"'{path}' is not byte for byte the file its run recorded (sha256 differs); {fix}")
