"""Every registered architecture, parametrized over the registry (as timm and torchvision test theirs)."""

import pytest
import torch
import torchvision
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models import MODELS, InputTooSmall, build_model, model_fits
from cnnlab.models.layers import LocalResponseNorm
from cnnlab.models.summary import describe, summarize


def defaults(name: str) -> dict:
    return {k: v.default for k, v in MODELS.get(name).options.items()}


def build(name: str, size: int, channels: int = 3, classes: int = 10, **options) -> nn.Module:
    return build_model(name, {**defaults(name), **options}, num_classes=classes, in_channels=channels, image_size=size)


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_forward_and_backward_on_a_small_gray_input(name: str) -> None:
    size = 32  # Fashion-MNIST padded / CIFAR sized: the ImageNet models switch to their small-input stem
    model = build(name, size, channels=1, classes=7)
    out = model(torch.randn(2, 1, size, size))
    assert out.shape == (2, 7)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


PARITY = {"alexnet_tv": "alexnet", **{n: n for n in MODELS.names("vgg*")}, **{n: n for n in MODELS.names("resnet[1-5]*")}}
PARITY = {k: v for k, v in PARITY.items() if v in torchvision.models.list_models()}


@pytest.mark.parametrize("name,theirs", sorted(PARITY.items()))
def test_same_parameters_and_names_as_torchvision(name: str, theirs: str) -> None:
    with torch.device("meta"):
        ours = build(name, 224, classes=1000)
        reference = torchvision.models.get_model(theirs)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}


def test_alexnet_as_in_the_paper() -> None:
    model = build("alexnet", 227, classes=1000)
    assert sum(p.numel() for p in model.parameters()) == 60_965_224  # "60 million parameters"
    shapes = {r.name: r.output_shape for r in summarize(model, (3, 227, 227)).rows}
    assert shapes["features.conv1"] == (96, 55, 55) and shapes["features.pool1"] == (96, 27, 27)
    assert shapes["features.pool2"] == (256, 13, 13) and shapes["features.pool5"] == (256, 6, 6)
    assert model.features.conv2.groups == 2 and model.features.conv3.groups == 1
    assert isinstance(model.features.lrn1, LocalResponseNorm) and model.classifier.drop6.p == 0.5
    conv1, conv2, fc8 = model.features.conv1, model.features.conv2, model.classifier.fc8
    assert abs(float(conv1.weight.detach().std()) - 0.01) < 0.002
    assert abs(float(model.classifier.fc6.weight.detach().std()) - 0.01) < 1e-3
    assert bool((conv2.bias == 1).all()) and bool((conv1.bias == 0).all()) and bool((fc8.bias == 0).all())


def test_alexnet_bn_replaces_lrn_with_batch_norm() -> None:
    kinds = [type(m).__name__ for m in build("alexnet_bn", 227).modules()]
    assert kinds.count("BatchNorm2d") == 5 and "LocalResponseNorm" not in kinds


def test_zfnet_layer_sizes() -> None:
    shapes = {r.name: r.output_shape for r in describe("zfnet", [], (3, 224, 224)).rows}
    assert shapes["features.conv1"] == (96, 110, 110) and shapes["features.pool1"] == (96, 55, 55)
    assert shapes["features.conv2"] == (256, 26, 26) and shapes["features.pool2"] == (256, 13, 13)
    assert shapes["features.pool5"] == (256, 6, 6)


def test_lrn_equals_torch_with_alpha_times_n() -> None:
    x = torch.randn(3, 17, 6, 5) * 4
    theirs = nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)(x)
    assert torch.allclose(LocalResponseNorm(5, 1e-4, 0.75, 2.0)(x), theirs, atol=1e-6)


@pytest.mark.parametrize("depth,params", [(20, 0.27e6), (32, 0.46e6), (44, 0.66e6), (56, 0.85e6), (110, 1.7e6)])
def test_cifar_resnets_match_the_paper_table(depth: int, params: float) -> None:
    residual, plain = build(f"resnet{depth}", 32), build(f"plain{depth}", 32)
    count = sum(p.numel() for p in residual.parameters())
    assert abs(count - params) / params < 0.03
    assert count == sum(p.numel() for p in plain.parameters())  # option A shortcuts have no parameters
    convs = [m for m in residual.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) + 1 == depth  # 6n + 1 convolutions + the FC layer


def test_plain_blocks_have_no_shortcut_path() -> None:
    """With its second convolution and BN shift zeroed, a residual block passes its input through
    (relu(0 + x) = x for x >= 0); a plain block outputs zeros."""
    x = torch.rand(2, 16, 8, 8)
    for name, expected in (("resnet20", x), ("plain20", torch.zeros_like(x))):
        block = build(name, 32).layer1[0].eval()
        nn.init.zeros_(block.conv2.weight)
        nn.init.zeros_(block.bn2.bias)
        with torch.no_grad():
            assert torch.allclose(block(x), expected), name


def test_zero_init_residual() -> None:
    model = build("resnet18", 224, zero_init_residual=True)
    assert all(float(block.bn2.weight.detach().abs().sum()) == 0 for layer in (model.layer1, model.layer4) for block in layer)


def test_stem_choice_for_small_and_large_inputs() -> None:
    assert build("resnet18", 32).conv1.kernel_size == (3, 3) and isinstance(build("resnet18", 32).maxpool, nn.Identity)
    assert build("resnet18", 224).conv1.kernel_size == (7, 7)
    assert build("resnet18", 224, stem="small").conv1.kernel_size == (3, 3)
    assert model_fits("alexnet", defaults("alexnet"), 1, 28)  # via the small stem
    assert not model_fits("alexnet", {**defaults("alexnet"), "stem": "imagenet"}, 1, 28)


def test_convnet_defaults_are_exactly_the_seed_network() -> None:
    model = build("convnet", 32)
    layers = [(name, type(m).__name__) for name, m in model.features.named_children()]
    assert layers == [
        ("conv1", "Conv2d"), ("act1", "ReLU"), ("pool1", "MaxPool2d"),
        ("conv2", "Conv2d"), ("act2", "ReLU"), ("pool2", "MaxPool2d"),
        ("conv3", "Conv2d"), ("pool3", "MaxPool2d"),  # the seed lists no ReLU after conv3
    ]
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (24, (5, 5), "valid"), (48, (3, 3), "valid"), (96, (3, 3), "valid")]
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    # 32 -5+1-> 28 /2-> 14 -3+1-> 12 /2-> 6 -3+1-> 4 /2-> 2: 96 * 2 * 2 = 384 features
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(384, 512), (512, 10)]


def test_convnet_ablation_knobs() -> None:
    model = build("convnet", 32, filters=(64, 128, 256), fc=(512, 128), kernel_sizes=(7, 5, 3),
                  activation="leaky_relu", dropout=0.3, batch_norm=True)
    kinds = [type(m).__name__ for m in model.modules()]
    assert kinds.count("BatchNorm2d") == 3 and kinds.count("LeakyReLU") == 2 + 2 and kinds.count("Dropout") == 2
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256] and convs[0].kernel_size == (7, 7)
    assert all(c.bias is None for c in convs)  # BN's shift replaces the bias
    assert [m.out_features for m in model.classifier if isinstance(m, nn.Linear)] == [512, 128, 10]


def test_convnet_adapts_to_gray_28px_input() -> None:
    model = build("convnet", 28, channels=1)
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    assert model.classifier.fc1.in_features == 96  # 28 -> 24 -> 12 -> 10 -> 5 -> 3 -> 1


def test_too_small_input_is_reported_and_detected() -> None:
    with pytest.raises(InputTooSmall, match="too small for convnet"):
        build("convnet", 8, channels=1)
    assert not model_fits("convnet", defaults("convnet"), 1, 8) and model_fits("convnet", defaults("convnet"), 1, 24)
    assert not model_fits("lenet5", defaults("lenet5"), 1, 28) and model_fits("lenet5", defaults("lenet5"), 1, 32)


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="kernel_sizes has 2 values but model.filters has 3"):
        build("convnet", 32, kernel_sizes=(5, 3))
    with pytest.raises(ConfigError, match="unknown activation 'relu6'.*Valid activations: elu, gelu"):
        build("lenet5", 32, channels=1, activation="relu6")
    with pytest.raises(ConfigError, match="model.groups=5 must divide"):
        build("alexnet", 227, groups=5)


def test_lenet5_matches_the_paper_layer_sizes() -> None:
    summary = summarize(build("lenet5", 32, channels=1), (1, 32, 32))
    shapes = {row.name: row.output_shape for row in summary.rows}
    assert shapes["features.c1"] == (6, 28, 28) and shapes["features.s2"] == (6, 14, 14)
    assert shapes["features.c3"] == (16, 10, 10) and shapes["features.s4"] == (16, 5, 5)
    assert shapes["features.c5"] == (120, 1, 1) and shapes["classifier.f6"] == (84,)
    # C1 156 + C3 2,416 (full connection) + C5 48,120 + F6 10,164 + output 850
    assert summary.parameters == 156 + 2416 + 48120 + 10164 + 850


def test_summary_flops_follow_the_multiply_add_count() -> None:
    summary = describe("convnet", [], (3, 32, 32))
    conv1 = next(r for r in summary.rows if r.name == "features.conv1")
    assert conv1.flops == 2 * (24 * 28 * 28) * (3 * 5 * 5)  # outputs x MACs per output x 2
    assert summary.parameters == 256058 and summary.flops == sum(r.flops for r in summary.rows)
    assert describe("resnet18", [], (3, 224, 224)).flops == pytest.approx(2 * 1.82e9, rel=0.01)  # 1.8 GMACs


def test_registry_filters_and_refuses_duplicates() -> None:
    assert MODELS.names("lenet*") == ["lenet5"] and "plain56" in MODELS.names("plain*")
    with pytest.raises(ValueError, match="registered twice"):
        MODELS.register("lenet5", input_size=(1, 32, 32))(lambda **kw: None)
    with pytest.raises(ConfigError, match="did you mean 'lenet5'"):
        MODELS.get("lenet")


def test_batch_norm_nets_answer_the_size_probe_for_tiny_inputs() -> None:
    """The probe runs one image: batch norm in training mode refuses a 1x1 map of one image (ValueError),
    which crashed `train data=digits model=resnet18`; the probe runs in eval mode and answers."""
    # resnet18 at 8x8 ends in 1x1 maps (stride-2 stem, max pool, three stride-2 stages), vgg11_bn at 32x32 too
    # (five 2x2 poolings): both fit in eval mode; vgg11_bn at 16x16 is halved to nothing by its fifth pooling
    cases = [("resnet18", 8, True), ("vgg11_bn", 32, True), ("vgg11_bn", 16, False)]
    for name, size, fits in cases:
        assert model_fits(name, defaults(name), 1, size) is fits, (name, size)
        model = build_model(name, defaults(name), num_classes=2, in_channels=1, image_size=32).eval()
        try:  # the probe's answer is what a real network, on the CPU, does with one such image
            model(torch.randn(1, 1, size, size))
            ran = True
        except (RuntimeError, ValueError):
            ran = False
        assert ran is fits, (name, size)


def test_the_lectures_keras_nets_have_their_parameter_counts() -> None:
    # CMP9137M lecture 4 after Keras's examples: the MNIST MLP and the small MNIST convnet
    mlp = build("mlp", 28, channels=1)
    assert sum(p.numel() for p in mlp.parameters()) == 101_770  # 784 x 128 + 128 + 128 x 10 + 10
    keras = build("convnet", 28, channels=1, filters=(32, 64), kernel_sizes=(3,), fc=(), dropout=0.5,
                  last_conv_activation=True)
    assert sum(p.numel() for p in keras.parameters()) == 34_826  # 320 + 18,496 + 1,600 x 10 + 10
    assert any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in keras.classifier)  # fc=[] keeps the dropout
    deeper = build("mlp", 28, channels=1, hidden=(256, 64), dropout=0.2, activation="tanh")
    assert [type(m).__name__ for m in deeper.classifier] == ["Linear", "Tanh", "Dropout", "Linear", "Tanh",
                                                             "Dropout", "Linear"]
    with pytest.raises(ConfigError, match="model.dropout must be in"):
        build("mlp", 28, channels=1, dropout=1.5)


@pytest.mark.parametrize("depth,plain,residual", [(18, 11_515_688, 11_689_512), (34, 21_623_848, 21_797_672)])
def test_plain_imagenet_nets_are_resnets_without_shortcuts(depth: int, plain: int, residual: int) -> None:
    ours, theirs = build(f"plain{depth}", 224, classes=1000), build(f"resnet{depth}", 224, classes=1000)
    assert sum(p.numel() for p in ours.parameters()) == plain
    assert sum(p.numel() for p in theirs.parameters()) == residual  # torchvision's count
    # the only difference: the three 1x1 projection shortcuts (conv + BN) where the width doubles
    assert residual - plain == sum(c * 2 * c + 2 * 2 * c for c in (64, 128, 256))
    block = ours.layer2[0]
    x = torch.randn(1, 64, 56, 56)
    with torch.no_grad():
        block.eval()
        out = block(x)
        expected = torch.relu(block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x))))))
    assert torch.equal(out, expected)  # no identity added
