"""`model.fc_activation` from the config to the network: the EQ2425 report's appendix puts LeakyReLU in the FC
layers ("FC NL" rows) while its convolutions keep ReLU; `model.activation` changes both."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.api import make_config
from cnnlab.models import build_model


def network(*overrides: str) -> nn.Module:
    """The network a run with these overrides trains (config resolved as `cnnlab train` resolves it)."""
    config = make_config(None, ["model=convnet", "model.fc=[64,32]", *overrides])
    return build_model(config.model.name, config.model.options, num_classes=10, in_channels=3, image_size=32)


def activations(module: nn.Sequential) -> list[nn.Module]:
    return [m for m in module if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.Tanh))]


def test_fc_activation_reaches_the_fc_layers_only() -> None:
    model = network("model.fc_activation=leaky_relu", "model.negative_slope=0.2")
    features, classifier = activations(model.features), activations(model.classifier)
    assert [type(m) for m in features] == [nn.ReLU, nn.ReLU]  # conv1 and conv2 (none after conv3, as the report)
    assert [type(m) for m in classifier] == [nn.LeakyReLU, nn.LeakyReLU]  # after FC 64 and FC 32
    assert all(m.negative_slope == 0.2 for m in classifier)
    # and what they compute: the FC activations pass 0.2 x a negative input, the convolutions' pass none of it
    seen: dict[str, torch.Tensor] = {}
    for name, module in [("conv", features[0]), ("fc", classifier[0])]:  # (inputs copied: ReLU works in place)
        module.register_forward_pre_hook(lambda _m, inputs, name=name: seen.update({f"{name} in": inputs[0].clone()}))
        module.register_forward_hook(lambda _m, _inputs, output, name=name: seen.update({f"{name} out": output}))
    model.eval()(torch.randn(4, 3, 32, 32))
    conv_in, conv_out, fc_in, fc_out = (seen[key] for key in ("conv in", "conv out", "fc in", "fc out"))
    assert (conv_in < 0).any() and (conv_out >= 0).all()
    assert (fc_in < 0).any() and torch.allclose(fc_out, torch.where(fc_in < 0, 0.2 * fc_in, fc_in))


def test_without_fc_activation_the_fc_layers_follow_model_activation() -> None:
    tanh = network("model.activation=tanh")
    assert [type(m) for m in activations(tanh.features)] == [nn.Tanh, nn.Tanh]
    assert [type(m) for m in activations(tanh.classifier)] == [nn.Tanh, nn.Tanh]
    mixed = network("model.activation=tanh", "model.fc_activation=relu")
    assert [type(m) for m in activations(mixed.features)] == [nn.Tanh, nn.Tanh]
    assert [type(m) for m in activations(mixed.classifier)] == [nn.ReLU, nn.ReLU]
