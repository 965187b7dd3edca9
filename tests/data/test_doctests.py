"""The examples in the docstrings of caltrain.data run and print what they say."""

import doctest
import importlib
import pkgutil

import pytest

import caltrain.data

#: Modules without examples, each with its reason (everything else must run at least one).
EXCLUDED = {
    "caltrain.data.files": "downloads and file checks: an example would need the network or real dataset files",
}
MODULES = sorted(
    m.name for m in pkgutil.iter_modules(caltrain.data.__path__, "caltrain.data.") if m.name not in EXCLUDED
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name}: no docstring example ran"
    assert result.failed == 0


def test_excluded_modules_exist():
    names = {m.name for m in pkgutil.iter_modules(caltrain.data.__path__, "caltrain.data.")}
    assert set(EXCLUDED) <= names
