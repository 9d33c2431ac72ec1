import pytest

from cnnlab.errors import ConfigError
from cnnlab.registry import Registry


def test_register_get_names_and_errors() -> None:
    things: Registry = Registry("thing")

    @things.register("resnet18")
    def a() -> str:
        return "a"

    things.add("resnet50", lambda: "b")
    things.add("vgg11", lambda: "c")
    assert things.get("resnet18") is a and len(things) == 3 and "vgg11" in things
    assert things.names("resnet*") == ["resnet18", "resnet50"] and list(things) == ["resnet18", "resnet50", "vgg11"]
    with pytest.raises(ValueError, match="registered twice"):
        things.add("vgg11", lambda: None)
    with pytest.raises(ConfigError, match=r"unknown thing 'resnt18'; did you mean 'resnet18'\? Valid things: resnet18, resnet50, vgg11"):
        things.get("resnt18")
    with pytest.raises(ConfigError, match=r"unknown thing 'xyz' Valid things"):
        things.get("xyz")
