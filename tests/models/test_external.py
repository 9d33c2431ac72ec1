"""torchvision and timm models by name, and loading weights saved by other libraries."""

import sys
from pathlib import Path

import pytest
import torch
import torchvision

import cnnlab
from cnnlab.errors import ConfigError, DataError
from cnnlab.models import MODELS, build_model
from cnnlab.models.weights import load_weights, read_state_dict
from tests.helpers import FAST


def test_torchvision_models_by_name_with_head_and_channels_adapted() -> None:
    model = build_model("tv:resnet18", {}, num_classes=10, in_channels=1, image_size=64)
    assert model.fc.out_features == 10 and model.conv1.in_channels == 1
    assert model(torch.zeros(2, 1, 64, 64)).shape == (2, 10)
    mobile = build_model("tv:mobilenet_v3_small", {}, num_classes=5, in_channels=3, image_size=64)
    assert mobile(torch.zeros(1, 3, 64, 64)).shape == (1, 5)
    with pytest.raises(ConfigError, match="torchvision has no classification model 'resnet81'; did you mean 'tv:resnet18'"):
        MODELS.get("tv:resnet81")


def test_timm_missing_is_explained(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # as where the extra is not installed: import fails
    with pytest.raises(ConfigError, match=r"needs timm, an optional extra: pip install 'cnnlab\[timm\]'"):
        MODELS.get("timm:resnet18")


def test_timm_models_by_name() -> None:
    """`make test` installs the timm extra, so the timm: path really runs (a skip here means a broken setup)."""
    pytest.importorskip("timm", reason="install the extra: pip install -e '.[timm]' (make test does)")
    model = build_model("timm:resnet18", {}, num_classes=10, in_channels=1, image_size=64)
    assert model(torch.zeros(2, 1, 64, 64)).shape == (2, 10)
    with pytest.raises(ConfigError, match="timm has no model 'resnet81'; did you mean"):
        MODELS.get("timm:resnet81")


def test_torchvision_state_dict_loads_into_our_resnet18(tmp_path: Path) -> None:
    """A state dict saved locally from torchvision's model (as users download them) starts our ResNet-18;
    the 1000-way head does not fit 10 classes and is re-initialised."""
    torch.manual_seed(1)
    reference = torchvision.models.resnet18()
    torch.save(reference.state_dict(), tmp_path / "resnet18_imagenet.pth")
    ours = build_model("resnet18", {"stem": "imagenet", "zero_init_residual": False}, num_classes=10, in_channels=3,
                       image_size=224)
    report = load_weights(ours, tmp_path / "resnet18_imagenet.pth")
    assert report.mismatched == ["fc.weight: (1000, 512) -> (10, 512)", "fc.bias: (1000,) -> (10,)"]
    assert report.loaded == report.total - 2 and not report.unexpected
    assert torch.equal(ours.layer3[1].conv2.weight, reference.layer3[1].conv2.weight)


def test_weights_option_in_a_run_and_from_our_checkpoint(tmp_path: Path) -> None:
    first = cnnlab.train(None, FAST, runs_dir=tmp_path, name="first", quiet=True)
    checkpoint = first.run_dir / "checkpoints" / "last.safetensors"
    second = cnnlab.train(None, [*FAST, f"model.weights={checkpoint}", "epochs=1"], runs_dir=tmp_path, name="second",
                          quiet=True)
    info = cnnlab.load_run(second.run_dir).info
    assert info["weights"]["loaded"] == info["weights"]["total"] and not info["weights"]["mismatched"]
    state = read_state_dict(checkpoint)
    assert set(state) == set(cnnlab.load_run(first.run_dir).model("last").state_dict())


def test_unreadable_weights_are_named(tmp_path: Path) -> None:
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(DataError, match="cannot read weights '.*junk.pth'"):
        read_state_dict(tmp_path / "junk.pth")
    torch.save({"a.weight": torch.zeros(2)}, tmp_path / "other.pth")
    model = build_model("lenet5", {"activation": "tanh", "pooling": "avg"}, num_classes=10, in_channels=1, image_size=32)
    with pytest.raises(DataError, match="no tensor of .* matches this model"):
        load_weights(model, tmp_path / "other.pth")
