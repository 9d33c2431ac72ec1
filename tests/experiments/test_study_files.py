"""Every shipped study file plans (each run's config resolved, each model built on the meta device); the EQ2425
report file is the report's appendix, column by column; the Caltech-101 files run end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from cnnlab.experiments.study import load_study
from cnnlab.experiments.tune_search import load_search
from tests.helpers import write_caltech

STUDIES = Path(__file__).resolve().parents[2] / "studies"
WEIGHTS = {"caltech101_alexnet": "weights/alexnet-owt-7be5be79.pth", "caltech101_vgg11": "weights/vgg11-8a719046.pth"}


@pytest.fixture
def in_a_folder_with_weights(tmp_path: Path, monkeypatch) -> Path:
    """A working directory holding (empty) files where the Caltech studies expect torchvision's weights."""
    monkeypatch.chdir(tmp_path)
    for path in WEIGHTS.values():
        Path(path).parent.mkdir(exist_ok=True)
        Path(path).write_bytes(b"")
    Path("runs/fmnist_0to4").mkdir(parents=True)  # transfer_fmnist.yaml starts from this run (see its comments)
    return tmp_path


@pytest.mark.parametrize("path", sorted(STUDIES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_study_file_plans(path: Path, in_a_folder_with_weights: Path) -> None:
    if path.stem.startswith("search_"):
        spec = load_search(path)  # a search space: every dimension's extremes checked on the meta device
        assert spec.dimensions and spec.trials > 0
        return
    study = load_study(path)
    assert study.name == path.stem
    if study.mode == "greedy":
        assert len(study.stages) >= 2 and all(len(stage.alternatives) >= 2 for stage in study.stages)
    else:
        assert study.runs and len({spec.name for spec in study.runs}) == len(study.runs)


def test_a_missing_weights_file_stops_the_caltech_study_when_it_is_planned(tmp_path: Path, monkeypatch) -> None:
    from cnnlab.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="model.weights 'weights/alexnet-owt-7be5be79.pth' does not exist"):
        load_study(STUDIES / "caltech101_alexnet.yaml")


# The appendix of the EQ2425 Project 3 report (seed 001), verbatim (tab-separated, decimal commas). The study file
# follows its text where the two disagree; CORRECTIONS are those places, as the study file's comments give them.
APPENDIX = """\
\t3.2\t4.A.1\t4.A.2\t4.B\t4.C\t4.D\t4.E\t5.A\t5.B\t5.C
Batch size\t64\t64\t64\t64\t64\t64\t64\t64\t256\t64
Data shuffling\tFALSE\tFALSE\tFALSE\tFALSE\tFALSE\tFALSE\tFALSE\tFALSE\tFALSE\tTRUE
Conv2d CL 1\t24 5x5 padding 0\t64 5x5 padding 0\t64 5x5 padding 0\t64 7x7 padding 0\t64 5x5 padding 0\t64 5x5 padding 0\t64 5x5 padding 0\t64 5x5 padding 0\t64 5x5 padding 0\t64 5x5 padding 0
Conv2d CL 2\t48 3x3 padding 0\t128 3x3 padding 0\t128 3x3 padding 0\t128 5x5 padding 0\t128 3x3 padding 0\t128 3x3 padding 0\t128 3x3 padding 0\t128 3x3 padding 0\t128 3x3 padding 0\t128 3x3 padding 0
Conv2d CL 3\t96 3x3 padding 0\t256 3x3 padding 0\t256 3x3 padding 0\t256 3x3 padding 0\t256 3x3 padding 0\t256 3x3 padding 0\t256 3x3 padding 0\t256 3x3 padding 0\t256 3x3 padding 0\t256 3x3 padding 0
FC NL 1\t512 ReLU\t512 ReLU\t512 ReLU\t512 ReLU\t512 LeakyRelu\t512 LeakyRelu\t512 LeakyRelu\t512 LeakyRelu\t512 LeakyRelu\t512 LeakyRelu
FC NL 2\tX\tX\t128 ReLU\t128 ReLU\t128 LeakyRelu\t128 LeakyRelu\t128 LeakyRelu\t128 LeakyRelu\t128 LeakyRelu\t128 LeakyRelu
FC NL 3\t10 Softmax\t10 Softmax\t10 Softmax\t10 Softmax\t10 Softmax\t10 Softmax\t10 Softmax\t10 Softmax\t10 Softmax\t10 Softmax
ReLU vs. Leaky ReLU\tReLU\tReLU\tReLU\tReLU\tLeaky ReLU\tLeaky ReLU\tLeaky ReLU\tLeaky ReLU\tLeaky ReLU\tLeaky ReLU
Dropout\tFALSE\tFALSE\tFALSE\tFALSE\tFALSE\tTRUE\tTRUE\tTRUE\tTRUE\tTRUE
Batch Normalization Layer\tFALSE\tFALSE\tFALSE\tFALSE\tFALSE\tFALSE\tTRUE\tFALSE\tTRUE\tTRUE
Learning rate\t0,001\t0,001\t0,001\t0,001\t0,001\t0,001\t0,001\t0,001\t0,001\t0,001
ACCURANCY (%)\t33,59\t39,32\t41,05\t40,89\t64,32\t69,03\t52,31\t25,87\t16,07\t45,52
TIME (s)\t5108\t4652\t4655\t4702\t5019\t5956\t4931\t4286\t5291\t4591
"""
CORRECTIONS = {
    ("Batch size", "5.A"): "256", ("Batch size", "5.B"): "64",  # section 5.6: batch 256 is 5.A (25.87%)
    ("Learning rate", "5.B"): "0,1",  # section 5.7: 5.B tries lr 0.1 (16.07%)
    ("Batch Normalization Layer", "5.B"): "FALSE", ("Batch Normalization Layer", "5.C"): "FALSE",  # 5.5: dropped
}


def appendix_columns() -> dict[str, dict[str, str]]:
    """Column ('3.2', '4.A.1', ...) -> row name -> cell, with the text's corrections applied."""
    header, *rows = APPENDIX.splitlines()
    names = header.split("\t")[1:]
    columns: dict[str, dict[str, str]] = {name: {} for name in names}
    for row in rows:
        title, *cells = row.split("\t")
        for name, cell in zip(names, cells, strict=True):
            columns[name][title] = CORRECTIONS.get((title, name), cell)
    return columns


def described(model: torch.nn.Module) -> dict[str, object]:
    """A built network in the appendix's terms: convolutions, FC layers with their activations, dropout, BN."""
    from torch import nn

    convs = [f"{m.out_channels} {m.kernel_size[0]}x{m.kernel_size[1]} padding {0 if m.padding in ('valid', (0, 0)) else m.padding}"
             for m in model.features if isinstance(m, nn.Conv2d)]
    names = {nn.ReLU: "ReLU", nn.LeakyReLU: "LeakyRelu"}
    layers = list(model.classifier)
    fcs = []
    for index, layer in enumerate(layers):
        if isinstance(layer, nn.Linear):
            after = next((names[type(m)] for m in layers[index + 1:index + 2] if type(m) in names), "Softmax")
            fcs.append(f"{layer.out_features} {after}")  # the output layer's softmax is in the loss
    return {"convs": convs, "conv activations": [type(m).__name__ for m in model.features if type(m) in names],
            "fc": fcs, "dropout": sorted({m.p for m in model.modules() if isinstance(m, nn.Dropout)}),
            "batch norm": sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())}


def test_the_eq2425_report_file_builds_the_appendixs_networks() -> None:
    """Each column of the report's appendix (as its text corrects it) against the network the study file builds
    for it and the settings it trains with; its published accuracy and time are the study's reference."""
    from cnnlab.models import build_model

    study = load_study(STUDIES / "eq2425_report.yaml")
    columns = appendix_columns()
    assert [variation.split("_")[0] for variation in study.variations] == ["baseline", *list(columns)[1:]]
    for spec, (name, column) in zip(study.runs, columns.items(), strict=True):
        config = spec.config
        model = build_model(config.model.name, config.model.options, num_classes=10, in_channels=3, image_size=32)
        got = described(model)
        assert got["convs"] == [column["Conv2d CL 1"], column["Conv2d CL 2"], column["Conv2d CL 3"]], name
        assert got["fc"] == [column[f"FC NL {i}"] for i in (1, 2, 3) if column[f"FC NL {i}"] != "X"], name
        assert got["conv activations"] == ["ReLU", "ReLU"], name  # the FC rows name the activation; convs keep ReLU
        assert got["dropout"] == ([0.3] if column["Dropout"] == "TRUE" else []), name  # 0.3: section 5.4
        assert got["batch norm"] == (3 if column["Batch Normalization Layer"] == "TRUE" else 0), name
        assert config.train.batch_size == int(column["Batch size"]), name
        assert config.data.shuffle == (column["Data shuffling"] == "TRUE"), name
        assert config.optim.lr == float(column["Learning rate"].replace(",", ".")), name
        assert study.reference["top1"][spec.variation] == float(column["ACCURANCY (%)"].replace(",", ".")), name
        assert study.reference["seconds"][spec.variation] == int(column["TIME (s)"]), name
        assert config.optim.name == "sgd" and config.optim.weight_decay == 0 and config.schedule.name == "constant"
        assert config.data.normalize == "centered" and not config.augment.enabled and config.train.epochs == 300


@pytest.mark.slow(first=True)
def test_the_caltech_alexnet_study_runs_end_to_end(tmp_path: Path, monkeypatch, capsys) -> None:
    """The real file on a generated Caltech-101-shaped folder, with torchvision's AlexNet layout saved
    locally as the 'ImageNet' weights (random here: nothing can be downloaded); one variant (--shard 3/5:
    frozen_conv, its four pairs and their retrain) at 64x64 for at most four epochs, its plateau rule on strips
    of one epoch so that it can fire within them: tuned rows, the runs that stopped early retrained for their best
    epoch on train + validation with the variant's weights and freezing, the table of the whole study with the
    paper's numbers beside ours (the other variants: not run)."""
    from cnnlab.cli import main

    monkeypatch.chdir(tmp_path)
    write_caltech(tmp_path / "data", classes=3, per_class=10)
    Path("weights").mkdir()
    torch.save(torchvision.models.alexnet().state_dict(), WEIGHTS["caltech101_alexnet"])
    args = ["study", "run", str(STUDIES / "caltech101_alexnet.yaml"), "data.root=data", "data.image_size=64",
            "epochs=4", "stop.strip=1", "stop.strips=1", "batch_size=8", "data.workers=0", "--shard", "3/5",
            "--dir", "runs/c", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "study caltech101_alexnet: 4 of 24 runs (shard 3/5) (6 variations)" in out
    table = (tmp_path / "runs" / "c" / "table.md").read_text()
    lines = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines() if line[:1] == "|"]
    column = lines[0].index("report top-1")  # the paper's test accuracy, then its per-pair numbers (section 7)
    row = next(line for line in table.splitlines() if line.startswith("| frozen_conv |"))
    cells = next(cells for cells in lines if cells[0] == "frozen_conv")
    assert cells[column] == "88.52%" and "| 4 | completed |" not in row, row
    assert [cells[1] for cells in lines if cells[0].startswith("frozen_conv ")].count("chosen") == 1
    for variant, reference in (("scratch", "50.92%"), ("finetune", "85.00%"), ("frozen_fc", "72.42%")):
        cells = next(cells for cells in lines if cells[0] == variant)
        assert cells[1] == "not run" and cells[column] == reference, cells
        assert not (tmp_path / "runs" / "c" / f"{variant}__final").exists()
    import json

    record = json.loads((tmp_path / "runs" / "c" / "frozen_conv__final" / "run.json").read_text())
    best = json.loads((tmp_path / "runs" / "c" / "tune.json").read_text())["variations"]["frozen_conv"]["best"]
    tuned = json.loads((tmp_path / "runs" / "c" / best["run"] / "run.json").read_text())
    assert record["data"]["sizes"]["train"] == tuned["data"]["sizes"]["train"] + tuned["data"]["sizes"]["val"]
    assert record["weights"]["loaded"] > 0 and record["freeze"]["mode"] == "conv"
    pairs = [json.loads((d / "run.json").read_text()) for d in (tmp_path / "runs" / "c").glob("frozen_conv__lr*")]
    assert len(pairs) == 4
    stopped = [p for p in pairs if p["status"] == "stopped_early"]
    assert stopped, [p["status"] for p in pairs]  # the plateau rule ended at least one pair before its 4 epochs
    for pair in stopped:
        stop = pair["early_stop"]
        assert stop["fired"] and stop["criterion"] == "plateau" and pair["epochs_completed"] == stop["epoch"] < 4
    assert record["status"] == "completed" and record["epochs_completed"] == best["best_epoch"] == tuned["best_epoch"]


@pytest.mark.parametrize("stem", ["caltech101_alexnet", "caltech101_vgg11"])
def test_caltech_files_augment_one_variant_and_stop_on_a_plateau(stem: str, in_a_folder_with_weights: Path) -> None:
    """Seed 004 ran its scratch and transfer runs on plain transforms and data augmentation as an experiment
    of its own (on the pretrained network); its early stopping ended runs whose accuracy stayed constant."""
    import dataclasses

    study = load_study(STUDIES / f"{stem}.yaml")
    by_point = {(spec.variation, tuple(spec.grid.items())): spec.config for spec in study.runs}
    for (variation, point), config in by_point.items():
        stop = config.stop
        assert (stop.criterion, stop.strip, stop.strips, stop.min_delta, stop.metric) == (
            "plateau", 5, 5, 0.0, "val_error"), variation
        if variation != "finetune_augmented":
            assert not config.augment.enabled and not config.augment.hflip and config.augment.rotation == 0, variation
            assert config.augment.scale == (1.0, 1.0), variation
            continue
        augment = config.augment
        assert augment.enabled and augment.hflip and augment.rotation == 15 and augment.scale == (0.5, 1.0)
        finetune = by_point[("finetune", point)]  # the same run in every other respect
        assert dataclasses.replace(config, augment=finetune.augment) == finetune
    assert study.variations[-1] == "finetune_augmented" and len(study.variations) == 6


def test_the_alexnet_recipe_plans_on_an_imagenet_style_folder(tmp_path: Path) -> None:
    from cnnlab.data.transforms import eval_resize
    from tests.helpers import write_jpeg_tree

    root = tmp_path / "imagenet"
    write_jpeg_tree(root / "train", {"n01440764": 6, "n01443537": 6, "n01484850": 6}, size=(300, 260))
    write_jpeg_tree(root / "val", {"n01440764": 2, "n01443537": 2, "n01484850": 2}, size=(300, 260), seed=1)
    study = load_study(STUDIES / "alexnet_imagenet.yaml", [f"data.root={root}"])
    config = {spec.variation: spec.config for spec in study.runs}["baseline"]
    assert (config.model.name, config.model.options["dropout"], config.model.options["lrn"]) == ("alexnet", 0.5, True)
    assert (config.train.batch_size, config.train.epochs) == (128, 90)
    assert (config.optim.name, config.optim.lr, config.optim.options["momentum"], config.optim.weight_decay) == (
        "momentum", 0.01, 0.9, 0.0005)
    assert config.schedule.name == "plateau" and config.schedule.options["factor"] == 0.1
    assert (config.data.image_size, eval_resize(224)) == (224, 256)  # 256 -> random 224 crops
    assert (config.augment.hflip, config.augment.pca_lighting, config.augment.scale) == (True, 0.1, (1.0, 1.0))
    assert {spec.variation: spec.config.augment.pca_lighting for spec in study.runs} == {
        "baseline": 0.1, "no_pca_lighting": 0.0}


def test_the_report_trains_on_the_whole_training_set_and_the_greedy_search_holds_validation_out(
        tmp_path: Path) -> None:
    """The report trained on all 50,000 CIFAR-10 training images; the greedy search chooses on a validation
    split, so it keeps one. Checked on the splits the runs would read from a CIFAR-10-shaped folder."""
    from cnnlab.config import resolve
    from cnnlab.train.build import splits_of
    from tests.helpers import write_cifar10

    root = write_cifar10(tmp_path / "data" / "cifar-10-batches-py", per_batch=40).parent  # 200 training images
    report = load_study(STUDIES / "eq2425_report.yaml", [f"data.root={root}"])
    for spec in report.runs:
        splits = splits_of(spec.config)
        sizes = (len(splits.train), splits.val is None, len(splits.test))
        assert sizes == (200, True, 40), spec.variation
    greedy = load_study(STUDIES / "eq2425_greedy.yaml", [f"data.root={root}"])
    splits = splits_of(resolve(greedy.base))  # every stage's runs are the base plus model/optim/batch changes
    assert splits.val is not None and len(splits.train) + len(splits.val) == 200 and len(splits.test) == 40
    assert len(splits.val) == pytest.approx(20, abs=2)  # 10%, stratified by class (rounded per class)


def test_the_docs_state_each_eq2425_files_epochs_order_and_training_set() -> None:
    """The ablation tutorial's table of the three EQ2425 files says what each trains: epochs, shuffling,
    training images."""
    from cnnlab.config import resolve

    readme = (STUDIES.parent / "docs" / "tutorials" / "ablation.md").read_text()
    for stem in ("eq2425_report", "eq2425_greedy", "eq2425_one_change"):
        row = next(line for line in readme.splitlines() if line.startswith(f"| `studies/{stem}.yaml` |"))
        budget = row.rstrip(" |").rsplit("|", 1)[1].strip()  # the last column
        config = resolve(load_study(STUDIES / f"{stem}.yaml").base)
        assert budget.startswith(f"{config.train.epochs}, "), (stem, budget)
        assert ("unshuffled" in budget) == (not config.data.shuffle), (stem, budget)
        assert ("shuffled every epoch" in budget) == config.data.shuffle, (stem, budget)
        whole = config.data.val_fraction == 0 and not config.data.val_per_class
        assert ("all 50,000" in budget) == whole and ("45,000" in budget) == (config.data.val_fraction == 0.1), stem


def _parameters_on(config, root: Path) -> int:
    """The parameter count of the model a run of `config` builds, at the input size its data gets."""
    import dataclasses

    from cnnlab.models import count_parameters
    from cnnlab.train.build import make_model, splits_of
    from cnnlab.train.runtime import Runtime

    config = dataclasses.replace(config, data=dataclasses.replace(config.data, root=str(root)))
    spec = splits_of(config).spec
    return count_parameters(make_model(config.model, spec, Runtime(torch.device("cpu"), None, False)))


def test_the_lecture_nets_are_trained_with_the_lecture_counts_and_recipe(tmp_path: Path) -> None:
    """Seed 003's Keras MLP (101,770 parameters) and convnet (34,826) at MNIST's 28x28, Adam, batch 128,
    15 epochs; the convnet would pad to 32x32 (41,866) without data.image_size=28."""
    from tests.helpers import write_mnist_like

    root = write_mnist_like(tmp_path / "data" / "mnist").parent
    study = load_study(STUDIES / "lecture_mnist.yaml")
    counts = {spec.variation: _parameters_on(spec.config, root) for spec in study.runs}
    assert counts == {"mlp": 101_770, "convnet": 34_826}
    for spec in study.runs:
        config = spec.config
        assert (config.data.name, config.data.image_size, config.data.normalize) == ("mnist", 28, "unit")
        assert (config.optim.name, config.optim.lr, config.optim.weight_decay) == ("adam", 0.001, 0.0)
        assert (config.train.batch_size, config.train.epochs, config.schedule.name) == (128, 15, "constant")
        assert not config.augment.enabled
    padded = load_study(STUDIES / "lecture_mnist.yaml", ["data.image_size=null"]).runs
    assert _parameters_on(next(s.config for s in padded if s.variation == "convnet"), root) == 41_866


def test_the_documented_counts_of_the_lecture_nets_are_what_its_commands_build(tmp_path: Path) -> None:
    """The zoo paragraph's `mlp` and Keras-convnet counts, for the overrides it prints, on MNIST-shaped data."""
    import re
    import shlex

    from cnnlab.api import make_config
    from tests.helpers import write_mnist_like

    root = write_mnist_like(tmp_path / "data" / "mnist").parent
    page = STUDIES.parent / "docs" / "tutorials" / "first-session.md"
    zoo = " ".join(page.read_text().split("The zoo:", 1)[1].split("\n\n", 1)[0].split())
    mlp_count = re.search(r"`mlp` \(the lecture's MNIST perceptron[^)]*?([\d,]{6,}) parameters", zoo)
    convnet = re.search(r"Keras MNIST convnet is `([^`]+)`, ([\d,]+) parameters", zoo)
    assert mlp_count and convnet, zoo[:600]
    built = _parameters_on(make_config(None, ["model=mlp", "data=mnist"]), root)
    assert built == int(mlp_count.group(1).replace(",", "")) == 101_770
    built = _parameters_on(make_config(None, [*shlex.split(convnet.group(1)), "data=mnist"]), root)
    assert built == int(convnet.group(2).replace(",", "")) == 34_826


def _crossing_table(text: str) -> dict[str, dict[float, tuple[float, float]]]:
    """The search's result as relu_vs_tanh.yaml's comment records it: per activation, per learning rate,
    (epoch of the first level, epoch of the second level), inf where it was never reached."""
    import math
    import re

    rows = {m.group(1): m.group(2).split() for m in re.finditer(r"^#   (lr|relu|tanh) +(.+)$", text, re.M)}
    rates = [float(rate) for rate in rows.pop("lr")]

    def epoch(cell: str) -> float:
        return math.inf if cell.strip("()") == "-" else float(cell.strip("()"))

    return {activation: {rate: (epoch(first), epoch(second))
                         for rate, first, second in zip(rates, cells[0::2], cells[1::2], strict=True)}
            for activation, cells in rows.items()}


def test_relu_and_tanh_each_train_at_the_rate_their_own_search_chose(in_a_folder_with_weights: Path) -> None:
    """AlexNet's learning rates were 'chosen independently for each network to make training as fast as
    possible': each variation's rate is the winner of its own activation in the recorded search, and that
    search (relu_vs_tanh_lr.yaml) covers exactly the recorded rates on the same base."""
    import dataclasses

    from cnnlab.config import resolve

    text = (STUDIES / "relu_vs_tanh.yaml").read_text()
    table = _crossing_table(text)
    study = load_study(STUDIES / "relu_vs_tanh.yaml")
    rates = {spec.variation: spec.config.optim.lr for spec in study.runs}
    assert set(rates) == set(table) == {"relu", "tanh"}
    for activation, crossings in table.items():  # fastest to the first level, then the second, then the lower rate
        winner = min(crossings, key=lambda rate: (*crossings[rate], rate))
        assert rates[activation] == winner, (activation, crossings)
    search = load_study(STUDIES / "relu_vs_tanh_lr.yaml")
    searched: dict[str, set[float]] = {}
    for spec in search.runs:
        searched.setdefault(spec.config.model.options["activation"], set()).add(spec.config.optim.lr)
        assert spec.variation.startswith(spec.config.model.options["activation"])
    assert searched == {activation: set(crossings) for activation, crossings in table.items()}

    def without_lr(config):
        return dataclasses.replace(config, optim=dataclasses.replace(config.optim, lr=1.0))

    assert without_lr(resolve(study.base)) == without_lr(resolve(search.base))  # the same net and recipe
