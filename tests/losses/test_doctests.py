"""The examples in the docstrings of caltrain.losses run and print what they say; every public module has some."""

import doctest
import importlib
import pkgutil

import pytest

import caltrain.losses

MODULES = ["caltrain.losses"] + sorted(
    m.name for m in pkgutil.iter_modules(caltrain.losses.__path__, "caltrain.losses.")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no runnable docstring example"
