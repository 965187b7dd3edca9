"""The examples in the docstrings of caltrain.models run and print what they say."""

import doctest
import importlib
import pkgutil

import pytest

import caltrain.models

MODULES = sorted(m.name for m in pkgutil.iter_modules(caltrain.models.__path__, "caltrain.models."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name}: no docstring example ran"
    assert result.failed == 0
