"""Every public module's docstring examples run and print what they say; each runs at least one example.

One parametrised test over the subpackages (and the top-level modules), so a new module is covered the day it
is added. A module without an example is listed in ``EXCLUDED`` with its reason; a listed name that no longer
exists fails ``test_excluded_modules_exist``.
"""

import doctest
import importlib
import pkgutil

import pytest
import torch

PACKAGES = ("analysis", "data", "losses", "metrics", "models", "posthoc", "report", "utils")

#: Modules without examples, each with its reason (everything else must run at least one).
EXCLUDED = {
    "caltrain.analysis.coupling": "needs a trained model and a loader (tests/analysis/test_coupling.py)",
    "caltrain.analysis.functional_model": "wraps a whole nn.Module for torch.func; exercised by the analysis tests",
    "caltrain.data.files": "downloads and file checks: an example would need the network or real dataset files",
    "caltrain.report.document": "assembles a whole report from run directories (tests/report/test_report.py)",
    "caltrain.report.html": "renders a full HTML page from a document (tests/report/test_report.py)",
    "caltrain.report.learning_curves": "needs run histories on disk (tests/report/test_curves.py)",
    "caltrain.report.loading": "reads run and suite directories (tests/report/test_loading.py)",
    "caltrain.report.markdown": "renders a full Markdown page from a document (tests/report/test_report.py)",
    "caltrain.report.sharpness": "needs sharpness trajectories of runs on disk (tests/report/test_curves.py)",
    "caltrain.report.tradeoff": "needs suite results on disk (tests/report/test_curves.py)",
    "caltrain.utils.io": "atomic file writes and JSON round trips: tested in tests/utils/test_io.py on real files",
}
#: Modules whose examples need an optional extra.
NEEDS = {"caltrain.posthoc.classifier": "sklearn"}


def _all_modules() -> list[str]:
    names = ["caltrain.abstention", "caltrain.losses"]
    for package in PACKAGES:
        pkg = importlib.import_module(f"caltrain.{package}")
        names += [m.name for m in pkgutil.iter_modules(pkg.__path__, f"caltrain.{package}.")]
    return sorted(names)


@pytest.mark.parametrize("name", [n for n in _all_modules() if n not in EXCLUDED])
def test_docstring_examples(name):
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    extraglobs = {"torch": torch} if name.startswith("caltrain.analysis.") else None  # their examples assume it
    result = doctest.testmod(importlib.import_module(name), extraglobs=extraglobs,
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name}: no docstring example ran"
    assert result.failed == 0


def test_excluded_modules_exist():
    assert set(EXCLUDED) <= set(_all_modules())
