"""The docstring examples of caltrain.metrics run."""

import doctest
import importlib
import pkgutil

import pytest

import caltrain.metrics

MODULES = sorted(m.name for m in pkgutil.iter_modules(caltrain.metrics.__path__, "caltrain.metrics."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name}: no docstring example ran"
    assert result.failed == 0
