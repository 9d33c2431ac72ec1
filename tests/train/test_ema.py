"""train.ema_decay: the average itself, where it is scored, and that a killed-and-resumed run keeps it bitwise
(with mixup/CutMix and gradient accumulation on too: their draws must survive the resume as well)."""

from pathlib import Path

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.train import read_metrics
from cnnlab.train.checkpoint import load_checkpoint, split_prefix
from cnnlab.train.ema import WeightAverage
from cnnlab.train.recipe import recipe_notes

from .test_resume_and_divergence import BASE, InterruptAt, untimed


def test_the_average_follows_the_ema_formula_for_weights_and_batch_norm_buffers() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    average = WeightAverage(model, decay=0.9)
    expected = {k: v.clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    for step in range(5):
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(torch.randn_like(parameter))
        model.train()(torch.randn(8, 3))  # moves the running statistics
        average.update(model)
        for name, value in model.state_dict().items():
            if name in expected:  # the first update copies; later ones are decay x ema + (1 - decay) x weights
                expected[name] = value.clone() if step == 0 else 0.9 * expected[name] + 0.1 * value
    state = average.module.state_dict()
    for name, value in expected.items():
        torch.testing.assert_close(state[name], value)
    assert int(average.tensors()["ema_count"]) == 5


def test_the_average_starts_from_the_weights_after_the_first_step_not_the_initial_ones() -> None:
    """The docstring's claim (train/ema.py): ema_1 = w_1, as torch's AveragedModel does, where timm's
    ModelEmaV3 (a copy at creation) gives decay x w_0 + (1 - decay) x w_1."""
    model = nn.Linear(3, 2)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    average = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)  # one optimizer step
    average.update(model)
    for name, value in average.module.state_dict().items():
        assert torch.equal(value, model.state_dict()[name])
        assert not torch.allclose(value, 0.9 * initial[name] + 0.1 * model.state_dict()[name])


EMA = [*BASE, "train.ema_decay=0.9"]


def test_an_ema_longer_than_the_run_is_said() -> None:
    config = cnnlab.make_config(None, ["epochs=3", "train.ema_decay=0.999"])
    (note,) = recipe_notes(config, steps_per_epoch=20)
    assert "about 1,000 steps and this run takes 60" in note and "about 0.833" in note
    assert recipe_notes(config, steps_per_epoch=1000) == []
    assert recipe_notes(cnnlab.make_config(None, ["epochs=3"]), steps_per_epoch=20) == []


def test_ema_weights_are_checkpointed_evaluated_and_scored(tmp_path: Path) -> None:
    result = cnnlab.train(None, EMA, runs_dir=tmp_path, name="ema", quiet=True)
    tensors, _ = load_checkpoint(result.run_dir / "checkpoints" / "last.safetensors")
    raw, ema = split_prefix(tensors, "model."), split_prefix(tensors, "ema.")
    assert raw.keys() == ema.keys() and any(not torch.equal(raw[k], ema[k]) for k in raw)
    rows = read_metrics(result.run_dir / "metrics.csv")
    assert rows[-1]["ema_val_acc"] is not None and rows[-1]["ema_val_loss"] != rows[-1]["val_loss"]
    # the test score is the EMA weights' (train.ema_eval defaults to true), and eval's 'auto' loads the same
    again = cnnlab.evaluate(result.run_dir, "test", write=False)
    assert again["acc"] == result.test["acc"] and again["loss"] == pytest.approx(result.test["loss"], rel=1e-9)
    val = cnnlab.evaluate(result.run_dir, "val", checkpoint="last", write=False)
    assert val["loss"] == pytest.approx(rows[-1]["ema_val_loss"], rel=1e-9)
    record = cnnlab.load_run(result.run_dir).record
    assert record.recipe["ema"] == {"decay": 0.9, "scored": "ema", "reported_beside": "raw"}
    assert record.final["ema_val_acc"] == rows[-1]["ema_val_acc"]


def test_ema_eval_false_scores_the_raw_weights(tmp_path: Path) -> None:
    result = cnnlab.train(None, [*EMA, "train.ema_eval=false"], runs_dir=tmp_path, name="raw", quiet=True)
    rows = read_metrics(result.run_dir / "metrics.csv")
    val = cnnlab.evaluate(result.run_dir, "val", checkpoint="last", write=False)
    assert val["loss"] == pytest.approx(rows[-1]["val_loss"], rel=1e-9)
    assert cnnlab.load_run(result.run_dir).record.recipe["ema"]["scored"] == "raw"


KNOBS = [*EMA, "augment.mixup_alpha=0.4", "augment.cutmix_alpha=1.0", "augment.mix_prob=0.7",
         "batch_size=16", "train.grad_accum_steps=2", "train.label_smoothing=0.1"]


@pytest.mark.parametrize("interrupt_step", [4, 13])
def test_interrupted_and_resumed_run_keeps_the_ema_and_the_mixing_bitwise(tmp_path: Path,
                                                                          interrupt_step: int) -> None:
    reference = cnnlab.train(None, KNOBS, runs_dir=tmp_path, name="reference", quiet=True)
    stopped = cnnlab.train(None, KNOBS, runs_dir=tmp_path, name="resumed", quiet=True,
                           callbacks=[InterruptAt(interrupt_step)])
    assert stopped.status == "interrupted"
    resumed = cnnlab.train(resume=stopped.run_dir, quiet=True)
    assert resumed.status == "completed"
    ours, _ = load_checkpoint(resumed.run_dir / "checkpoints" / "last.safetensors")
    theirs, _ = load_checkpoint(reference.run_dir / "checkpoints" / "last.safetensors")
    names = [n for n in theirs if n.startswith(("model.", "ema.", "ema_count"))]
    assert any(n.startswith("ema.") for n in names)
    assert all(torch.equal(ours[n], theirs[n]) for n in names), "weights or EMA differ bitwise"
    assert untimed(read_metrics(resumed.run_dir / "metrics.csv")) == untimed(read_metrics(reference.run_dir / "metrics.csv"))
    assert resumed.test == reference.test
    assert cnnlab.load_run(resumed.run_dir).info["steps"] == 30  # 320 // 16 = 20 micro-batches, 10 steps an epoch
