"""Shipped suites are valid grids of registered objectives; an interrupted suite resumes; Ray runs the same grid."""

from __future__ import annotations

import csv
import json

import pytest

from caltrain import data, losses
from caltrain.train import suite as suite_mod
from caltrain.train.run_dir import RESULTS_FORMATS, RunDir, SuiteDir
from caltrain.train.suite import Suite, builtin_suites, expand, load_suite, run_suite

PRESETS = {"quick", "mukhoti2020-cifar10", "socrates-cifar10", "calmo-resnet20-cifar10", "mbls-cifar10",
           "gence-cifar10-lt"}
EMBEDDED = {"synthetic", "synthetic_image", "digits", "digits_flat"}
QUICK_OBJECTIVES = {"ce", "ls", "focal", "flsd53", "mbls", "socrates", "sat", "gence", "calmo", "mmce", "mdca"}


def test_every_preset_is_shipped():
    assert PRESETS <= set(builtin_suites())


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_expands_to_valid_configs_of_registered_objectives(name):
    suite = load_suite(name)
    specs = expand(suite)
    assert len(specs) == len(suite.seeds) * len(suite.datasets) * len(suite.objectives) * max(1, len(suite.variants))
    assert suite.description and suite.data_needed
    for spec in specs:
        cfg = spec.config
        assert cfg.loss.name in losses.names()
        losses.LOSSES.check_kwargs(cfg.loss.name, cfg.loss.options)  # hyperparameter names are the objective's
        assert cfg.data.name in data.names()
    assert len({s.name for s in specs}) == len(specs)  # one directory per grid point


def test_quick_suite_is_embedded_and_covers_the_issue_objectives():
    suite = load_suite("quick")
    specs = expand(suite)
    assert {s.config.data.name for s in specs} <= EMBEDDED
    assert {s.config.loss.name for s in specs} == QUICK_OBJECTIVES
    assert len(suite.seeds) == 3


def test_paper_protocol_values():
    calmo = load_suite("calmo-resnet20-cifar10")
    lrs = {v: frag["optim"]["lr"] for v, frag in calmo.variants.items()}
    assert lrs == {"sgd": 0.01, "adamw": 0.001, "muon": 0.01, "sam": 0.01}
    cfg = expand(calmo)[0].config
    assert cfg.model.name == "resnet20" and cfg.eval.select == "best_val_accuracy"
    steps = cfg.epochs * -(-45000 // cfg.data.batch_size)
    assert 9500 <= steps <= 10500  # "10k steps"
    mukhoti = expand(load_suite("mukhoti2020-cifar10"))[0].config
    assert mukhoti.epochs == 350 and list(mukhoti.schedule.milestones) == [150, 250]
    soc = expand(load_suite("socrates-cifar10"))[0].config
    assert soc.schedule.name == "step" and soc.schedule.step_size == 25 and soc.schedule.gamma == 0.5


def test_unknown_suite_lists_the_shipped_ones():
    with pytest.raises(ValueError, match="quick"):
        load_suite("no-such-suite")


def _tiny_suite() -> Suite:
    return Suite(
        name="tiny", description="test", seeds=(0, 1),
        base={"epochs": 2, "quiet": True, "eval": {"posthoc": ["ts"]}, "optim": {"name": "adamw", "lr": 0.003,
                                                                               "weight_decay": 0.0}},
        datasets={"synthetic": {"data": {"name": "synthetic", "batch_size": 64,
                                         "options": {"train_size": 192, "val_size": 96, "test_size": 128, "dim": 8}},
                                "model": {"name": "mlp"}}},
        objectives={"ce": {"loss": {"name": "ce"}}, "ls": {"loss": {"name": "ls", "options": {"smoothing": 0.1}}}},
    )


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_interrupted_suite_resumes_and_aggregates(tmp_path, monkeypatch):
    suite = _tiny_suite()
    real = suite_mod._run_one
    calls = []

    def interrupt_third(*args):
        calls.append(args[1])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(suite_mod, "_run_one", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, tmp_path, log=lambda s: None)
    monkeypatch.setattr(suite_mod, "_run_one", real)
    done = [p for p in (tmp_path / "runs").iterdir() if RunDir(p).is_complete()]
    assert len(done) == 2
    result = run_suite(suite, tmp_path, log=lambda s: None)
    assert result["runs"] == 4 and result["skipped"] == 2 and not result["failed"]
    rows = _rows(tmp_path / "results.csv")
    assert sorted(r["objective"] for r in rows) == ["ce", "ls"]
    assert all(int(r["n_seeds"]) == 2 for r in rows)
    for r in rows:
        accs = [json.loads((tmp_path / "runs" / f"synthetic__{r['objective']}__seed{s}" / "summary.json")
                           .read_text())["test"]["accuracy"] for s in (0, 1)]
        assert float(r["accuracy_mean"]) == pytest.approx(sum(accs) / 2)
    _assert_written_names_come_from_run_dir(tmp_path)


def _assert_written_names_come_from_run_dir(root):
    """Every file of a suite and of its runs is one RunDir / SuiteDir names (one owner of the layout)."""
    suite = SuiteDir(root)
    assert sorted(p.name for p in root.iterdir()) == sorted(
        p.name for p in (suite.meta, suite.runs, *(suite.results(f) for f in RESULTS_FORMATS)))
    for name in suite.run_names():
        run = suite.run(name)
        named = {run.config, run.meta, run.labels, run.metrics, run.checkpoint, run.best, run.summary,
                 run.logits("val"), run.logits("test"), run.logits("ood"), run.calibrators, run.marker,
                 run.lockfile, run.fingerprint}
        written = set(run.root.iterdir())
        assert written <= named and {run.labels, run.summary, run.logits("test"), run.marker,
                                     run.fingerprint} <= written, written - named
        assert {p.name for p in named} <= set(RunDir.KNOWN) and not run.foreign_files()
        assert run.read_labels()["seed"] in (0, 1)
        assert all(run.calibrator(c).is_file() for c in run.saved_calibrators())


def test_ray_executor_runs_the_same_grid(tmp_path):
    ray = pytest.importorskip("ray")
    suite = _tiny_suite()
    local = run_suite(suite, tmp_path / "local", log=lambda s: None)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = run_suite(suite, tmp_path / "ray", executor="ray", log=lambda s: None)
    finally:
        ray.shutdown()
    assert remote["runs"] == 4 and not remote["failed"]
    by_key = lambda rows: {r["objective"]: r for r in rows}  # noqa: E731
    a, b = by_key(_rows(tmp_path / "local" / "results.csv")), by_key(_rows(tmp_path / "ray" / "results.csv"))
    assert set(a) == set(b) == {"ce", "ls"}
    for k in a:  # same seeds, same data, same model: the numbers agree (one CPU thread in both)
        assert float(b[k]["accuracy_mean"]) == pytest.approx(float(a[k]["accuracy_mean"]), abs=0.02)


def test_every_run_is_validated_before_the_first_starts(tmp_path, monkeypatch):
    # a typo in the last objective of a grid used to surface only when its run came up
    from dataclasses import replace

    from caltrain.train.config import ConfigError

    suite = _tiny_suite()
    objectives = {**suite.objectives, **{f"ls-{k}": {"loss": {"name": "ls"}} for k in range(38)},
                  "typo": {"loss": {"name": "focal", "options": {"gama": 2}}}}
    monkeypatch.setattr(suite_mod, "_run_one", lambda *a: pytest.fail("a run started"))
    with pytest.raises(ConfigError, match=r"suite tiny, run synthetic__typo__seed0: .*loss.options.*'gama'"):
        run_suite(replace(suite, objectives=objectives), tmp_path / "out", log=lambda s: None)
    assert not (tmp_path / "out").exists()


def test_a_missing_ray_fails_before_the_suite_folder_is_written(tmp_path, monkeypatch):
    # regression: without Ray, --executor ray printed the plan and wrote suite.json, then failed
    import importlib.util

    from caltrain.train.suite import load_suite, run_suite

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(ValueError, match="executor 'ray' needs Ray"):
        run_suite(load_suite("quick"), tmp_path / "out", executor="ray")
    assert not (tmp_path / "out").exists()
