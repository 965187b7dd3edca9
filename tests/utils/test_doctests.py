"""The examples in the docstrings of caltrain.utils run and print what they say."""

import doctest
import importlib
import pkgutil

import pytest

import caltrain.utils

#: Modules without examples, each with its reason (everything else must run at least one).
EXCLUDED = {
    "caltrain.utils.io": "atomic file writes and JSON round trips: tested in tests/utils/test_io.py on real files",
}
MODULES = sorted(
    m.name for m in pkgutil.iter_modules(caltrain.utils.__path__, "caltrain.utils.") if m.name not in EXCLUDED
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name}: no docstring example ran"
    assert result.failed == 0


def test_excluded_modules_exist():
    names = {m.name for m in pkgutil.iter_modules(caltrain.utils.__path__, "caltrain.utils.")}
    assert set(EXCLUDED) <= names
