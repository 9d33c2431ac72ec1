"""Test-time augmentation (Krizhevsky et al. 2012, section 4.1): the ten crops' geometry, the averaging of
softmax outputs, and `cnnlab eval --tta` on a trained run."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

import cnnlab
from cnnlab.cli import main
from cnnlab.evaluate.tta import averaged, enlarged_size, views
from tests.helpers import FAST


def test_the_ten_crops_of_a_256_image_are_alexnets() -> None:
    assert enlarged_size(224) == 256 and enlarged_size(28) == 32
    image = torch.arange(256.0).view(1, 1, 1, 256).expand(1, 1, 256, 256) + torch.arange(256.0).view(1, 1, 256, 1) * 1000
    crops = views(image, "10crop", 224)
    assert len(crops) == 10 and all(c.shape == (1, 1, 224, 224) for c in crops)
    corners = [(float(c[0, 0, 0, 0]) // 1000, float(c[0, 0, 0, 0]) % 1000) for c in crops[:5]]
    assert corners == [(0, 0), (0, 32), (32, 0), (32, 32), (16, 16)]  # 4 corners, then the centre
    # then the same five of the mirrored image: its top-left is the mirrored top-right, and so on
    for mirrored, plain in zip(crops[5:], (crops[1], crops[0], crops[3], crops[2], crops[4])):
        assert torch.equal(mirrored, plain.flip(-1))
    assert [float(c[0, 0, 0, 0]) for c in views(image, "center", 224)] == [16016.0]
    assert len(views(image[..., :224, :224], "flip", 224)) == 2
    small = views(torch.rand(2, 1, 28, 28), "10crop", 28)  # held at the model's size: enlarged to 32 first
    assert len(small) == 10 and small[0].shape == (2, 1, 28, 28)


def test_the_views_are_torchvisions_ten_crop_and_center_crop_for_every_margin() -> None:
    """Odd margins (37 - 32 = 5) round the centre's offset and cut the mirrored centre from the mirrored
    image, as torchvision does; every crop size 8..64 and a few large ones, each from its enlarged image."""
    generator = torch.Generator().manual_seed(29)
    margins = set()
    for size in [*range(8, 65), 224, 227, 299]:
        source = enlarged_size(size)
        margins.add(source - size)
        images = torch.randint(0, 256, (2, 3, source, source), generator=generator).float()
        expected = list(v2.TenCrop(size)(images))
        got = views(images, "10crop", size)
        assert len(got) == 10 and all(torch.equal(a, b) for a, b in zip(got, expected)), f"10crop {source} -> {size}"
        (centre,) = views(images, "center", size)
        assert torch.equal(centre, v2.CenterCrop(size)(images)), f"center {source} -> {size}"
        held = images[..., :size, :size]  # held at the model's size: enlarged (bilinear) to `source` first
        enlarged = F.interpolate(held, size=(source, source), mode="bilinear", align_corners=False)
        assert all(torch.equal(a, b) for a, b in zip(views(held, "10crop", size), v2.TenCrop(size)(enlarged)))
    assert {margin % 4 for margin in margins} == {0, 1, 2, 3}  # odd margins whose half rounds down (1 mod 4) and up (3)


def test_averaging_is_over_the_softmax_of_the_views() -> None:
    class Position(torch.nn.Module):  # logits depend on the crop: the top-left pixel and the mirror
        def forward(self, x):
            return torch.stack([x[:, 0, 0, 0], x[:, 0, 0, -1], torch.zeros(len(x))], dim=1)

    images = torch.rand(3, 1, 8, 8)
    logits, probs = averaged(Position(), images, "flip", 8)
    expected = (Position()(images).softmax(1) + Position()(images.flip(-1)).softmax(1)) / 2
    assert torch.allclose(probs, expected) and torch.allclose(probs.sum(1), torch.ones(3))
    assert not torch.allclose(probs, logits.softmax(1))  # the mean of softmaxes, not the softmax of means


def test_eval_with_tta_on_a_trained_run(tmp_path, capsys) -> None:
    run = cnnlab.train(None, [*FAST, "epochs=3"], runs_dir=tmp_path, name="tta", quiet=True).run_dir
    scores = {}
    for tta in ("none", "flip", "center", "10crop"):
        assert main(["eval", str(run), "--tta", tta]) == 0
        out = capsys.readouterr().out
        scores[tta] = json.loads((run / f"eval_test{'' if tta == 'none' else '_' + tta}.json").read_text())
        assert "top-1" in out
    assert all(0 <= s["acc"] <= 1 and s["tta"] in scores for s in scores.values())
    # the run trained on shifts of its images padded by 3 (digits' recipe): the centre crop of the padded
    # image is the image itself, the corners are the shifts it learned
    # (up to rounding: 'center' scores log(softmax(logits)), 'none' the logits; equal bit for bit only when
    # the rounding happens to agree, as it did in one batch of 1024 but not in batches of 256 on the CPU)
    assert scores["center"]["loss"] == pytest.approx(scores["none"]["loss"], rel=1e-6)
    assert scores["center"]["acc"] == scores["none"]["acc"]
    assert len({scores[t]["loss"] for t in ("none", "flip", "10crop")}) == 3  # different views, different scores
    with pytest.raises(SystemExit) as refused:
        main(["eval", str(run), "--tta", "12crop"])
    assert refused.value.code == 2 and "choose from 'none', 'flip', 'center', '10crop'" in capsys.readouterr().err
    with pytest.raises(cnnlab.errors.ConfigError, match="--tta must be one of none, flip, center, 10crop"):
        cnnlab.evaluate(run, tta="12crop")
