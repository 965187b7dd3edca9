"""``caltrain report`` on a hand-written run directory, its errors, and the report ``caltrain bench`` writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from caltrain import metrics
from caltrain.cli.main import main
from caltrain.utils.io import atomic_write_json, save_npz


@pytest.fixture
def run_dir(tmp_path):
    """A complete run directory with the trainer's layout (logits, summary, metrics.jsonl, config.yaml)."""
    rng = np.random.default_rng(0)
    run = tmp_path / "run"
    run.mkdir()
    split_summary = {}
    for split, n in (("val", 120), ("test", 150)):
        logits = rng.normal(size=(n, 3)) * 2
        labels = rng.integers(0, 3, n)
        save_npz(run / f"logits_{split}.npz", logits=logits, labels=labels)
        split_summary[split] = metrics.summarize(torch.softmax(torch.from_numpy(logits), 1), torch.from_numpy(labels))
    (run / "config.yaml").write_text(yaml.safe_dump({"data": {"name": "synthetic"}, "model": {"name": "mlp"},
                                                     "loss": {"name": "ce"}, "eval": {"n_bins": 10}, "seed": 0}))
    records = [{"epoch": e, "step": 5 * e, "train": {"loss": 1.0 / e, "accuracy": 0.3 + 0.1 * e},
                "val": split_summary["val"], "test": split_summary["test"]} for e in (1, 2, 3)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    atomic_write_json(run / "summary.json", {**split_summary, "posthoc": {}, "posthoc_params": {}, "epochs": 3,
                                             "selected_epoch": 3, "steps": 15, "train_seconds": 1.0,
                                             "abstention": None})
    return run


def test_report_command_writes_html(run_dir, capsys):
    assert main(["report", str(run_dir), "--quiet", "--dpi", "40", "--max-classes", "2"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == str(run_dir / "report.html")
    text = (run_dir / "report.html").read_text()
    assert "<table" in text and text.count('<svg class="plot"') >= 3 and "10 equal-width bins" in text


def test_report_command_markdown_to_a_chosen_file(run_dir, tmp_path, capsys):
    target = tmp_path / "out" / "r.md"
    assert main(["report", str(run_dir), "--format", "md", "--out", str(target), "--dpi", "40"]) == 0
    assert target.exists() and (target.parent / "r_files").is_dir()
    assert "synthetic: table and verdict" in capsys.readouterr().err  # progress lines on stderr


@pytest.mark.parametrize("argv, message", [
    (["--format", "pdf"], None),
    (["--max-classes", "0"], "--max-classes"),
])
def test_report_command_rejects_bad_options(run_dir, argv, message, capsys):
    if message is None:
        with pytest.raises(SystemExit) as exc:
            main(["report", str(run_dir), *argv])
        assert exc.value.code == 2
    else:
        assert main(["report", str(run_dir), *argv]) == 2
        assert message in capsys.readouterr().err


def test_report_command_on_a_missing_directory_fails_with_status_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "caltrain report: error: path" in capsys.readouterr().err


def test_bench_writes_the_report_at_its_end(tmp_path, capsys):
    suite = tmp_path / "tiny.yaml"
    suite.write_text(yaml.safe_dump({
        "description": "one run", "seeds": [0],
        "base": {"epochs": 1, "quiet": True, "eval": {"posthoc": []},
                 "data": {"batch_size": 64, "options": {"train_size": 128, "val_size": 64, "test_size": 96, "dim": 4}}},
        "datasets": {"synthetic": {"data": {"name": "synthetic"}, "model": {"name": "mlp"}}},
        "objectives": {"ce": {"loss": {"name": "ce"}}},
    }))
    out = tmp_path / "bench"
    assert main(["bench", str(suite), "--out", str(out)]) == 0
    text = (out / "report.html").read_text()
    assert text.count("<tr>") >= 2 and "synthetic__ce__seed0" in text
    assert f"report: {out / 'report.html'}" in capsys.readouterr().err


def test_report_command_json_names_the_report(run_dir, capsys):
    assert main(["report", str(run_dir), "--quiet", "--json", "--dpi", "20", "--max-classes", "2"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"report": str(run_dir / "report.html"), "format": "html"} and err == ""
