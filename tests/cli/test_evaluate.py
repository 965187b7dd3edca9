"""``caltrain evaluate``: table, JSON keys, logits, abstention, bootstrap, demo, bad input."""

import json

import numpy as np
import pytest
import torch

from caltrain import metrics
from caltrain.cli.main import main

REQUIRED = ("n", "accuracy", "nll", "brier", "ece", "mce", "rmsce", "adaece", "classwise_ece", "aurc")


@pytest.fixture
def preds(tmp_path, rng):
    z = rng.normal(size=(300, 4)) * 2
    labels = rng.integers(0, 4, 300)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    np.savez(tmp_path / "probs.npz", probs=p, labels=labels)
    np.savez(tmp_path / "logits.npz", logits=z, labels=labels)
    np.savez(tmp_path / "abstain.npz", probs=p, labels=labels % 3)
    torch.save({"probs": torch.from_numpy(p), "labels": torch.from_numpy(labels)}, tmp_path / "probs.pt")
    return tmp_path, p, labels


def test_json_has_the_documented_keys_and_values(preds, capsys):
    path, p, labels = preds
    assert main(["evaluate", str(path / "probs.npz"), "--json", "--n-bins", "10"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(REQUIRED) <= set(out)
    assert out == pytest.approx(metrics.summarize(p, labels, n_bins=10))
    assert main(["evaluate", str(path / "logits.npz"), "--json", "--n-bins", "10"]) == 0
    assert json.loads(capsys.readouterr().out) == pytest.approx(out, abs=1e-12)
    assert main(["evaluate", str(path / "probs.pt"), "--json", "--n-bins", "10"]) == 0
    assert json.loads(capsys.readouterr().out) == pytest.approx(out, abs=1e-12)


def test_table_abstention_and_bootstrap(preds, capsys):
    path, _, _ = preds
    assert main(["evaluate", str(path / "probs.npz")]) == 0
    table = capsys.readouterr().out
    assert "adaece" in table and "expected calibration error" in table
    assert main(["evaluate", str(path / "abstain.npz"), "--abstention", "renormalized", "--json"]) == 0
    assert "abstention_rate" in json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(path / "probs.npz"), "--bootstrap", "50", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ece_ci"][0] <= out["ece"] <= out["ece_ci"][1]


def test_demo_prints_a_table_with_the_true_error(capsys):
    assert main(["evaluate", "--demo", "--n", "2000"]) == 0
    out = capsys.readouterr().out
    assert "true_ece" in out and "overconfident" in out
    assert main(["evaluate", "--demo", "--n", "2000", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["overconfident"]["ece"] > 0.1 > res["true_posterior"]["ece"]
    assert res["true_posterior"]["true_ece"] == 0.0


def test_bad_input_exits_nonzero_with_the_reason(tmp_path, capsys):
    np.savez(tmp_path / "bad.npz", probs=np.full((3, 2), 0.7), labels=np.array([0, 1, 1]))
    assert main(["evaluate", str(tmp_path / "bad.npz")]) == 2
    assert "rows must sum to 1" in capsys.readouterr().err
    np.savez(tmp_path / "nolabels.npz", probs=np.full((3, 2), 0.5))
    assert main(["evaluate", str(tmp_path / "nolabels.npz")]) == 2
    assert "labels" in capsys.readouterr().err
    np.savez(tmp_path / "both.npz", probs=np.full((3, 2), 0.5), logits=np.zeros((3, 2)), labels=np.zeros(3, int))
    assert main(["evaluate", str(tmp_path / "both.npz")]) == 2
    assert "exactly one" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.npz")]) == 2
    assert main(["evaluate"]) == 2
    assert "--demo" in capsys.readouterr().err


def test_documented_evaluate_commands_run(tmp_path, rng, capsys, monkeypatch):
    # regression: docs/metrics.md showed `--abstention ... --bootstrap 1000` on one line, which the command
    # refuses; every `caltrain evaluate` line of the guide and of the module docstring must run as written
    import pathlib
    import re
    import shlex

    from caltrain.cli import evaluate

    root = pathlib.Path(__file__).resolve().parents[2]
    lines = re.findall(r"^\s*(caltrain evaluate [^#\n]*)", (root / "docs" / "metrics.md").read_text(), re.M)
    lines += re.findall(r"^\s*(caltrain evaluate [^#\n]*)", evaluate.__doc__, re.M)
    assert len(lines) >= 8
    z = rng.normal(size=(200, 5)) * 2  # 4 classes + an "unknown" column, labels < 4
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    labels = rng.integers(0, 4, 200)
    np.savez(tmp_path / "preds.npz", probs=p, labels=labels)
    torch.save({"probs": torch.from_numpy(p), "labels": torch.from_numpy(labels)}, tmp_path / "preds.pt")
    monkeypatch.chdir(tmp_path)
    for line in lines:
        argv = shlex.split(line)[1:]
        argv = [("50" if a == "1000" else a) for a in argv] + (["--n", "500"] if "--demo" in argv else [])
        assert main(argv) == 0, (line, capsys.readouterr().err)
        capsys.readouterr()


def test_device_and_quiet(preds, capsys):
    path, _, _ = preds
    assert main(["evaluate", str(path / "logits.npz"), "--json"]) == 0
    on_cpu = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(path / "logits.npz"), "--json", "--device", "auto"]) == 0
    assert json.loads(capsys.readouterr().out) == pytest.approx(on_cpu, abs=1e-12)
    assert main(["evaluate", str(path / "logits.npz"), "--device", "nonsense"]) == 2
    assert "caltrain evaluate: error: --device: cannot use 'nonsense'" in capsys.readouterr().err
    assert main(["evaluate", "--demo", "--n", "500"]) == 0
    full = capsys.readouterr().out
    assert main(["evaluate", "--demo", "--n", "500", "--quiet"]) == 0
    quiet = capsys.readouterr().out
    assert full.startswith("demo: 500 synthetic samples") and quiet.startswith("metric ") and full.endswith(quiet)
