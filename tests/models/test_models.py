import pytest
import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models import MODELS, InputTooSmall, build_model, model_fits
from cnnlab.models.summary import describe, summarize


def defaults(name: str) -> dict:
    return {k: v.default for k, v in MODELS.get(name).options.items()}


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_forward_and_backward_on_cpu(name: str) -> None:
    channels, size, _ = MODELS.get(name).input_size
    model = build_model(name, defaults(name), num_classes=7, in_channels=channels, image_size=size)
    x = torch.randn(2, channels, size, size)
    out = model(x)
    assert out.shape == (2, 7)
    out.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_convnet_defaults_are_exactly_the_seed_network() -> None:
    model = build_model("convnet", defaults("convnet"), num_classes=10, in_channels=3, image_size=32)
    layers = [(name, type(m).__name__) for name, m in model.features.named_children()]
    assert layers == [
        ("conv1", "Conv2d"), ("act1", "ReLU"), ("pool1", "MaxPool2d"),
        ("conv2", "Conv2d"), ("act2", "ReLU"), ("pool2", "MaxPool2d"),
        ("conv3", "Conv2d"), ("pool3", "MaxPool2d"),  # the seed lists no ReLU after conv3
    ]
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (24, (5, 5), "valid"), (48, (3, 3), "valid"), (96, (3, 3), "valid")]
    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
    assert all(p.kernel_size == 2 and p.stride == 2 for p in pools)
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    # 32 -5+1-> 28 /2-> 14 -3+1-> 12 /2-> 6 -3+1-> 4 /2-> 2: 96 * 2 * 2 = 384 features
    assert [(l.in_features, l.out_features) for l in linears] == [(384, 512), (512, 10)]


def test_convnet_ablation_knobs() -> None:
    options = {**defaults("convnet"), "filters": (64, 128, 256), "fc": (512, 128), "kernel_sizes": (7, 5, 3),
               "activation": "leaky_relu", "dropout": 0.3, "batch_norm": True}
    model = build_model("convnet", options, num_classes=10, in_channels=3, image_size=32)
    kinds = [type(m).__name__ for m in model.modules()]
    assert kinds.count("BatchNorm2d") == 3 and kinds.count("LeakyReLU") == 2 + 2 and kinds.count("Dropout") == 2
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256] and convs[0].kernel_size == (7, 7)
    assert all(c.bias is None for c in convs)  # BN's shift replaces the bias
    assert [m.out_features for m in model.classifier if isinstance(m, nn.Linear)] == [512, 128, 10]


def test_convnet_adapts_to_gray_28px_input() -> None:
    model = build_model("convnet", defaults("convnet"), num_classes=10, in_channels=1, image_size=28)
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    assert model.classifier.fc1.in_features == 96  # 28 -> 24 -> 12 -> 10 -> 5 -> 3 -> 1


def test_too_small_input_is_reported_and_detected() -> None:
    with pytest.raises(InputTooSmall, match="too small for convnet"):
        build_model("convnet", defaults("convnet"), num_classes=10, in_channels=1, image_size=8)
    assert not model_fits("convnet", defaults("convnet"), 1, 8)
    assert model_fits("convnet", defaults("convnet"), 1, 24)
    assert not model_fits("lenet5", defaults("lenet5"), 1, 28) and model_fits("lenet5", defaults("lenet5"), 1, 32)


def test_kernel_sizes_must_match_filters() -> None:
    with pytest.raises(ConfigError, match="kernel_sizes has 2 values but model.filters has 3"):
        build_model("convnet", {**defaults("convnet"), "kernel_sizes": (5, 3)}, num_classes=10, in_channels=3,
                    image_size=32)


def test_unknown_activation_lists_choices() -> None:
    with pytest.raises(ConfigError, match="unknown activation 'relu6'.*Valid activations: elu, gelu"):
        build_model("lenet5", {"activation": "relu6", "pooling": "avg"}, num_classes=10, in_channels=1, image_size=32)


def test_lenet5_matches_the_paper_layer_sizes() -> None:
    model = build_model("lenet5", defaults("lenet5"), num_classes=10, in_channels=1, image_size=32)
    summary = summarize(model, (1, 32, 32))
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


def test_registry_filters_and_refuses_duplicates() -> None:
    assert MODELS.names("lenet*") == ["lenet5"]
    with pytest.raises(ValueError, match="registered twice"):
        MODELS.register("lenet5", input_size=(1, 32, 32))(lambda **kw: None)
    with pytest.raises(ConfigError, match="did you mean 'lenet5'"):
        MODELS.get("lenet")
