"""The first ``torch.func.jvp`` of a process loads torch's forward-AD decompositions through
``torch.jit.script``, which warns that it is deprecated: torch's own warning, not ours."""

from pathlib import Path

import pytest

_HERE = Path(__file__).parent
_TORCH_JVP_WARNING = "ignore:`torch.jit.script` is deprecated:DeprecationWarning"


def pytest_collection_modifyitems(items):
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.filterwarnings(_TORCH_JVP_WARNING))
