"""``--import`` and a suite's ``imports``: a user's components, named like built-in ones, locally and on Ray.

Every case runs ``caltrain`` in a subprocess, so the registries of the other tests never see the components.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plugin_suite"


def _caltrain(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "caltrain.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def _objectives(out: Path) -> set[str]:
    with open(out / "results.csv", newline="") as f:
        return {row["objective"] for row in csv.DictReader(f)}


def test_the_documented_example_runs(tmp_path):
    out = tmp_path / "out"
    result = _caltrain("bench", "examples/plugin_suite/suite.yaml", "--import",
                       "examples/plugin_suite/my_components.py", "--out", str(out), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert _objectives(out) == {"ce", "ls-0.1"}
    recorded = [str(EXAMPLE / "my_components.py")]
    assert json.loads((out / "suite.json").read_text())["imports"] == recorded
    for meta in (out / "runs").glob("*/meta.json"):
        assert json.loads(meta.read_text())["imports"] == recorded


def test_without_the_import_the_suite_names_the_unknown_model(tmp_path):
    result = _caltrain("bench", str(EXAMPLE / "suite.yaml"), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2
    assert "two_moons" in result.stderr and "Traceback" not in result.stderr


def test_train_imports_a_module_by_name_from_the_current_directory(tmp_path):
    shutil.copy(EXAMPLE / "my_components.py", tmp_path / "my_components.py")
    run = tmp_path / "run"
    args = ("train", "--import", "my_components", "--data", "two_moons", "--model", "tiny_mlp", "--epochs", "1",
            "--quiet", "--out", str(run))
    result = _caltrain(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "meta.json").read_text())["imports"] == ["my_components"]
    longer = _caltrain("train", "--resume", str(run), "--epochs", "2", "--quiet", cwd=tmp_path)  # imports meta's
    assert longer.returncode == 0, longer.stderr
    missing = _caltrain("train", "--import", "not_a_module_anywhere", "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert missing.returncode == 2
    assert "--import not_a_module_anywhere: no module named" in missing.stderr


def test_ray_workers_import_the_suite_imports(tmp_path):
    pytest.importorskip("ray")
    folder = tmp_path / "suite"
    folder.mkdir()
    shutil.copy(EXAMPLE / "my_components.py", folder / "my_components.py")
    text = (EXAMPLE / "suite.yaml").read_text() + "imports: [my_components.py]\n"  # relative to the YAML file
    (folder / "suite.yaml").write_text(text)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    out = tmp_path / "out"
    result = _caltrain("bench", str(folder / "suite.yaml"), "--executor", "ray", "--seeds", "1", "--no-report",
                       "--out", str(out), cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert _objectives(out) == {"ce", "ls-0.1"}
    recorded = [str((folder / "my_components.py").resolve())]
    assert json.loads((out / "suite.json").read_text())["imports"] == recorded
    metas = list((out / "runs").glob("*/meta.json"))
    assert len(metas) == 2 and all(json.loads(m.read_text())["imports"] == recorded for m in metas)
