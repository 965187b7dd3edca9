"""The examples in the docstrings of caltrain.losses run and print what they say (every module, both parts)."""

import doctest
import importlib
import pkgutil

import pytest

import caltrain.losses

MODULES = sorted(m.name for m in pkgutil.iter_modules(caltrain.losses.__path__, "caltrain.losses."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
