"""`cnnlab ensemble RUN_DIR...`: combine several trained networks on one split (Krizhevsky et al. 2012,
section 6: averaging the predictions of several CNNs lowered the top-1 error from 40.7% to 38.1%).

Combiners: `softmax` averages the class probabilities (the paper's), `logits` averages the raw scores,
`vote` counts each member's top-1 (ties broken by the averaged probabilities; top-5 from the votes then
the probabilities). `tta` adds test-time augmentation to every member (evaluate/tta.py: flip, center, 10crop).
Members must have been scored on the same data: same dataset, classes and split (checked).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..evaluate.outputs import collect_outputs, topk_accuracy

COMBINERS = ("softmax", "logits", "vote")


@dataclass
class EnsembleResult:
    members: list[dict[str, Any]]  # run, acc, top5
    ensemble: dict[str, float]
    combine: str
    split: str
    tta: str

    def to_dict(self) -> dict[str, Any]:
        return {"members": self.members, "ensemble": self.ensemble, "combine": self.combine, "split": self.split,
                "tta": self.tta, "flip": self.tta == "flip"}


def combine(outputs: Sequence[dict[str, torch.Tensor]], how: str) -> torch.Tensor:
    """Class scores of the ensemble (a pure function of the members' outputs)."""
    if how not in COMBINERS:
        raise ConfigError(f"--combine must be one of {', '.join(COMBINERS)}, not '{how}'")
    probs = torch.stack([o["probs"] for o in outputs]).mean(0)
    if how == "softmax":
        return probs
    if how == "logits":
        return torch.stack([o["logits"] for o in outputs]).mean(0)
    votes = torch.zeros_like(probs)
    for o in outputs:
        votes += torch.nn.functional.one_hot(o["probs"].argmax(1), probs.shape[1]).to(votes.dtype)
    return votes + probs / (len(outputs) + 1)  # probabilities (< 1) only break ties between vote counts


def run_ensemble(run_dirs: Sequence[str | Path], split: str = "test", how: str = "softmax", tta: str = "none",
                 device: str | None = None) -> EnsembleResult:
    from ..runs import load_run

    if len(run_dirs) < 2:
        raise ConfigError("an ensemble needs at least two run directories")
    outputs, members = [], []
    reference: tuple[tuple[str, tuple[str, ...]], torch.Tensor, str] | None = None
    for path in run_dirs:
        run = load_run(path)
        batches, runtime = run.batches(split, device, enlarged=tta in ("center", "10crop"))
        out = collect_outputs(run.model("auto", runtime.device), batches, runtime.scoring, tta=tta,
                              size=run.spec.image_size)
        identity = (run.spec.dataset, tuple(run.spec.classes))
        if reference is None:
            reference = (identity, out["labels"], str(path))
        elif identity != reference[0] or not torch.equal(out["labels"], reference[1]):
            raise ConfigError(f"'{path}' was not scored on the same {split} data as '{reference[2]}' (dataset, "
                              "classes or split differ); ensemble runs of one dataset and split")
        outputs.append(out)
        members.append({"run": str(path), **topk_accuracy(out["probs"], out["labels"])})
    assert reference is not None  # two members at least
    scores = combine(outputs, how)
    return EnsembleResult(members, topk_accuracy(scores, reference[1]), how, split, tta)


def write_result(result: EnsembleResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(), indent=1) + "\n")
