"""The docstring examples of caltrain.analysis run and print what they claim."""

import doctest
import importlib
import pkgutil

import pytest
import torch

import caltrain.analysis

#: Modules without examples, each with its reason (everything else must run at least one).
EXCLUDED = {
    "caltrain.analysis.coupling": "needs a trained model and a loader (tests/analysis/test_coupling.py)",
    "caltrain.analysis.functional_model": "wraps a whole nn.Module for torch.func; exercised by the analysis tests that use it",
}
MODULES = sorted(
    m.name for m in pkgutil.iter_modules(caltrain.analysis.__path__, "caltrain.analysis.") if m.name not in EXCLUDED
)

@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_excluded_modules_exist():
    names = {m.name for m in pkgutil.iter_modules(caltrain.analysis.__path__, "caltrain.analysis.")}
    assert set(EXCLUDED) <= names
