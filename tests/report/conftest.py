"""Fixtures: a tiny real suite (2 objectives x 2 seeds, 2-epoch MLP on synthetic data) and derived run folders."""

from __future__ import annotations

import json
import shutil

import matplotlib
import pytest

matplotlib.use("Agg")

TINY_SUITE = {
    "base": {"epochs": 2, "quiet": True, "optim": {"lr": 0.05}, "eval": {"posthoc": ["ts"]},
             "data": {"batch_size": 64, "options": {"train_size": 192, "val_size": 160, "test_size": 240, "dim": 8}}},
    "datasets": {"synthetic": {"data": {"name": "synthetic"}, "model": {"name": "mlp"}}},
    "objectives": {"ce": {"loss": {"name": "ce"}}, "ls": {"loss": {"name": "ls", "options": {"smoothing": 0.1}}}},
}


@pytest.fixture(scope="session")
def suite_dir(tmp_path_factory, worker_id):
    """A complete suite directory written by the real trainer and aggregate (read-only: copy before editing).

    Trained once per test session: pytest-xdist workers share it through a file lock in the common temp root.
    """
    from filelock import FileLock

    from caltrain.train.suite import Suite, run_suite

    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent
    out = root / "report-tiny-suite"
    with FileLock(str(out) + ".lock"):
        if not (out / "results.json").exists():
            suite = Suite(name="tiny", description="2 objectives x 2 seeds", seeds=(0, 1), **TINY_SUITE)
            result = run_suite(suite, out, log=lambda s: None)
            assert not result["failed"], result["failed"]
            for run in (out / "runs").iterdir():
                save_calibrators(run)
    return out


def save_calibrators(run_root, names=("ts",)):
    """Write the run's calibrators with ``compare(...).save`` as the end of a run does (when it has not already).

    The calibrators are fitted on the run's validation logits under the run's convention, exactly as in
    ``summary.json``'s ``posthoc`` entry (the test checks that the two agree).
    """
    from caltrain.posthoc import RUN_ABSTENTION, compare
    from caltrain.train.run_dir import RunDir
    from caltrain.utils.io import load_arrays

    run = RunDir(run_root)
    if all(run.calibrator(n).is_file() for n in names):
        return
    val, test = (load_arrays(run.logits(split)) for split in ("val", "test"))
    abstention = RUN_ABSTENTION if run.read_summary().get("abstention") else None
    compare((val["logits"], val["labels"]), (test["logits"], test["labels"]), list(names),
            abstention=abstention).save(run)


@pytest.fixture(scope="session")
def run_dir(suite_dir):
    """One complete run directory of the suite."""
    return suite_dir / "runs" / "synthetic__ce__seed0"


@pytest.fixture
def curvature_run(run_dir, tmp_path):
    """A copy of a run whose metrics.jsonl also holds curvature records (as the tracker writes them)."""
    dst = tmp_path / "curv"
    shutil.copytree(run_dir, dst)
    records = [json.loads(line) for line in (dst / "metrics.jsonl").read_text().splitlines()]
    extra = [{"epoch": 0.5 * k, "step": 4 * k,
              "curvature": {"gn_sharpness": 2.0 + k ** 1.5, "gn_iterations": 10, "batch_sharpness": 1.0 + k,
                            "margin_tail": 0.1, "log_margin_tail": -2.3, "ece": 0.05 + 0.01 * k + 0.002 * (k % 2)}}
             for k in range(1, 7)]
    (dst / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records + extra))
    return dst


@pytest.fixture(scope="session")
def suite_reports(suite_dir):
    """``{"html": path, "md": path, "report": Report}`` of the tiny suite, drawn once per session (shared lock)."""
    import pickle

    from filelock import FileLock

    from caltrain.report.document import build_report
    from caltrain.report.html import render_html
    from caltrain.report.markdown import render_markdown

    out = suite_dir.parent / "report-tiny-suite-reports"
    with FileLock(str(out) + ".lock"):
        if not (out / "report.pkl").exists():
            out.mkdir(exist_ok=True)
            report = build_report(suite_dir)
            (out / "report.html").write_text(render_html(report))
            md = out / "md" / "report.md"
            md.parent.mkdir()
            md.write_text(render_markdown(report, out=md, files_dir=md.parent / "report_files"))
            (out / "report.pkl").write_bytes(pickle.dumps(report))
    return {"html": out / "report.html", "md": out / "md" / "report.md",
            "report": pickle.loads((out / "report.pkl").read_bytes())}


@pytest.fixture
def abstention_run(run_dir, tmp_path):
    """A copy of a run turned into a K+1-output run (an extra "unknown" logit) with the with_unknown summary."""
    import numpy as np
    import torch

    from caltrain import metrics
    from caltrain.utils.io import atomic_write_json, load_arrays, read_json, save_npz

    dst = tmp_path / "abst"
    shutil.copytree(run_dir, dst)
    rng = np.random.default_rng(0)
    summary = read_json(dst / "summary.json")
    for split in ("val", "test"):
        arrays = load_arrays(dst / f"logits_{split}.npz")
        z = np.concatenate([arrays["logits"], rng.normal(size=(len(arrays["labels"]), 1))], axis=1)
        save_npz(dst / f"logits_{split}.npz", logits=z, labels=arrays["labels"])
        summary[split] = metrics.summarize(torch.softmax(torch.from_numpy(z), 1), torch.from_numpy(arrays["labels"]),
                                           abstention="with_unknown")
    summary["abstention"] = "with_unknown"
    atomic_write_json(dst / "summary.json", summary)
    return dst
