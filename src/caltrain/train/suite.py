"""Benchmark suites: a grid of datasets x objectives x variants x seeds, run and aggregated.

A suite is a YAML file (the shipped ones live in ``caltrain/train/suites/``)::

    description: one line
    data_needed: what must be under --set data.root=... (the embedded suites need nothing)
    seeds: [0, 1, 2]
    base: {epochs: 15, quiet: true}                 # config fragment applied to every run
    datasets:                                       # label -> fragment (data and model)
      synthetic: {data: {name: synthetic}, model: {name: mlp}}
    objectives:                                     # label -> fragment (the loss and anything it needs)
      ce: {loss: {name: ce}}
      ls-0.05: {loss: {name: ls, options: {smoothing: 0.05}}}
    variants:                                       # optional extra axis, e.g. optimisers
      sgd: {optim: {name: sgd}}

Each grid point becomes one run directory ``OUT/runs/<dataset>__<objective>[__<variant>]__seed<k>`` holding a
``labels.json`` with its grid coordinates. Runs whose ``summary.json`` exists are skipped, so an interrupted
suite resumes where it stopped; a run interrupted mid-way resumes from its checkpoint. Fragments merge in the
order base <- dataset <- objective <- variant <- command-line overrides.
"""

from __future__ import annotations

import itertools
import sys
import traceback
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Sequence

from caltrain.train.config import ConfigError, TrainConfig, _deep_merge, apply_overrides, build_config, check_data
from caltrain.train.run_dir import RunDir, SuiteDir
from caltrain.utils.io import atomic_write_json

__all__ = ["RunSpec", "Suite", "builtin_suites", "expand", "load_suite", "run_suite"]


@dataclass(frozen=True)
class Suite:
    """A parsed suite file."""

    name: str
    description: str
    seeds: tuple[int, ...]
    base: dict[str, Any]
    datasets: dict[str, dict[str, Any]]
    objectives: dict[str, dict[str, Any]]
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_needed: str = "nothing (embedded data)"


@dataclass(frozen=True)
class RunSpec:
    """One grid point: its labels, its run directory name and its configuration."""

    labels: dict[str, Any]
    name: str
    config: TrainConfig


def builtin_suites() -> list[str]:
    """Names of the suites shipped with caltrain."""
    root = resources.files("caltrain.train") / "suites"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def load_suite(name_or_path: str) -> Suite:
    """A shipped suite by name, or a suite YAML file by path.

    Raises:
        ValueError: unknown suite name (listing the shipped ones) or a malformed file.
    """
    import yaml

    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        text, name = path.read_text(), path.stem
    else:
        if name_or_path not in builtin_suites():
            raise ValueError(
                f"unknown suite {name_or_path!r}: expected a suite YAML file or one of {', '.join(builtin_suites())}"
            )
        text = (resources.files("caltrain.train") / "suites" / f"{name_or_path}.yaml").read_text()
        name = name_or_path
    raw = yaml.safe_load(text) or {}
    allowed = {"description", "seeds", "base", "datasets", "objectives", "variants", "data_needed"}
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(f"suite {name}: unknown key(s) {sorted(unknown)}; valid keys: {sorted(allowed)}")
    for key in ("datasets", "objectives"):
        if not raw.get(key):
            raise ValueError(f"suite {name}: {key!r} must list at least one entry")
    return Suite(
        name=name,
        description=raw.get("description", ""),
        seeds=tuple(int(s) for s in raw.get("seeds", [0])),
        base=raw.get("base") or {},
        datasets=raw["datasets"],
        objectives=raw["objectives"],
        variants=raw.get("variants") or {},
        data_needed=raw.get("data_needed", "nothing (embedded data)"),
    )


def expand(suite: Suite, overrides: Sequence[str] = (), seeds: Sequence[int] | None = None) -> list[RunSpec]:
    """Every run of the grid, each with its validated configuration."""
    variants = suite.variants or {"": {}}
    specs = []
    for (d, dfrag), (o, ofrag), (v, vfrag), seed in itertools.product(
        suite.datasets.items(), suite.objectives.items(), variants.items(), seeds or suite.seeds
    ):
        tree = _deep_merge(_deep_merge(_deep_merge(suite.base, dfrag or {}), ofrag or {}), vfrag or {})
        tree["seed"] = seed
        tree = apply_overrides(tree, overrides)
        name = "__".join(part for part in (d, o, v, f"seed{seed}") if part)
        try:
            config = build_config(base=tree)
        except ConfigError as err:  # every run is built before the first starts: name the one at fault
            raise ConfigError(f"suite {suite.name}, run {name}: {err}") from None
        labels = {"dataset": d, "model": config.model.name, "objective": o, "variant": v, "seed": seed}
        specs.append(RunSpec(labels=labels, name=name, config=config))
    return specs


def _run_one(config_dict: dict[str, Any], run_dir: str, labels: dict[str, Any]) -> str | None:
    """Train one grid point (resuming it if a checkpoint exists); returns an error message or None."""
    from caltrain.train.trainer import train

    run = RunDir(Path(run_dir))
    try:
        config = TrainConfig.model_validate(config_dict)
        run.write_labels(labels)
        resume = run.checkpoint.exists()
        train(config, run.root, resume=resume)
        return None
    except (ValueError, TypeError, KeyError, FileNotFoundError) as err:  # a clear message is enough (missing data...)
        return f"{run.root.name}: {type(err).__name__}: {err}"
    except Exception as err:  # one failed run must not stop the suite: it is reported at the end, with where it broke
        return f"{run.root.name}: {type(err).__name__}: {err}\n{traceback.format_exc(limit=3)}"


def run_suite(
    suite: Suite,
    out_dir: str | Path,
    *,
    executor: str = "local",
    address: str | None = None,
    overrides: Sequence[str] = (),
    seeds: Sequence[int] | None = None,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
) -> dict[str, Any]:
    """Run every incomplete grid point of ``suite`` under ``out_dir/runs`` and aggregate the results.

    Args:
        executor: "local" (sequential, in this process) or "ray" (one Ray task per run; ``address`` of an
            existing cluster, or a local Ray instance when None).
    Returns:
        ``{"runs": n, "skipped": n_complete_before, "failed": [messages], "results": aggregate rows}``.
    """
    from caltrain.train.aggregate import aggregate

    out = SuiteDir(out_dir)
    specs = expand(suite, overrides, seeds)
    todo = [s for s in specs if not out.run(s.name).is_complete()]
    check_data(s.config for s in todo)  # missing dataset files: one message before any run starts
    log(f"suite {suite.name}: {len(specs)} runs, {len(specs) - len(todo)} already complete, {len(todo)} to run")
    jobs = [(s.config.model_dump(mode="json"), str(out.run(s.name).root), s.labels) for s in todo]
    if executor == "local":
        failures = []
        for k, job in enumerate(jobs, 1):
            log(f"[{k}/{len(jobs)}] {Path(job[1]).name}")
            err = _run_one(*job)
            if err:
                failures.append(err)
    elif executor == "ray":
        failures = _run_with_ray(jobs, address, log)
    else:
        raise ValueError(f"executor: expected 'local' or 'ray', got {executor!r}")
    for err in failures:
        log(f"FAILED {err}")
    atomic_write_json(out.meta, {"name": suite.name, "description": suite.description,
                                 "runs": [s.name for s in specs], "overrides": list(overrides)})
    rows = aggregate(out.root, runs=[s.name for s in specs])
    return {"runs": len(specs), "skipped": len(specs) - len(todo), "failed": failures, "results": rows}


def _run_with_ray(jobs: list[tuple], address: str | None, log: Callable[[str], None]) -> list[str]:
    try:
        import ray
    except ImportError as err:
        raise ValueError("executor 'ray' needs Ray: pip install 'caltrain[ray]'") from err
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        remote = ray.remote(num_cpus=1)(_run_one)
        refs = {remote.remote(*job): Path(job[1]).name for job in jobs}
        failures = []
        pending = list(refs)
        done_count = 0
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            done_count += 1
            err = ray.get(done[0])
            log(f"[{done_count}/{len(jobs)}] {refs[done[0]]} {'failed' if err else 'done'}")
            if err:
                failures.append(err)
        return failures
    finally:
        if started_here:
            ray.shutdown()


def read_labels(run_root: str | Path) -> dict[str, Any]:
    """The grid coordinates a suite wrote into a run directory (``labels.json``, via :class:`RunDir`).

    Raises:
        FileNotFoundError: the run directory holds no ``labels.json``.
    """
    labels = RunDir(Path(run_root)).read_labels()
    if labels is None:
        raise FileNotFoundError(f"run_root: {run_root} holds no labels.json (not a run of a suite)")
    return labels
