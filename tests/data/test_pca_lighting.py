"""AlexNet's "fancy PCA" lighting (Krizhevsky et al. 2012, section 4.1) against a hand-computed example, and
in a real run: computed from the training set, stored in the run's data description, reproducible."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.config import config_hash, to_dict
from cnnlab.config.resolve import _flat_plain
from cnnlab.config.saved import defaults_for, settings_hash
from cnnlab.data.augment import AugmentPlan, Draws, epoch_draws, pca_lighting
from cnnlab.data.loader import Normalizer
from cnnlab.data.pixels import colour_pca
from cnnlab.errors import ConfigError
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


def _correlated_batch() -> np.ndarray:
    """uint8 [6, 3, 16, 16]: a shared brightness, red against blue, and noise, so the three eigenvalues differ;
    some pixels at 0 and 255, so a shift leaves the range."""
    rng = np.random.default_rng(29)
    brightness = rng.uniform(0, 255, (6, 1, 16, 16))
    tint = rng.normal(0, 25, (6, 1, 16, 16)) * np.array([1.0, 0.0, -1.0]).reshape(1, 3, 1, 1)
    noise = rng.normal(0, 6, (6, 3, 16, 16))
    return np.clip(np.rint(brightness + tint + noise), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("scale", ["sqrt", "eigenvalue"])
def test_both_scales_match_a_numpy_eigen_decomposition(scale: str) -> None:
    """Each image + 255 sum_i alpha_i s_i p_i, clamped to [0, 255], with s_i = sqrt(lambda_i) or lambda_i: the
    hand computation (numpy, population covariance in [0, 1] units) against colour_pca + the Normalizer."""
    batch = _correlated_batch()
    pixels = batch.transpose(1, 0, 2, 3).reshape(3, -1) / 255.0
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(pixels, bias=True))
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    assert eigenvalues[0] > 2 * eigenvalues[1] > 4 * eigenvalues[2] > 0  # three distinct axes

    stds, vectors = colour_pca(torch.from_numpy(batch))
    library_axes = np.array(vectors)
    assert np.allclose(np.array(stds) ** 2, eigenvalues, rtol=1e-6, atol=1e-9)
    agreement = np.sum(eigenvectors * library_axes, axis=0)
    assert np.allclose(np.abs(agreement), 1.0, atol=1e-6)
    eigenvectors = eigenvectors * np.sign(agreement)  # an axis's sign is arbitrary (alpha is symmetric about 0)

    alphas = np.array([[1.5, -1.0, 2.0], [-2.5, 0.5, 0.0], [0.0, 0.0, 0.0],
                       [0.3, 3.0, -3.0], [-1.0, -1.0, -1.0], [4.0, 0.0, 0.0]])
    magnitudes = np.sqrt(eigenvalues) if scale == "sqrt" else eigenvalues
    shifts = (alphas * magnitudes) @ eigenvectors.T  # [B, 3] in [0, 1] units: row b = sum_i a_bi s_i p_i
    unclamped = batch / 255.0 + shifts[:, :, None, None]
    expected = np.clip(unclamped, 0.0, 1.0)
    assert (unclamped > 1).any() and (unclamped < 0).any()  # the clamp is exercised

    plan = AugmentPlan(pca_lighting=0.1, pca_lighting_scale=scale)
    normalize = Normalizer(mean=[0.0] * 3, std=[1.0] * 3, pca=(stds, vectors))  # then x / 255: [0, 1] units
    draws = Draws(lighting=torch.tensor(alphas, dtype=torch.float32))
    out = normalize(torch.from_numpy(batch), plan, draws).numpy()
    assert np.abs(out - expected).max() < 1e-5
    assert not np.allclose(out, batch / 255.0, atol=1e-3)  # the shift is visible at either scale
    other = "eigenvalue" if scale == "sqrt" else "sqrt"
    elsewhere = normalize(torch.from_numpy(batch), AugmentPlan(pca_lighting=0.1, pca_lighting_scale=other), draws)
    assert np.abs(elsewhere.numpy() - expected).max() > 1e-3  # the two scales are different augmentations


def test_the_scale_is_a_config_key_and_its_default_keeps_old_hashes() -> None:
    lit = ["data=cifar10", "model=lenet5", "augment.pca_lighting=0.1"]
    assert cnnlab.make_config(None, lit).augment.pca_lighting_scale == "sqrt"
    literal = cnnlab.make_config(None, [*lit, "augment.pca_lighting_scale=eigenvalue"])
    assert to_dict(literal)["augment"]["pca_lighting_scale"] == "eigenvalue"  # config.yaml states it
    # the hash counts settings that differ from their defaults (config/saved.py): a config written before
    # the key existed, read without it, hashes as the same computation; the literal scale is another one
    values = _flat_plain(to_dict(cnnlab.make_config(None, lit)))
    before = {key: value for key, value in values.items() if key != "augment.pca_lighting_scale"}
    default = cnnlab.make_config(None, lit)
    assert settings_hash(before, defaults_for(default)) == config_hash(default)
    assert config_hash(cnnlab.make_config(None, [*lit, "augment.pca_lighting_scale=sqrt"])) == config_hash(default)
    assert config_hash(literal) != config_hash(default)
    with pytest.raises(ConfigError, match="augment.pca_lighting_scale .* must be one of sqrt, eigenvalue"):
        cnnlab.make_config(None, [*lit, "augment.pca_lighting_scale=lambda"])


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
    literal = cnnlab.train(None, [*args, "augment.pca_lighting_scale=eigenvalue"], runs_dir=tmp_path / "runs",
                           name="d", quiet=True)
    assert "pca_lighting_scale: eigenvalue" in (literal.run_dir / "config.yaml").read_text()
    assert [row["train_loss"] for row in cnnlab.load_run(literal.run_dir).metrics()] != curves[0]
    off = cnnlab.train(None, [*args[:-3], "augment=false"], runs_dir=tmp_path / "runs", name="c", quiet=True)
    assert [row["train_loss"] for row in cnnlab.load_run(off.run_dir).metrics()] != curves[0]
    assert "pca_std" not in json.loads((off.run_dir / "run.json").read_text())["data"] or \
        not json.loads((off.run_dir / "run.json").read_text())["data"]["pca_std"]
