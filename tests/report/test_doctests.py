"""The docstring examples of caltrain.report run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = ["caltrain.report.reliability", "caltrain.report.smooth", "caltrain.report.selective",
           "caltrain.report.classwise"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
