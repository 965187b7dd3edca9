import pytest

from caltrain.utils.registry import Registry, UnknownNameError


def _make():
    reg = Registry("widget")

    @reg.register("round")
    def round_(*, radius: float = 1.0, color: str = "red"):
        return ("round", radius, color)

    @reg.register("square")
    def square(*, side: float = 2.0):
        return ("square", side)

    return reg


def test_create_passes_kwargs_and_lists_names():
    reg = _make()
    assert reg.create("round", radius=3.0) == ("round", 3.0, "red")
    assert reg.names() == ["round", "square"]
    assert "square" in reg and "hexagon" not in reg
    assert reg.defaults("round") == {"radius": 1.0, "color": "red"}


def test_unknown_name_lists_valid_names_and_suggests():
    reg = _make()
    with pytest.raises(UnknownNameError, match=r"unknown widget 'rund'.*Did you mean 'round'.*round, square"):
        reg.get("rund")
    # catchable both ways
    with pytest.raises(KeyError):
        reg.get("x")
    with pytest.raises(ValueError):
        reg.get("x")


def test_duplicate_name_raises():
    reg = _make()
    with pytest.raises(ValueError, match="already registered"):
        reg.register("round")(lambda: None)


def test_mistyped_parameter_lists_valid_keys():
    reg = _make()
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) 'radus'.*valid parameters: radius, color"):
        reg.create("round", radus=2.0)


def test_name_must_be_lowercase():
    with pytest.raises(ValueError, match="lower-case"):
        Registry("widget").register("Round")
