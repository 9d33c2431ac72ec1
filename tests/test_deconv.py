"""Zeiler & Fergus's deconvnet and the kernels-by-epoch picture: on hand-made chains (the receptive-field
property, the switches, the transposed filters) and on a small trained run (shapes, determinism, the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab import explain
from cnnlab.cli import main
from cnnlab.errors import ConfigError
from cnnlab.explain.deconv import chain_to, deconvolve, forward, receptive_field, unpool
from tests.helpers import FAST
from tests.models.test_models import build


def _chain(padding: int | str = 0) -> list[tuple[str, nn.Module]]:
    torch.manual_seed(0)
    layers = [("conv1", nn.Conv2d(3, 6, 5, padding=padding)), ("act1", nn.ReLU()), ("pool1", nn.MaxPool2d(3, 2)),
              ("conv2", nn.Conv2d(6, 8, 3, stride=2, padding=1)), ("bn2", nn.BatchNorm2d(8)), ("act2", nn.Tanh()),
              ("pool2", nn.AvgPool2d(2))]
    return [(name, module.eval()) for name, module in layers]


@pytest.mark.parametrize("padding", [0, 2, "same"])
def test_a_projection_lives_inside_its_receptive_field_and_nowhere_else(padding) -> None:
    chain = _chain(padding)
    images = torch.rand(6, 3, 40, 40) + 0.1
    with torch.no_grad():
        maps, _ = forward(chain, images)
        h, w = maps.shape[2:]
        for index, (row, column) in enumerate([(0, 0), (h - 1, w - 1), (h // 2, w // 3), (0, w - 1), (h - 1, 0),
                                               (1, 1)]):
            channel = int(maps[index, :, row, column].argmax())  # a positive activation: tanh's ReLU keeps it
            position = torch.tensor([[row, column]])
            pixels = deconvolve(chain, images[index : index + 1], [channel], position)[0]
            top, left, bottom, right = receptive_field(chain, row, column)
            inside = torch.zeros(40, 40, dtype=torch.bool)
            inside[max(top, 0) : bottom + 1, max(left, 0) : right + 1] = True
            energy = pixels.abs().sum(0)
            assert energy[inside].sum() > 0, (padding, channel, row, column)
            assert energy[~inside].sum() == 0, (padding, channel, row, column)
            assert (bottom - top + 1) == (right - left + 1) == 15


def test_the_receptive_field_by_hand() -> None:
    # backwards from one output pixel: avgpool 2/2 -> 2 wide; conv 3/2 -> (2-1)x2+3 = 5; maxpool 3/2 -> 11;
    # conv 5x5 -> 15 pixels, starting 2 before the image (conv2's padding of 1, times the pool's stride 2)
    chain = _chain(0)
    assert receptive_field(chain, 0, 0) == (-2, -2, 12, 12)
    assert receptive_field(chain, 1, 2) == (-2 + 8, -2 + 16, 12 + 8, 12 + 16)  # one output step = 2x2x2 pixels
    assert receptive_field(_chain(2), 0, 0) == (-4, -4, 10, 10) == receptive_field(_chain("same"), 0, 0)


def test_max_unpooling_uses_the_switches_and_adds_where_windows_overlap() -> None:
    x = torch.tensor([[[[1.0, 9.0, 2.0], [0.0, 3.0, 0.0], [4.0, 0.0, 5.0]]]])
    pooled, switches = nn.functional.max_pool2d(x, 2, 1, return_indices=True)
    assert pooled.flatten().tolist() == [9.0, 9.0, 4.0, 5.0]
    back = unpool(torch.ones_like(pooled), switches, x.shape)
    assert back.flatten().tolist() == [0, 2, 0, 0, 0, 0, 1, 0, 1]  # 9 won two windows: both come back to it


def test_a_convolution_is_undone_by_its_transposed_filters_without_bias() -> None:
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    chain = [("conv", conv)]
    image = torch.rand(1, 2, 9, 9)
    with torch.no_grad():
        maps, steps = forward(chain, image)
        signal = torch.zeros_like(maps)
        signal[0, 1, 2, 3] = 1.0
        from cnnlab.explain.deconv import project

        back = project(chain, steps, signal)
    expected = nn.functional.conv_transpose2d(signal, conv.weight, None, 2, 1, output_padding=0)
    assert torch.allclose(back, expected)


def test_residual_networks_and_unknown_layers_are_refused_with_the_reason() -> None:
    resnet = build("resnet20", 32)
    with pytest.raises(ConfigError, match="plain chain of layers.*residual"):
        chain_to(resnet, None)
    lenet = build("convnet", 32, channels=1)
    with pytest.raises(ConfigError, match="did you mean 'conv2'"):
        chain_to(lenet, "conv22")
    name, chain = chain_to(lenet, None)
    assert name == "conv3" and [n for n, _ in chain][-1] == "conv3"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("deconv")
    args = [*FAST, "model=convnet", "epochs=2", "data.train_limit=512", "lr=0.05", "train.keep_epochs=[1,2]"]
    return cnnlab.train(None, args, runs_dir=root, name="small", quiet=True).run_dir


def test_deconv_on_a_trained_run_shapes_determinism_and_fields(run_dir: Path) -> None:
    figure, out, result = explain.deconv(run_dir, layer="conv2", top=4, channels=3)
    assert out.name == "deconv_conv2.png" and out.stat().st_size > 3000
    assert result.layer == "conv2" and len(result.channels) == 3
    assert result.values.shape == (3, 4) and result.images.shape == (3, 4) and result.positions.shape == (3, 4, 2)
    assert result.pixels.shape == (3, 4, 1, 32, 32)
    assert (result.values[:, :-1] >= result.values[:, 1:]).all()  # strongest first
    assert all(len(set(row.tolist())) == 4 for row in result.images)  # four different images per channel
    for c in range(3):
        for k in range(4):
            top, left, bottom, right = result.boxes[c][k]
            energy = result.pixels[c, k].abs().sum(0)
            assert energy[top : bottom + 1, left : right + 1].sum() > 0
            energy[top : bottom + 1, left : right + 1] = 0
            assert energy.sum() == 0
    assert len([ax for ax in figure.axes if ax.images]) == 3 * 8
    _, _, again = explain.deconv(run_dir, layer="conv2", top=4, channels=3)
    assert torch.equal(again.pixels, result.pixels) and torch.equal(again.images, result.images)
    _, _, listed = explain.deconv(run_dir, layer="conv2", top=4, channels=[int(c) for c in result.channels[::-1]])
    assert torch.equal(listed.pixels, result.pixels.flip(0))


def test_deconv_and_evolution_from_the_cli(run_dir: Path, capsys) -> None:
    assert main(["viz", "deconv", str(run_dir), "--layer", "conv1", "--top", "2", "--channels", "0,1"]) == 0
    out = capsys.readouterr().out
    assert "conv1 channel 0: strongest activation" in out and "deconv_conv1.png" in out
    assert main(["viz", "deconv", str(run_dir), "--channels", "0,99"]) == 2
    assert "--channels 99 is not a channel of this layer (it has 96)" in capsys.readouterr().err
    assert main(["viz", "deconv", str(run_dir), "--top", "100000"]) == 2
    assert "is more than the" in capsys.readouterr().err
    assert main(["viz", "evolution", str(run_dir)]) == 0
    assert "evolution_features_conv1.png" in capsys.readouterr().out
    assert main(["viz", "evolution", str(run_dir), "--epochs", "3"]) == 2
    assert "no checkpoint of epoch 3; kept epochs: 1, 2" in capsys.readouterr().err
    assert main(["viz", "evolution", str(run_dir), "--layer", "act1"]) == 2
    assert "layer 'features.act1' is a ReLU, not a convolution" in capsys.readouterr().err
    assert main(["viz", "evolution", str(run_dir), "--count", "0"]) == 2
    with pytest.raises(SystemExit) as refused:
        main(["viz", "deconv", str(run_dir), "--channels", "0"])
    assert refused.value.code == 2 and "a count must be at least 1" in capsys.readouterr().err


def test_evolution_shows_each_kept_epochs_kernels(run_dir: Path) -> None:
    figure, out = explain.evolution(run_dir, count=5)
    tiles = [ax.images[0].get_array() for ax in figure.axes if ax.images]
    assert len(tiles) == 2 * 5 and out.is_file()
    assert not all((a == b).all() for a, b in zip(tiles[:5], tiles[5:]))  # epoch 2's kernels moved


def test_evolution_without_kept_epochs_says_how_to_keep_them(tmp_path: Path) -> None:
    run = cnnlab.train(None, [*FAST, "epochs=1"], runs_dir=tmp_path, name="plain", quiet=True).run_dir
    with pytest.raises(ConfigError, match=r"train.keep_epochs=\[1,2,5,10\]"):
        explain.evolution(run)
