"""Per-image results: written with the model's real evaluation, read back exactly, bounded, and refused when corrupt."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.errors import DataError
from cnnlab.evaluate.metrics import evaluate_model
from cnnlab.runs import predictions


def _batches():
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(10, 4, generator=generator)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    return [(images[:6], labels[:6]), (images[6:], labels[6:])], images, labels


def test_per_image_results_are_the_argmax_in_batch_order_and_agree_with_the_accuracy():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    batches, images, labels = _batches()
    result = evaluate_model(model, batches, num_classes=3, per_image=True)
    with torch.no_grad():
        expected = model(images).argmax(dim=1)
    assert torch.equal(result["predicted"], expected) and torch.equal(result["label"], labels)
    assert result["acc"] == pytest.approx(float((expected == labels).float().mean()))
    assert "predicted" not in evaluate_model(model, batches, num_classes=3)


def test_round_trip_keeps_every_split(tmp_path):
    test = {"predicted": torch.tensor([1, 2, 3, 40000]), "label": torch.tensor([1, 0, 3, 5])}
    val = {"predicted": torch.tensor([0, 0]), "label": torch.tensor([0, 1])}
    predictions.write_predictions(tmp_path, {"test": test, "val": val})
    back = predictions.read_predictions(tmp_path)
    assert set(back) == {"test", "val"}
    assert back["test"].predicted.tolist() == [1, 2, 3, 40000]  # past int16: stored as int32
    assert back["test"].correct.tolist() == [True, False, True, False]
    assert back["val"].correct.tolist() == [True, False]
    assert back["test"].same_images(back["test"]) and not back["test"].same_images(back["val"])
    assert predictions.read_predictions(tmp_path / "nothing") == {}
    assert not list(tmp_path.glob(".*.tmp"))


def test_small_class_counts_take_two_bytes_per_image(tmp_path):
    count = 50_000
    split = {"predicted": torch.zeros(count, dtype=torch.int64), "label": torch.ones(count, dtype=torch.int64)}
    facts = predictions.write_predictions(tmp_path, {"test": split}, num_classes=2)
    assert (tmp_path / predictions.FILE_NAME).stat().st_size < 2 * 2 * count + 1024
    assert facts["splits"] == {"test": {"count": count, "acc": 0.0, "classes": 2}} and len(facts["sha256"]) == 64


def test_a_corrupt_or_oversized_file_is_a_data_error(tmp_path, monkeypatch):
    path = tmp_path / predictions.FILE_NAME
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(DataError, match="not a readable predictions file"):
        predictions.read_predictions(tmp_path)
    predictions.write_predictions(tmp_path, {"test": {"predicted": torch.tensor([1]), "label": torch.tensor([1])}})
    monkeypatch.setattr(predictions, "MAX_BYTES", 16)
    with pytest.raises(DataError, match="more than the 16"):
        predictions.read_predictions(tmp_path)


def test_mismatched_lengths_are_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"test.predicted": torch.zeros(3, dtype=torch.int16), "test.label": torch.zeros(2, dtype=torch.int16)},
              str(tmp_path / predictions.FILE_NAME))
    with pytest.raises(DataError, match="differ in shape"):
        predictions.read_predictions(tmp_path)
