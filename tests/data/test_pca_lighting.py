"""AlexNet's "fancy PCA" lighting (Krizhevsky et al. 2012, section 4.1) against a hand-computed example, and
in a real run: computed from the training set, stored in the run's data description, reproducible."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.data.augment import AugmentPlan, epoch_draws, pca_lighting
from cnnlab.data.pixels import colour_pca
from tests.helpers import write_cifar10

U1 = torch.tensor([1.0, 1.0, 1.0]) / math.sqrt(3)  # brightness
U2 = torch.tensor([1.0, -1.0, 0.0]) / math.sqrt(2)  # red against green


def _four_colours() -> torch.Tensor:
    """Pixels of four colours in equal numbers: 128 +- (30, 30, 30) and 128 +- (20, -20, 0). Their covariance
    (0-255 units) is a^2/2 u1 u1' + b^2/2 u2 u2' with a = 30 sqrt 3, b = 20 sqrt 2: eigenvalues 1350, 400, 0."""
    colours = torch.tensor([[158, 158, 158], [98, 98, 98], [148, 108, 128], [108, 148, 128]], dtype=torch.uint8)
    pixels = colours.repeat(25, 1)  # 100 pixels
    return pixels.T.reshape(3, 10, 10).unsqueeze(0).repeat(2, 1, 1, 1)  # two 10x10 images


def test_colour_pca_of_a_hand_built_covariance() -> None:
    stds, vectors = colour_pca(_four_colours())
    assert stds == pytest.approx((math.sqrt(1350) / 255, math.sqrt(400) / 255, 0.0), abs=1e-6)
    axes = torch.tensor(vectors)  # one eigenvector per column, largest first
    assert abs(float(axes[:, 0] @ U1)) == pytest.approx(1.0, abs=1e-6)
    assert abs(float(axes[:, 1] @ U2)) == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(axes.T @ axes, torch.eye(3), atol=1e-6)


def test_lighting_adds_sum_of_alpha_times_std_times_axis_to_every_pixel() -> None:
    stds = torch.tensor([math.sqrt(1350) / 255, math.sqrt(400) / 255, 0.0])
    vectors = torch.stack([U1, U2, torch.tensor([1.0, 1.0, -2.0]) / math.sqrt(6)], dim=1)
    images = torch.full((2, 3, 4, 4), 100.0)
    alphas = torch.tensor([[0.1, 0.0, 5.0], [0.0, -0.2, 0.0]])
    out = pca_lighting(images, alphas, stds, vectors)
    # image 0: 0.1 x sqrt(1350) along u1 = 3.674 / sqrt 3 = 2.1213 per channel; the third axis has no variance
    assert out[0, :, 0, 0].tolist() == pytest.approx([100 + 0.1 * math.sqrt(1350) / math.sqrt(3)] * 3, abs=1e-4)
    # image 1: -0.2 x 20 along u2 = (-2.828, +2.828, 0)
    assert out[1, :, 2, 3].tolist() == pytest.approx([100 - 4 / math.sqrt(2), 100 + 4 / math.sqrt(2), 100], abs=1e-4)
    assert torch.equal(out[0, 0], out[0, 0, 0, 0].expand(4, 4))  # the same shift on every pixel of an image
    assert pca_lighting(torch.full((1, 3, 1, 1), 254.0), torch.tensor([[1.0, 0, 0]]), stds, vectors).max() == 255


def test_the_draws_are_per_image_normal_with_the_configured_sigma_and_reproducible() -> None:
    plan = AugmentPlan(pca_lighting=0.1)
    first = epoch_draws(plan, 20000, seed=3, epoch=1, device=torch.device("cpu")).lighting
    assert first.shape == (20000, 3)
    assert float(first.std()) == pytest.approx(0.1, rel=0.03) and abs(float(first.mean())) < 0.003
    again = epoch_draws(plan, 20000, seed=3, epoch=1, device=torch.device("cpu")).lighting
    other = epoch_draws(plan, 20000, seed=3, epoch=2, device=torch.device("cpu")).lighting
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert epoch_draws(AugmentPlan(), 10, 3, 1, torch.device("cpu")).lighting is None


def test_a_run_with_lighting_stores_the_pca_and_trains_reproducibly(tmp_path) -> None:
    root = write_cifar10(tmp_path / "data" / "cifar-10-batches-py", per_batch=40).parent
    args = ["data=cifar10", f"data.root={root}", "model=lenet5", "epochs=2", "batch_size=20",
            "augment.pca_lighting=0.1", "augment.hflip=false", "augment.crop_padding=0"]
    first = cnnlab.train(None, args, runs_dir=tmp_path / "runs", name="a", quiet=True)
    second = cnnlab.train(None, args, runs_dir=tmp_path / "runs", name="b", quiet=True)
    data = json.loads((first.run_dir / "run.json").read_text())["data"]
    assert len(data["pca_std"]) == 3 and np.array(data["pca_vectors"]).shape == (3, 3)
    assert data["pca_std"][0] >= data["pca_std"][1] >= data["pca_std"][2] > 0
    curves = [[row["train_loss"] for row in cnnlab.load_run(r.run_dir).metrics()] for r in (first, second)]
    assert curves[0] == curves[1]  # same (seed, epoch): the same lighting
    off = cnnlab.train(None, [*args[:-3], "augment=false"], runs_dir=tmp_path / "runs", name="c", quiet=True)
    assert [row["train_loss"] for row in cnnlab.load_run(off.run_dir).metrics()] != curves[0]
    assert "pca_std" not in json.loads((off.run_dir / "run.json").read_text())["data"] or \
        not json.loads((off.run_dir / "run.json").read_text())["data"]["pca_std"]
