"""The docstring examples of caltrain.report run and print what they claim."""

import doctest
import importlib
import pkgutil

import pytest

import caltrain.report

#: Modules without examples, each with its reason (everything else must run at least one).
EXCLUDED = {
    "caltrain.report.document": "assembles a whole report from run directories (tests/report/test_report.py)",
    "caltrain.report.html": "renders a full HTML page from a document (tests/report/test_report.py)",
    "caltrain.report.learning_curves": "needs run histories on disk (tests/report/test_curves.py)",
    "caltrain.report.loading": "reads run and suite directories (tests/report/test_loading.py)",
    "caltrain.report.markdown": "renders a full Markdown page from a document (tests/report/test_report.py)",
    "caltrain.report.sharpness": "needs sharpness trajectories of runs on disk (tests/report/test_curves.py)",
    "caltrain.report.tradeoff": "needs suite results on disk (tests/report/test_curves.py)",
}
MODULES = sorted(
    m.name for m in pkgutil.iter_modules(caltrain.report.__path__, "caltrain.report.") if m.name not in EXCLUDED
)

@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_excluded_modules_exist():
    names = {m.name for m in pkgutil.iter_modules(caltrain.report.__path__, "caltrain.report.")}
    assert set(EXCLUDED) <= names
