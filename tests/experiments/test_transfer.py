"""Transfer learning (frozen layers bit-identical, fresh head, the run directory as weights), the
feature export in its on-disk format with the logistic-regression probe, and ensembles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.cli import main
from cnnlab.errors import ConfigError
from cnnlab.experiments.ensemble import combine, run_ensemble
from cnnlab.models.transfer import freeze, head_module, penultimate
from cnnlab.train.checkpoint import load_checkpoint, split_prefix
from tests.helpers import FAST

# fp32: the tests recompute features and votes with fp32 arithmetic (precision=auto is bf16 on CPUs with native bf16)
SOURCE = ["model=convnet", "model.batch_norm=true", "data=digits", "data.classes=[0,1,2,3,4]", "epochs=2",
          "train.precision=fp32"]
TARGET = ["model=convnet", "model.batch_norm=true", "data=digits", "data.classes=[5,6,7,8,9]",
          "data.train_per_class=30", "epochs=2", "model.reset_head=true", "train.precision=fp32"]


@pytest.fixture(scope="module")
def source_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("source")
    return cnnlab.train(None, SOURCE, runs_dir=runs, name="source", quiet=True).run_dir


def state(run_dir: Path, name: str = "last") -> dict[str, torch.Tensor]:
    tensors, _ = load_checkpoint(run_dir / "checkpoints" / f"{name}.safetensors")
    return split_prefix(tensors, "model.")


@pytest.mark.parametrize("mode,frozen_prefixes,trained_prefixes", [
    ("conv", ("features.",), ("classifier.",)),
    ("fc", ("classifier.fc1.",), ("classifier.output.", "features.")),
    ("features", ("features.", "classifier.fc1."), ("classifier.output.",)),
])
def test_frozen_layers_stay_bit_identical(tmp_path, source_run, mode, frozen_prefixes, trained_prefixes) -> None:
    start = state(source_run)
    result = cnnlab.train(None, [*TARGET, f"model.weights={source_run}", f"model.freeze={mode}"], runs_dir=tmp_path,
                          name=mode, quiet=True)
    assert result.status == "completed"
    after = state(result.run_dir)
    names = list(after)
    assert any(n.startswith(frozen_prefixes) for n in names) and any(n.startswith(trained_prefixes) for n in names)
    for name in names:
        if name.startswith(frozen_prefixes):  # weights, biases and the BN running statistics
            assert torch.equal(after[name], start[name]), f"{name} changed under freeze={mode}"
        elif name.startswith(trained_prefixes) and name.endswith(("conv1.weight", "fc1.weight", "output.weight")):
            assert not torch.equal(after[name], start[name]), f"{name} did not train under freeze={mode}"
    info = cnnlab.load_run(result.run_dir).info
    assert info["freeze"]["mode"] == mode and info["freeze"]["frozen"] > 0


class StartingWeights(cnnlab.Callback):
    """The weights the run starts training from (after loading and any reset), as the trainer holds them."""

    def on_fit_start(self, trainer) -> None:
        self.state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_reset_head_and_fine_tune_all(tmp_path, source_run) -> None:
    """model.reset_head re-initialises the output layer even where the source's fits (5 -> 5 classes) and keeps
    every other loaded weight; without model.freeze, every layer then trains."""
    start = StartingWeights()
    result = cnnlab.train(None, [*TARGET, f"model.weights={source_run}", "epochs=1"], runs_dir=tmp_path, name="ft",
                          quiet=True, callbacks=[start])
    info = cnnlab.load_run(result.run_dir).info
    assert info["weights"]["loaded"] == info["weights"]["total"]  # 5 -> 5 classes: even the head matched...
    source, after = state(source_run), state(result.run_dir)
    head = {k for k in source if k.startswith("classifier.output.")}
    assert head == {"classifier.output.weight", "classifier.output.bias"} and set(start.state) == set(source)
    for name, value in start.state.items():  # ...and was re-initialised anyway; everything else is the source's
        assert torch.equal(value, source[name]) != (name in head), name
    for name in ("features.conv1.weight", "features.bn1.weight", "classifier.fc1.weight", "classifier.output.weight"):
        assert not torch.equal(after[name], start.state[name]), f"{name} did not train"


def test_freeze_definitions_on_any_model() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    counts = freeze(model, "features")
    assert counts["trainable"] == 8 * 2 + 2 and head_module(model) is model[5]
    model.train()
    model(torch.randn(2, 3, 8, 8))
    assert not model[1].training  # a frozen BN layer stays in eval mode inside a training model
    assert torch.equal(model[1].running_mean, torch.zeros(4))
    features, logits = penultimate(model, torch.randn(3, 3, 8, 8))
    assert features.shape == (3, 8) and logits.shape == (3, 2)
    with pytest.raises(ConfigError, match="model.freeze must be one of"):
        freeze(model, "everything")


def test_feature_export_and_logistic_regression(tmp_path, source_run, capsys) -> None:
    out = tmp_path / "features"
    assert main(["features", *TARGET[:5], "train.precision=fp32", "--weights", str(source_run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "logistic regression on 512-d features" in printed
    with np.load(out / "features_train.npz") as data:
        assert data["features"].dtype == np.float32 and data["features"].shape == (150, 512)
        assert data["labels"].dtype == np.int64 and sorted(set(data["labels"].tolist())) == [0, 1, 2, 3, 4]
        assert list(data["classes"]) == ["5", "6", "7", "8", "9"]
    with np.load(out / "features_test.npz") as data:
        test_count = len(data["labels"])
    # the exported vectors are what the network computes before its output layer: the source run's best weights
    # on the same validation batches, the output layer's input caught by a hook
    from cnnlab.api import make_config
    from cnnlab.train import LoaderSpec, resolve_runtime, split_batches, splits_of

    config = make_config(None, [*TARGET[:5], "train.precision=fp32"])
    runtime = resolve_runtime(config)
    batches = split_batches(splits_of(config), "val", LoaderSpec.for_evaluation(config), runtime)
    model = cnnlab.load_run(source_run).model("best").eval()
    inputs, labels = [], []
    model.classifier.output.register_forward_pre_hook(lambda _module, args: inputs.append(args[0].detach().clone()))
    with torch.no_grad():
        for images, batch_labels in batches:
            model(images)
            labels.append(batch_labels)
    with np.load(out / "features_val.npz") as data:
        assert data["features"].shape == (len(torch.cat(labels)), model.classifier.output.in_features)
        assert np.allclose(data["features"], torch.cat(inputs).numpy(), atol=1e-5)
        assert data["labels"].tolist() == torch.cat(labels).tolist()
    probe = json.loads((out / "linear_probe.json").read_text())
    assert probe["C"] in (0.01, 0.1, 1.0, 10.0) and probe["accuracy"]["test"] > 0.5 and test_count > 0


def test_ensemble_combines_members(tmp_path) -> None:
    runs = [cnnlab.train(None, [*FAST, f"seed={s}"],
                         runs_dir=tmp_path, name=f"m{s}", quiet=True).run_dir for s in range(3)]
    result = run_ensemble(runs, "test", "softmax")
    assert len(result.members) == 3 and result.ensemble["count"] == result.members[0]["count"]
    for member, run in zip(result.members, runs):
        assert member["acc"] == pytest.approx(cnnlab.load_run(run).info["test"]["acc"])  # same data, same model
    # the ensemble's own accuracy, by hand: the members' softmax outputs averaged image by image (Krizhevsky et
    # al. 2012, section 6), its argmax against the labels; top-5 from the same averaged probabilities
    probabilities, labels = [], None
    for run_dir in runs:
        run = cnnlab.load_run(run_dir)
        batches, _ = run.batches("test")
        model = run.model("auto").eval()
        with torch.no_grad():
            outputs = [(torch.softmax(model(images).float(), dim=1), batch_labels) for images, batch_labels in batches]
        probabilities.append(torch.cat([p for p, _ in outputs]))
        labels = torch.cat([y for _, y in outputs])
    mean = torch.stack(probabilities).mean(0)
    assert result.ensemble["acc"] == pytest.approx((mean.argmax(1) == labels).double().mean().item())
    top5 = (mean.topk(5, dim=1).indices == labels[:, None]).any(1)
    assert result.ensemble["top5"] == pytest.approx(top5.double().mean().item())
    vote = run_ensemble(runs, "test", "vote").ensemble["acc"]
    votes = sum(torch.nn.functional.one_hot(p.argmax(1), 10) for p in probabilities).float()
    assert vote == pytest.approx(((votes + mean / 4).argmax(1) == labels).double().mean().item())
    assert main(["ensemble", *map(str, runs), "--combine", "vote", "--flip", "--out", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["flip"] is True
    with pytest.raises(ConfigError, match="at least two"):
        run_ensemble(runs[:1])


def test_combiners_by_hand() -> None:
    a = {"probs": torch.tensor([[0.6, 0.4], [0.2, 0.8]]), "logits": torch.tensor([[1.0, 0.0], [0.0, 3.0]])}
    b = {"probs": torch.tensor([[0.3, 0.7], [0.45, 0.55]]), "logits": torch.tensor([[0.0, 4.0], [0.0, 0.2]])}
    c = {"probs": torch.tensor([[0.4, 0.6], [0.9, 0.1]]), "logits": torch.tensor([[0.0, 0.1], [5.0, 0.0]])}
    # mean probabilities 0.433/0.567 and 0.517/0.483; mean logits 0.33/1.37 and 1.67/1.07
    assert combine([a, b, c], "softmax").argmax(1).tolist() == [1, 0]
    assert combine([a, b, c], "logits").argmax(1).tolist() == [1, 0]
    # votes: row 0 gets 0, 1, 1 -> 1; row 1 gets 1, 1, 0 -> 1 (the majority overrules the mean)
    assert combine([a, b, c], "vote").argmax(1).tolist() == [1, 1]
    with pytest.raises(ConfigError, match="--combine must be one of"):
        combine([a, b], "median")
