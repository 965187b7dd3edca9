"""The examples in the docstrings of caltrain.posthoc run and print what they say."""

import doctest
import importlib
import pkgutil

import pytest

import caltrain.posthoc

MODULES = sorted(m.name for m in pkgutil.iter_modules(caltrain.posthoc.__path__, "caltrain.posthoc."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name == "caltrain.posthoc.classifier":
        pytest.importorskip("sklearn")  # its example trains a scikit-learn classifier (an optional extra)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name}: no docstring example ran"
    assert result.failed == 0
