"""What a trained model expects as input (saved with the run), and the splits a run trains on."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .base import Split


@dataclass(frozen=True)
class DataSpec:
    """What a trained model expects as input; saved with the run."""

    dataset: str
    classes: tuple[str, ...]
    channels: int
    image_size: int
    mean: tuple[float, ...]  # per channel, in [0, 1] pixel units
    std: tuple[float, ...]
    sizes: dict[str, int]
    source: str
    native_size: int = 0  # the dataset's own image side, before fit_size (0: images of any size)
    resize: str = "auto"  # how native images were brought to image_size (fit_size's mode)
    eval_resize: int = 0  # folder datasets: shorter side resized to this, then the centre image_size crop
    # the training set's colour PCA in [0, 1] units (augment.pca_lighting): the standard deviation along each
    # principal axis, and the axes (one eigenvector per column); empty when not asked for
    pca_std: tuple[float, ...] = ()
    pca_vectors: tuple[tuple[float, ...], ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["classes"], data["mean"], data["std"] = list(self.classes), list(self.mean), list(self.std)
        data["pca_std"], data["pca_vectors"] = list(self.pca_std), [list(v) for v in self.pca_vectors]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataSpec:
        return cls(**{**data, "classes": tuple(data["classes"]), "mean": tuple(data["mean"]),
                      "std": tuple(data["std"]), "pca_std": tuple(data.get("pca_std") or ()),
                      "pca_vectors": tuple(tuple(v) for v in data.get("pca_vectors") or ())})


@dataclass(frozen=True)
class DataSplits:
    train: Split
    val: Split | None  # None when data.val_fraction is 0
    test: Split
    spec: DataSpec
    cache: Any = None  # the DecodedCache of a folder dataset with data.cache=disk
    bad_files: dict[str, str] = field(default_factory=dict)  # skipped with data.skip_bad
    notes: tuple[str, ...] = ()
    split_record: dict[str, Any] | None = None  # folder datasets: the file lists, for split.json
