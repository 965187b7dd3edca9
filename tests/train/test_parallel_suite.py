"""caltrain bench --jobs N: a grid trained in worker processes gives the sequential results; timings and ETA."""

from __future__ import annotations

import csv
import json

import pytest

import caltrain.train.suite as suite_mod
from caltrain.train.config import build_config
from caltrain.train.run_dir import RunDir
from caltrain.train.suite import Suite, default_jobs, run_suite

#: keys whose values are wall times (they differ between any two runs)
TIMING = {"train_seconds", "time_s", "seconds"}


def _tiny_suite() -> Suite:
    return Suite(
        name="tiny", description="test", seeds=(0, 1),
        base={"epochs": 2, "quiet": True, "eval": {"posthoc": ["ts"]},
              "optim": {"name": "adamw", "lr": 0.003, "weight_decay": 0.0}},
        datasets={"synthetic": {"data": {"name": "synthetic", "batch_size": 64,
                                         "options": {"train_size": 192, "val_size": 96, "test_size": 128, "dim": 8}},
                                "model": {"name": "mlp"}}},
        objectives={"ce": {"loss": {"name": "ce"}}, "ls": {"loss": {"name": "ls", "options": {"smoothing": 0.1}}}},
    )


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _rows(path):
    with open(path) as f:
        return [{k: v for k, v in row.items() if "seconds" not in k} for row in csv.DictReader(f)]


def test_two_jobs_give_the_sequential_results(tmp_path):
    suite = _tiny_suite()
    seq_log, par_log = [], []
    seq = run_suite(suite, tmp_path / "seq", log=seq_log.append)
    par = run_suite(suite, tmp_path / "par", jobs=2, log=par_log.append)
    assert seq["runs"] == par["runs"] == 4 and not seq["failed"] and not par["failed"]
    assert _rows(tmp_path / "seq" / "results.csv") == _rows(tmp_path / "par" / "results.csv")
    names = sorted(p.name for p in (tmp_path / "seq" / "runs").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "par" / "runs").iterdir()) and len(names) == 4
    for name in names:
        a, b = RunDir(tmp_path / "seq" / "runs" / name), RunDir(tmp_path / "par" / "runs" / name)
        assert _without_timings(json.loads(a.summary.read_text())) == _without_timings(json.loads(b.summary.read_text()))
        assert [_without_timings(json.loads(line)) for line in a.metrics.read_text().splitlines()] == \
               [_without_timings(json.loads(line)) for line in b.metrics.read_text().splitlines()]
        # each worker had a budget of cores // 2 threads, and recorded what it chose
        assert json.loads(b.meta.read_text())["threads"]["threads"] == 1
    assert any("2 runs at a time" in line for line in par_log)
    finished = [line for line in par_log if ": trained in " in line]
    assert len(finished) == 4 and all("elapsed" in line for line in finished)
    assert sum("left)" in line for line in finished) == 3  # an ETA after every run but the last
    # a second call skips every run, whichever executor made them
    again = run_suite(suite, tmp_path / "par", jobs=2, log=lambda s: None)
    assert again["skipped"] == 4 and not again["failed"]


def test_sequential_runs_print_their_time_and_the_grid_eta(tmp_path):
    log = []
    run_suite(_tiny_suite(), tmp_path, log=log.append)
    finished = [line for line in log if ": trained in " in line]
    assert [line.split("]")[0] for line in finished] == ["[1/4", "[2/4", "[3/4", "[4/4"]
    assert all("left)" in line for line in finished[:3]) and "left" not in finished[3]


def test_a_dead_worker_fails_its_run_and_the_suite_goes_on(tmp_path, monkeypatch):
    import concurrent.futures as cf
    from concurrent.futures.process import BrokenProcessPool

    class Broken:  # a pool whose every job dies with its worker
        def __init__(self, *a, **k):
            pass

        def submit(self, fn, *args, **kwargs):
            future = cf.Future()
            future.set_exception(BrokenProcessPool("killed"))
            return future

        def shutdown(self, *a, **k):
            pass

    monkeypatch.setattr(cf, "ProcessPoolExecutor", Broken)
    result = run_suite(_tiny_suite(), tmp_path, jobs=2, log=lambda s: None)
    assert len(result["failed"]) == 4 and all("worker process died" in m for m in result["failed"])


def test_jobs_is_checked_before_anything_is_written(tmp_path):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="jobs: expected an integer >= 1"):
            run_suite(_tiny_suite(), tmp_path / "out", jobs=bad)
    assert not (tmp_path / "out").exists()


def test_default_jobs_is_one_per_core_and_one_on_a_gpu(monkeypatch):
    import caltrain.utils.threads as threads

    import os

    monkeypatch.setattr(threads, "usable_cores", lambda: 6)
    cpu = build_config(base={"device": "cpu"})
    real = os.sysconf
    monkeypatch.setattr(os, "sysconf", lambda name: 64 << 18 if name == "SC_AVPHYS_PAGES" else real(name))
    page = real("SC_PAGE_SIZE")
    assert default_jobs([cpu, cpu]) == min(6, (64 << 18) * page // suite_mod.JOB_MEMORY_BYTES)
    monkeypatch.setattr(os, "sysconf", lambda name: (3 << 30) // page if name == "SC_AVPHYS_PAGES" else real(name))
    assert default_jobs([cpu, cpu]) == 3  # one job per GiB of available memory
    assert default_jobs([cpu, build_config(base={"device": "cuda"})]) == 1


def test_cli_jobs_option_reaches_the_suite(tmp_path, monkeypatch, capsys):
    from caltrain.cli.main import main

    seen = {}
    real = suite_mod.run_suite

    def spy(*args, **kwargs):
        seen["jobs"] = kwargs["jobs"]
        return real(*args, **{**kwargs, "jobs": 1})

    monkeypatch.setattr(suite_mod, "run_suite", spy)
    suite = tmp_path / "one.yaml"
    suite.write_text("seeds: [0]\nbase: {epochs: 1, quiet: true, eval: {posthoc: []}}\n"
                     "datasets:\n  synthetic: {data: {name: synthetic, options: {train_size: 64, val_size: 32, "
                     "test_size: 32, dim: 4}}}\nobjectives:\n  ce: {loss: {name: ce}}\n")
    assert main(["bench", str(suite), "--out", str(tmp_path / "out"), "--jobs", "3", "--no-report"]) == 0
    assert seen["jobs"] == 3
    assert main(["bench", str(suite), "--out", str(tmp_path / "out2"), "--no-report"]) == 0
    assert seen["jobs"] == default_jobs([build_config()])
    assert main(["bench", str(suite), "--out", str(tmp_path / "out3"), "--jobs", "0"]) == 2
    assert "--jobs: expected an integer >= 1" in capsys.readouterr().err
