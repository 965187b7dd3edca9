"""Estimator convergence study: the truths against independent integrals, the table's relations, main and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate

from caltrain.analysis import estimator_convergence as E
from caltrain.cli.main import main as cli


def _scipy_truth(norm):
    """E|R(C) - C|^norm with C = 0.5 + 0.5 U, U ~ Beta(5, 1) (density 5 u^4), logit R = logit C / 1.5."""
    def gap(u):
        c = 0.5 + 0.5 * u
        r = 1 / (1 + math.exp(-math.log(c / (1 - c)) / 1.5)) if c < 1 else 1.0
        return abs(c - r) ** norm * 5 * u**4
    value = integrate.quad(gap, 0, 1, epsabs=1e-13, limit=200)[0]
    return value if norm == 1 else math.sqrt(value)


def test_simulation_truths_match_scipy_and_the_samples():
    calibrated, over = E.make_models("simulation")
    assert calibrated.truth == {1: 0.0, 2: 0.0}
    assert over.truth[1] == pytest.approx(_scipy_truth(1), abs=1e-9)
    assert over.truth[2] == pytest.approx(_scipy_truth(2), abs=1e-9)
    probs, labels, post = over.sample(200_000, 0)
    conf, correct = probs.max(1).values.numpy(), (labels == 0).numpy()
    assert np.all(probs.argmax(1).numpy() == 0) and np.allclose(post[:, 0].numpy(), 1 / (1 + ((1 - conf) / conf) ** (1 / 1.5)))
    # the labels follow the posterior: accuracy = E[R(C)], within 5 standard errors
    assert correct.mean() == pytest.approx(post[:, 0].numpy().mean(), abs=5 * 0.5 / math.sqrt(200_000))
    assert np.mean(conf - post[:, 0].numpy()) == pytest.approx(over.truth[1], abs=3e-3)  # R < C everywhere: TCE = E[C - R]


def test_table_rows_and_relations():
    rows = E.convergence_table(sizes=(100, 3_000), seeds=4)
    assert len(rows) == 2 * 2 * len(E.ESTIMATORS)
    by = {(r["model"], r["estimator"], r["n"]): r for r in rows}
    for r in rows:
        assert r["bias"] == pytest.approx(r["mean"] - r["truth"], abs=1e-15)
        assert r["rmse"] ** 2 == pytest.approx(r["bias"] ** 2 + r["sd"] ** 2 * (r["seeds"] - 1) / r["seeds"], rel=1e-9)
    # the known posterior of the simulation is R(C): the estimator is exact for the calibrated model
    assert by[("calibrated", "true-ece", 100)]["mean"] == 0.0
    # Kumar et al.'s shape: the binned estimators overestimate a calibrated model, less with more samples
    for name in ("ece-width-15", "ece-mass-15", "ece-width-50", "smooth-ece"):
        small, large = by[("calibrated", name, 100)], by[("calibrated", name, 3_000)]
        assert small["bias"] > large["bias"] > 0, name
    # more bins, more upward bias at small N
    assert by[("calibrated", "ece-mass-50", 100)]["bias"] > by[("calibrated", "ece-mass-5", 100)]["bias"]
    assert by[("overconfident", "debiased-l2", 100)]["norm"] == 2
    assert "| calibrated | true-ece | 0.0000 |" in E.format_table(rows)


def test_bad_arguments():
    with pytest.raises(ValueError, match="estimators"):
        E.convergence_table(sizes=(10,), seeds=2, estimators=("ece-width-51",))
    with pytest.raises(ValueError, match="seeds"):
        E.convergence_table(sizes=(10,), seeds=1)
    with pytest.raises(ValueError, match="source"):
        E.make_models("cifar")


def test_main_and_the_bench_command_write_the_table_and_figure(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(E, "SIZES", (50, 200))
    monkeypatch.setattr(E, "_REFERENCE_N", 100_000)  # the synthetic source's reference sample (10^6 by default)
    assert cli(["bench", "estimators", "--out", str(tmp_path / "a"), "--seeds", "2"]) == 0
    assert "| overconfident | ece-mass-50 |" in capsys.readouterr().out
    saved = json.loads((tmp_path / "a" / "table.json").read_text())
    assert saved["seeds"] == 2 and {r["n"] for r in saved["rows"]} == {50, 200}
    assert (tmp_path / "a" / "figure.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "a" / "table.md").read_text().startswith("| model | estimator |")
    assert cli(["bench", "estimators", "--set", "epochs=1"]) == 2
    assert "--set: does not apply" in capsys.readouterr().err
    assert E.main(["--out", str(tmp_path / "b"), "--sizes", "60", "--seeds", "2", "--source", "synthetic"]) == 0
    rows = json.loads((tmp_path / "b" / "table.json").read_text())["rows"]
    assert {r["truth"] for r in rows if r["model"] == "calibrated"} == {0.0}
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="--out"):
        E.main(["--out", str(tmp_path / "file"), "--sizes", "60"])
