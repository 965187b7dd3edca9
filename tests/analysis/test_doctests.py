"""The docstring examples of caltrain.analysis run and print what they claim."""

import doctest
import importlib

import pytest
import torch

MODULES = [
    "caltrain.analysis.margins",
    "caltrain.analysis.eigensolvers",
    "caltrain.analysis.evaluation_set",
    "caltrain.analysis.gauss_newton",
    "caltrain.analysis.hessian",
    "caltrain.analysis.batch_sharpness",
    "caltrain.analysis.robust_margins",
    "caltrain.analysis.tracker",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
