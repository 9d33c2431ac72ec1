"""The explaining pictures on a trained run: files written, right content, clear errors."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab import explain
from cnnlab.cli import main
from cnnlab.errors import ConfigError
from cnnlab.viz.filters import find_layer, plot_filters
from tests.helpers import FAST


def test_the_pictures_of_a_trained_alexnet(tmp_path: Path, capsys) -> None:
    """One trained run (the paper's AlexNet, 61M parameters: trained once for all four pictures) drawn four
    ways: first-layer kernels as RGB tiles (the paper's figure 3: 96 kernels of 11x11x3, so the digits are
    enlarged to 67x67, the smallest input the ImageNet stem's 11x11/4 convolution and three 3/2 poolings take),
    a deeper layer's grid and the layer lookup's message, the feature maps of an image, and the predictions with
    their probability bars."""
    args = [*FAST, "model=alexnet", "model.stem=imagenet", "data.channels=3", "data.image_size=67", "epochs=1",
            "batch_size=32", "lr=0.005", "data.train_limit=96"]
    run_dir = cnnlab.train(None, args, runs_dir=tmp_path / "runs", name="alex", quiet=True).run_dir

    figure, out = explain.filters(run_dir)  # the first layer's kernels as RGB tiles
    assert out.name == "filters_features_conv1.png" and out.stat().st_size > 5000
    images = [ax.images[0].get_array() for ax in figure.axes if ax.images]
    assert len(images) == 96 and images[0].shape == (11, 11, 3)
    kernels = cnnlab.load_run(run_dir).model("auto").features.conv1.weight.detach()
    assert kernels.shape == (96, 3, 11, 11)
    for index, tile in enumerate(images):  # tile i is kernel i, channels last, scaled to [0, 1] on its own
        kernel = kernels[index].permute(1, 2, 0)
        expected = (kernel - kernel.min()) / (kernel.max() - kernel.min())
        assert np.allclose(np.asarray(tile), expected.numpy(), atol=1e-6), index

    assert main(["viz", "filters", str(run_dir), "--layer", "conv2"]) == 0  # a deeper layer, and the lookup
    assert "filters_features_conv2.png" in capsys.readouterr().out
    assert main(["viz", "filters", str(run_dir), "--layer", "conv9"]) == 2
    err = capsys.readouterr().err
    assert "no layer 'conv9' in this model; did you mean 'conv" in err and "Convolutions: features.conv1, features.conv2" in err

    Image.fromarray((np.eye(8) * 255).astype(np.uint8)).save(tmp_path / "diag.png")  # feature maps of an image
    figure, out = explain.features(run_dir, tmp_path / "diag.png", layer="conv1")
    assert out.exists() and len([ax for ax in figure.axes if ax.images]) == 64  # input + 63 of 96 maps

    figure, out = explain.predictions(run_dir, count=6)  # predictions with probability bars
    bars = [ax for ax in figure.axes if ax.patches]
    assert out.name == "predictions_test.png" and len(bars) == 6
    widths = [sorted(p.get_width() for p in ax.patches) for ax in bars]
    assert all(len(w) == 5 and 0 <= sum(w) <= 1 + 1e-5 for w in widths)


def test_plot_filters_scales_each_kernel_on_its_own(tmp_path: Path) -> None:
    weight = torch.stack([torch.full((3, 2, 2), 5.0), torch.arange(12.0).view(3, 2, 2) * 1e-3])
    weight[0, 0, 0, 0] = -5
    figure = plot_filters(weight, tmp_path / "f.png")
    second = [ax.images[0].get_array() for ax in figure.axes if ax.images][1]
    assert float(second.min()) == 0.0 and float(second.max()) == 1.0


def test_find_layer_errors() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(ConfigError, match="no convolution"):
        find_layer(model, None)
