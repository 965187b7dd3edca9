"""The dense suites: ``dense-quick`` (embedded) and the ``aslp-duts`` preset (on a tiny DUTS layout built here)."""

from __future__ import annotations

import json

import pytest

from caltrain.cli.main import main
from tests.data.test_saliency_folder import _make_split


def _bench(args, capsys):
    code = main(["bench", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured


def test_dense_quick_runs_shrunk(tmp_path, capsys):
    out = tmp_path / "dq"
    _bench(["dense-quick", "--out", str(out), "--seeds", "1", "--no-report", "--set", "epochs=2",
            "--set", "data.options={n_train: 16, n_val: 8, n_test: 8, size: 16}"], capsys)
    rows = json.loads((out / "results.json").read_text())
    text = json.dumps(rows)
    for objective in ("bce", "bce_ls", "disturb_label", "focal", "aslp_mc", "aslp_mei"):
        assert objective in text
    assert all(row["task"] == "dense_binary" for row in rows["rows"]) and "s_measure" in rows["metrics"]
    table = (out / "results.md").read_text()
    assert "| pixel acc % | ECE % | OE % | UE % | true ECE % |" in table and "AURC" not in table
    summaries = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*/summary.json"))]
    assert len(summaries) == 6 and all(s["task"] == "dense_binary" for s in summaries)
    assert all("ts" in s["posthoc"] and {"true_ece", "pointwise_ce", "grouping_loss"} <= set(s["test"]) for s in summaries)


def test_aslp_duts_preset_on_a_tiny_duts_folder(tmp_path, capsys):
    pytest.importorskip("PIL.Image")
    _make_split(tmp_path / "data", "DUTS-TR", 6, height=24, width=24)
    _make_split(tmp_path / "data", "DUTS-TE", 3, height=24, width=24, seed=1)
    out = tmp_path / "duts"
    _bench(["aslp-duts", "--out", str(out), "--seeds", "1", "--no-report", "--set", f"data.root={tmp_path / 'data'}",
            "--set", "epochs=1", "--set", "data.options={size: 16, val_size: 2, image_ext: .png}",
            "--set", "model.options={depth: 18, width: 4, stem: cifar}", "--set", "threads=1"], capsys)
    summaries = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*/summary.json"))]
    assert len(summaries) == 4 and all(s["test"]["n"] == 3 * 16 * 16 for s in summaries)
