"""Aggregation checked on a hand-made set of run directories with known numbers."""

import csv
import json
import math

import pytest

from caltrain.train.aggregate import aggregate, epochs_to_fraction
from caltrain.utils.io import atomic_write_json


def _metrics(acc, ece):
    return {"accuracy": acc, "ece": ece, "adaece": ece + 0.01, "classwise_ece": ece / 2, "nll": 1 - acc,
            "brier": 0.5 * (1 - acc), "aurc": 0.1}


def _make_run(root, name, labels, final_acc, final_ece, val_acc_curve, test_ece_curve, ts_ece):
    run = root / "runs" / name
    run.mkdir(parents=True)
    atomic_write_json(run / "labels.json", labels)
    atomic_write_json(run / "summary.json", {
        "test": _metrics(final_acc, final_ece), "val": _metrics(final_acc, final_ece),
        "posthoc": {"ts": {**_metrics(final_acc, ts_ece)}, "ats": {**_metrics(final_acc, ts_ece / 2)}},
        "epochs": len(val_acc_curve), "selected_epoch": len(val_acc_curve),
    })
    lines = []
    for e, (va, te) in enumerate(zip(val_acc_curve, test_ece_curve), 1):
        lines.append({"epoch": e, "step": 10 * e, "train": {"loss": 1.0 / e, "accuracy": va},
                      "val": {"accuracy": va, "ece": te, "nll": 1.0}, "test": {"accuracy": va, "ece": te, "nll": 1.0}})
        lines.append({"epoch": e + 0.5, "step": 10 * e + 5, "val": {"accuracy": 0.0}})  # step records are ignored
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


@pytest.fixture
def suite_dir(tmp_path):
    base = {"dataset": "digits", "model": "cnn", "variant": ""}
    _make_run(tmp_path, "a0", {**base, "objective": "ce", "seed": 0}, 0.90, 0.10, [0.5, 0.86, 0.9], [0.2, 0.1, 0.10], 0.02)
    _make_run(tmp_path, "a1", {**base, "objective": "ce", "seed": 1}, 0.94, 0.06, [0.6, 0.7, 0.94], [0.2, 0.1, 0.06], 0.04)
    _make_run(tmp_path, "b0", {**base, "objective": "mbls", "seed": 0}, 0.92, 0.03, [0.9, 0.91, 0.92], [0.05, 0.04, 0.03], 0.02)
    # an incomplete run (no summary) is not aggregated
    (tmp_path / "runs" / "c0").mkdir()
    return tmp_path


def test_epochs_to_95():
    assert epochs_to_fraction([0.5, 0.86, 0.9]) == 2  # 0.95 * 0.9 = 0.855
    assert epochs_to_fraction([0.6, 0.7, 0.94]) == 3
    assert epochs_to_fraction([]) is None


def test_aggregate_numbers(suite_dir):
    rows = aggregate(suite_dir)
    assert [(r["objective"], r["n_seeds"]) for r in rows] == [("ce", 2), ("mbls", 1)]
    ce = rows[0]
    assert ce["accuracy_mean"] == pytest.approx(0.92)
    assert ce["accuracy_std"] == pytest.approx(math.sqrt(2 * 0.02**2))  # sample std of {0.90, 0.94}
    assert ce["ece_mean"] == pytest.approx(0.08)
    assert ce["ts_ece_mean"] == pytest.approx(0.03) and ce["ats_ece_mean"] == pytest.approx(0.015)
    assert ce["epochs_to_95_mean"] == pytest.approx(2.5)
    # across-seed std of test ECE at the last 3 epochs: 0, 0, std{0.10, 0.06}; averaged
    assert ce["ece_curve_std"] == pytest.approx((0 + 0 + math.sqrt(2 * 0.02**2)) / 3)
    assert rows[1]["accuracy_std"] is None  # one seed: no std


def test_aggregate_files(suite_dir):
    aggregate(suite_dir)
    with open(suite_dir / "results.csv") as fh:
        table = list(csv.DictReader(fh))
    required = ["dataset", "model", "objective", "n_seeds", "accuracy_mean", "accuracy_std", "ece_mean", "ece_std",
                "adaece_mean", "nll_mean", "brier_mean", "ts_ece_mean", "ats_ece_mean", "epochs_to_95_mean"]
    assert all(c in table[0] for c in required)
    assert float(table[0]["ece_mean"]) == pytest.approx(0.08)
    data = json.loads((suite_dir / "results.json").read_text())
    assert [s["seed"] for s in data["rows"][0]["per_seed"]] == [0, 1]
    assert data["rows"][0]["curves"][0]["val_accuracy"] == [0.5, 0.86, 0.9]
    md = (suite_dir / "results.md").read_text()
    assert "| digits | cnn | ce | - | 2 | 92.00 ± 2.83 | 8.00 ± 2.83 |" in md


def test_results_computes_the_written_files_without_writing(suite_dir):
    from caltrain.train.aggregate import results
    from caltrain.train.run_dir import SuiteDir

    before = sorted(p.name for p in suite_dir.iterdir())
    rows, document = results(suite_dir)
    assert sorted(p.name for p in suite_dir.iterdir()) == before  # nothing written
    assert aggregate(suite_dir) == rows
    paths = SuiteDir(suite_dir)
    written = sorted(p.name for p in suite_dir.iterdir() if p.is_file())
    assert written == sorted(paths.results(f).name for f in ("csv", "md", "json"))
    assert json.loads(paths.results("json").read_text()) == json.loads(json.dumps(document))
    assert paths.run_names() == ["a0", "a1", "b0", "c0"]
