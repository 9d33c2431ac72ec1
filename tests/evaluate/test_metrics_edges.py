"""Top-k and per-class accuracy by hand, at the places mutation testing (docs/mutation.md) showed the tie tests of
test_metrics.py could not tell apart from a wrong evaluate/metrics.py; and evaluate_model's numbers by hand
(mutmut leaves decorated functions such as it unmutated, so this is its only check of that kind)."""

from __future__ import annotations

import math

import pytest
import torch

from cnnlab.evaluate.metrics import evaluate_model, per_class_accuracy, topk_hits
from tests.evaluate.test_metrics import Fixed


def test_top5_by_default_per_row_and_only_when_the_label_is_among_the_five() -> None:
    scores = torch.tensor([[9.0, 8, 7, 6, 5, 4, 3, 2, 1, 0],    # label 5: sixth highest, out of the top 5
                           [9.0, 8, 7, 6, 5, 4, 3, 2, 1, 0],    # label 4: fifth highest, in
                           [0.0, 1, 2, 3, 4, 5, 6, 7, 8, 9]])   # label 9: first
    labels = torch.tensor([5, 4, 9])
    hit1, hit5 = topk_hits(scores, labels)
    assert hit1.tolist() == [False, False, True] and hit5.tolist() == [False, True, True]
    assert topk_hits(scores, labels, k=6)[1].tolist() == [True, True, True]
    assert topk_hits(scores, labels, k=1)[1].tolist() == [False, False, True]


def test_a_given_top1_prediction_is_used_as_given() -> None:
    scores = torch.tensor([[1.0, 1.0, 0.0]])  # a tie: argmax says 0, the caller (bf16 evaluation) said 1
    hit1, hit5 = topk_hits(scores, torch.tensor([1]), predicted=torch.tensor([1]), k=1)
    assert hit1.tolist() == [True] and hit5.tolist() == [True]
    assert topk_hits(scores, torch.tensor([1]), k=1)[0].tolist() == [False]


def test_per_class_accuracy_is_the_diagonal_over_the_row() -> None:
    confusion = torch.tensor([[3, 1, 0],   # class 0: 3 of 4 right
                              [0, 0, 0],   # class 1: no images
                              [2, 0, 8]])  # class 2: 8 of 10
    assert per_class_accuracy(confusion) == [0.75, None, 0.8]
    assert per_class_accuracy(torch.tensor([[0, 5], [0, 5]])) == [0.0, 1.0]


def test_evaluate_model_by_hand() -> None:
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 2.0, 0.0]])
    labels = torch.tensor([0, 2, 2, 0])
    batches = [(torch.zeros(2, 1), labels[:2]), (torch.zeros(2, 1), labels[2:])]
    result = evaluate_model(Fixed(logits), batches, 3, confusion=True, per_image=True)
    # mean cross-entropy: log(sum exp(row)) - row[label], averaged over the four images
    by_hand = sum(math.log(sum(math.exp(v) for v in row)) - row[label]
                  for row, label in zip(logits.tolist(), labels.tolist())) / 4
    assert result["loss"] == pytest.approx(by_hand, abs=1e-6)
    assert (result["acc"], result["count"]) == (0.5, 4)  # rows 0 and 2 right
    assert result["top5"] == 1.0  # three classes: the top 'five' is every class
    assert result["predicted"].tolist() == [0, 1, 2, 1] and result["label"].tolist() == [0, 2, 2, 0]
    assert result["confusion"].tolist() == [[1, 1, 0], [0, 0, 0], [0, 1, 1]]
