"""Top-1 is argmax (the first of tied maxima), as every other library counts it; top-5 always includes it."""

import torch

from cnnlab.evaluate.metrics import evaluate_model
from cnnlab.evaluate.outputs import topk_accuracy


class Fixed(torch.nn.Module):
    """A 'model' that returns given logits batch by batch."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.logits, self.position = logits, 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.logits[self.position : self.position + images.shape[0]]
        self.position += images.shape[0]
        return out


def tied_logits(count: int = 4000, classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """bf16-like logits: few distinct values, so most rows have ties for the maximum."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randint(0, 3, (count, classes), generator=generator).float()
    labels = torch.randint(0, classes, (count,), generator=generator)
    return logits, labels


def test_top1_is_argmax_under_ties() -> None:
    logits, labels = tied_logits()
    assert (logits == logits.max(1, keepdim=True).values).sum(1).gt(1).float().mean() > 0.5  # mostly ties
    expected = int((logits.argmax(1) == labels).sum()) / len(labels)
    batches = [(torch.zeros(500, 1), labels[i : i + 500]) for i in range(0, len(labels), 500)]
    result = evaluate_model(Fixed(logits), batches, 10, confusion=True)
    assert result["acc"] == expected
    assert abs(topk_accuracy(logits, labels)["acc"] - expected) < 1e-12
    confusion = result["confusion"]
    assert int(confusion.diagonal().sum()) == int((logits.argmax(1) == labels).sum())  # the matrix agrees


def test_a_top1_hit_is_a_top5_hit() -> None:
    from cnnlab.evaluate.metrics import topk_hits

    logits = torch.zeros(3, 8)  # all tied: argmax is class 0, topk(5) may pick any five
    labels = torch.tensor([0, 0, 0])
    hit1, hit5 = topk_hits(logits, labels)
    assert hit1.all() and hit5.all()
