"""Benchmark suites: a grid of datasets x objectives x variants x seeds, run and aggregated.

The format (``description``, ``data_needed``, ``imports``, ``seeds``, ``base``, ``datasets``, ``objectives``,
``variants``), how runs are named, reused, set aside and locked, and how a suite names your own components
(``imports:``, ``--import``, entry points) are documented in ``docs/suites.md``. The shipped suites live in
``caltrain/train/suites/``.
"""

from __future__ import annotations

import importlib.util

import itertools
import sys
import time
import traceback
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Sequence

from caltrain.train.config import (ConfigError, TrainConfig, _deep_merge, apply_overrides, build_config, check_data,
                                   config_to_dict)
from caltrain.train.progress import format_duration
from caltrain.train.run_dir import RunDir, RunLockedError, SuiteDir

__all__ = ["RunSpec", "Suite", "builtin_suites", "default_jobs", "expand", "load_suite", "run_suite"]


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
    #: modules to import before the grid is built (names, or .py paths relative to ``folder``)
    imports: tuple[str, ...] = ()
    folder: str | None = None


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
    folder = None
    if path.suffix in (".yaml", ".yml") and path.exists():
        text, name, folder = path.read_text(), path.stem, str(path.resolve().parent)
    else:
        if name_or_path not in builtin_suites():
            raise ValueError(
                f"unknown suite {name_or_path!r}: expected a suite YAML file or one of {', '.join(builtin_suites())}"
            )
        text = (resources.files("caltrain.train") / "suites" / f"{name_or_path}.yaml").read_text()
        name = name_or_path
    raw = yaml.safe_load(text) or {}
    allowed = {"description", "seeds", "base", "datasets", "objectives", "variants", "data_needed", "imports"}
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(f"suite {name}: unknown key(s) {sorted(unknown)}; valid keys: {sorted(allowed)}")
    for key in ("datasets", "objectives"):
        if not raw.get(key):
            raise ValueError(f"suite {name}: {key!r} must list at least one entry")
    imports = raw.get("imports") or []
    if isinstance(imports, str) or not isinstance(imports, list) or not all(isinstance(i, str) for i in imports):
        raise ValueError(f"suite {name}: 'imports' must be a list of module names or .py paths, got {imports!r}")
    return Suite(
        name=name,
        description=raw.get("description", ""),
        seeds=tuple(int(s) for s in raw.get("seeds", [0])),
        base=raw.get("base") or {},
        datasets=raw["datasets"],
        objectives=raw["objectives"],
        variants=raw.get("variants") or {},
        data_needed=raw.get("data_needed", "nothing (embedded data)"),
        imports=tuple(imports),
        folder=folder,
    )


def import_suite_modules(suite: Suite) -> list[str]:
    """Import the suite's ``imports`` (paths relative to its YAML file); the list as recorded."""
    from caltrain.utils.plugins import import_module, is_path

    return [import_module(spec, base=suite.folder if is_path(spec) else None) for spec in suite.imports]


def expand(suite: Suite, overrides: Sequence[str] = (), seeds: Sequence[int] | None = None) -> list[RunSpec]:
    """Every run of the grid, each with its validated configuration (the suite's ``imports`` imported first)."""
    import_suite_modules(suite)
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


def _run_one(config_dict: dict[str, Any], run_dir: str, labels: dict[str, Any], shipped: Sequence[dict] = (),
             wait: bool = False) -> dict[str, Any]:
    """Train one grid point under its lock (resuming it if a checkpoint of the same configuration exists).

    Args:
        shipped: the user's modules (:func:`caltrain.utils.plugins.shipped`), imported before the configuration is
            validated (a Ray worker is a fresh process) and recorded in the run's ``meta.json``.
        wait: wait for the lock when another process holds it (else return at once with status "busy").
    Returns:
        ``{"status": "done" | "skipped" | "busy" | "failed", "message": str | None, "set_aside": path | None,
        "seconds": wall time}``: "skipped" when the run was complete and current (another worker finished it),
        "busy" with the holder.
    """
    start = time.perf_counter()
    outcome = _run_one_timed(config_dict, run_dir, labels, shipped, wait)
    outcome["seconds"] = time.perf_counter() - start
    return outcome


def _run_one_timed(config_dict: dict[str, Any], run_dir: str, labels: dict[str, Any], shipped: Sequence[dict],
                   wait: bool) -> dict[str, Any]:
    from caltrain.train.trainer import train
    from caltrain.utils.plugins import PluginError, import_shipped, record_in_meta

    run = RunDir(Path(run_dir))
    set_aside = None
    try:
        imports = import_shipped(shipped)
    except PluginError as err:
        return {"status": "failed", "message": f"{run.root.name}: {err}", "set_aside": None}
    try:
        with run.lock(wait=wait):
            config = TrainConfig.model_validate(config_dict)
            reason = run.stale_reason(config_to_dict(config))
            if reason:
                set_aside = str(SuiteDir(run.root.parent.parent).set_aside(run.root.name))
            elif run.is_complete():
                return {"status": "skipped", "message": None, "set_aside": None}
            run.write_labels(labels)
            try:
                train(config, run.root, resume=run.checkpoint.exists())
            finally:
                record_in_meta(run.root, imports)
        return {"status": "done", "message": None, "set_aside": set_aside, "reason": reason}
    except RunLockedError as err:
        return {"status": "busy", "message": str(err), "set_aside": None}
    except (ValueError, TypeError, KeyError, FileNotFoundError) as err:  # a clear message is enough (missing data...)
        return {"status": "failed", "message": f"{run.root.name}: {type(err).__name__}: {err}", "set_aside": set_aside}
    except Exception as err:  # one failed run must not stop the suite: it is reported at the end, with where it broke
        return {"status": "failed", "message": f"{run.root.name}: {type(err).__name__}: {err}\n"
                f"{traceback.format_exc(limit=3)}", "set_aside": set_aside}


class _Clock:
    """Per-run time and the grid's ETA: the wall time so far per finished run, times the runs left."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def finished(self, outcome: dict[str, Any]) -> str:
        self.done += 1
        elapsed = time.perf_counter() - self.start
        took = f" in {format_duration(outcome['seconds'])}" if "seconds" in outcome else ""
        left = self.total - self.done
        eta = f"; about {format_duration(elapsed / self.done * left)} left" if left else ""
        return f"{took} (elapsed {format_duration(elapsed)}{eta})"


def _log_outcome(log: Callable[[str], None], prefix: str, name: str, outcome: dict[str, Any], timing: str = "") -> None:
    """One line per outcome (and one more when a stale run was set aside); ``timing`` follows a finished run."""
    if outcome.get("set_aside"):
        log(f"{prefix} {name}: stale ({outcome.get('reason')}); the old run was moved to {outcome['set_aside']}")
    status = outcome["status"]
    if status == "busy":
        log(f"{prefix} {name}: in progress in another process ({outcome['message']}); coming back to it at the end")
    elif status == "skipped":
        log(f"{prefix} {name}: completed by another process")
    else:
        log(f"{prefix} {name}: {'trained' if status == 'done' else 'failed'}{timing}")


def run_suite(
    suite: Suite,
    out_dir: str | Path,
    *,
    executor: str = "local",
    address: str | None = None,
    overrides: Sequence[str] = (),
    seeds: Sequence[int] | None = None,
    imports: Sequence[str] = (),
    jobs: int = 1,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
) -> dict[str, Any]:
    """Run every incomplete or stale grid point of ``suite`` under ``out_dir/runs`` and aggregate the results.

    Args:
        executor: "local" (on this machine) or "ray" (one Ray task per run; ``address`` of an existing
            cluster, or a local Ray instance when None).
        jobs: with the local executor, how many runs train at once: 1 trains them one after the other in this
            process; N > 1 in N spawned worker processes, each with a thread budget of ``cores // N``
            (:func:`caltrain.utils.threads.set_budget`; :func:`default_jobs` is the CLI's default). A script
            calling this with N > 1 needs the usual ``if __name__ == "__main__":`` guard (the workers import
            the main module).
        imports: modules to import first (``--import``: names or .py paths), besides the suite's own ``imports``;
            recorded in ``suite.json`` and each run's ``meta.json``, and imported by every Ray task.
    Returns:
        ``{"runs": n, "skipped": n_current_before, "stale": n_stale_before, "failed": [messages],
        "results": aggregate rows}``.
    Raises:
        ForeignFilesError: ``out_dir`` is not absent, empty or a caltrain suite (nothing is written).
    """
    from caltrain.train.aggregate import aggregate

    from caltrain.utils.plugins import import_modules, shipped

    if executor not in ("local", "ray"):
        raise ValueError(f"executor: expected 'local' or 'ray', got {executor!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs: expected an integer >= 1, got {jobs!r}")
    if executor == "ray" and importlib.util.find_spec("ray") is None:  # before anything is written or printed
        raise ValueError("executor 'ray' needs Ray: pip install 'caltrain[ray]'")
    out = SuiteDir(out_dir)
    imports = list(dict.fromkeys([*import_modules(imports), *import_suite_modules(suite)]))
    specs = expand(suite, overrides, seeds)
    out.check_writable()
    stale = {s.name: out.run(s.name).stale_reason(config_to_dict(s.config)) for s in specs}
    stale = {name: why for name, why in stale.items() if why}
    todo = [s for s in specs if s.name in stale or not out.run(s.name).is_complete()]
    check_data(s.config for s in todo)  # missing dataset files: one message before any run starts
    log(f"suite {suite.name}: {len(specs)} runs, {len(specs) - len(todo)} already complete, {len(todo)} to run"
        + (f" ({len(stale)} stale: moved to {out.stale}/ and rerun)" if stale else ""))
    out.write_meta({"name": suite.name, "description": suite.description,
                    "runs": [s.name for s in specs], "overrides": list(overrides), "imports": imports})
    packed = shipped(imports)
    work = [(s.config.model_dump(mode="json"), str(out.run(s.name).root), s.labels, packed) for s in todo]
    if executor == "local" and min(jobs, len(work)) > 1:
        failures = _run_in_processes(work, min(jobs, len(work)), log)
    elif executor == "local":
        failures, busy = [], []
        clock = _Clock(len(work))
        for k, job in enumerate(work, 1):
            log(f"[{k}/{len(work)}] {Path(job[1]).name}")
            outcome = _run_one(*job)
            _log_outcome(log, f"[{k}/{len(work)}]", Path(job[1]).name, outcome,
                         clock.finished(outcome) if outcome["status"] != "busy" else "")
            if outcome["status"] == "failed":
                failures.append(outcome["message"])
            elif outcome["status"] == "busy":
                busy.append(job)
        for k, job in enumerate(busy, 1):  # runs other processes held: wait for them, then finish them if needed
            log(f"[waiting {k}/{len(busy)}] {Path(job[1]).name}")
            outcome = _run_one(*job, wait=True)
            _log_outcome(log, f"[waiting {k}/{len(busy)}]", Path(job[1]).name, outcome, clock.finished(outcome))
            if outcome["status"] == "failed":
                failures.append(outcome["message"])
    else:
        failures = _run_with_ray(work, address, log)
    for err in failures:
        log(f"FAILED {err}")
    rows = aggregate(out.root, runs=[s.name for s in specs])
    return {"runs": len(specs), "skipped": len(specs) - len(todo), "stale": len(stale), "failed": failures,
            "results": rows}


#: Memory a worker of a parallel suite is assumed to need (torch, the data, the model): caps the default jobs.
JOB_MEMORY_BYTES = 1 << 30


def default_jobs(configs: Sequence[TrainConfig]) -> int:
    """``caltrain bench``'s default ``--jobs``: one per core this process may use, or 1 when a run uses a GPU.

    Each worker then gets one thread (``cores // jobs``): a grid of runs is divided between the cores better
    than one run's operations are (BENCHMARKS.md, "Speed on a busy machine"); runs on one GPU share it better
    one at a time. At most one job per :data:`JOB_MEMORY_BYTES` (1 GiB) of available memory.
    """
    import os

    import torch

    from caltrain.utils.threads import usable_cores

    for c in configs:
        if c.device.startswith("cuda") or c.device == "mps" or (c.device == "auto" and torch.cuda.is_available()):
            return 1
    jobs = usable_cores()
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        jobs = min(jobs, max(1, available // JOB_MEMORY_BYTES))
    except (AttributeError, ValueError, OSError):  # not POSIX
        pass
    return jobs


def _init_worker(budget: int) -> None:
    """A parallel suite's worker: ``budget`` threads (``threads: auto`` and torch's default), no progress bars."""
    import torch

    from caltrain.train import progress
    from caltrain.utils.threads import set_budget

    set_budget(budget)
    torch.set_num_threads(budget)
    progress.set_enabled(False)  # several processes drawing bars on one terminal garble it


def _run_in_processes(work: list[tuple], n_jobs: int, log: Callable[[str], None]) -> list[str]:
    """Train ``work`` in ``n_jobs`` spawned worker processes; the same outcomes, logging and busy round as Ray."""
    import concurrent.futures as cf
    import multiprocessing
    from concurrent.futures.process import BrokenProcessPool

    from caltrain.utils.threads import usable_cores

    budget = max(1, usable_cores() // n_jobs)
    log(f"{n_jobs} runs at a time (worker processes with {budget} thread{'s' * (budget > 1)} each)")
    failures: list[str] = []
    clock = _Clock(len(work))
    pool = cf.ProcessPoolExecutor(max_workers=n_jobs, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_init_worker, initargs=(budget,))
    try:
        for wait in (False, True):  # second round: the runs another process held, waiting for their locks
            futures = {pool.submit(_run_one, *job, wait=wait): job for job in work}
            work, done_count = [], 0
            for future in cf.as_completed(futures):
                job = futures[future]
                name = Path(job[1]).name
                done_count += 1
                try:
                    outcome = future.result()
                except BrokenProcessPool as err:  # a worker died (killed, out of memory)
                    outcome = {"status": "failed", "message": f"{name}: its worker process died ({err})"}
                _log_outcome(log, f"[{done_count}/{len(futures)}]", name, outcome,
                             clock.finished(outcome) if outcome["status"] != "busy" else "")
                if outcome["status"] == "failed":
                    failures.append(outcome["message"])
                elif outcome["status"] == "busy":
                    work.append(job)
            if not work:
                break
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return failures


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
        failures = []
        clock = _Clock(len(jobs))
        for wait in (False, True):  # second round: the runs another process held, waiting for their locks
            refs = {remote.remote(*job, wait=wait): job for job in jobs}
            pending, jobs, done_count = list(refs), [], 0
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                done_count += 1
                outcome = ray.get(done[0])
                name = Path(refs[done[0]][1]).name
                _log_outcome(log, f"[{done_count}/{len(refs)}]", name, outcome,
                             clock.finished(outcome) if outcome["status"] != "busy" else "")
                if outcome["status"] == "failed":
                    failures.append(outcome["message"])
                elif outcome["status"] == "busy":
                    jobs.append(refs[done[0]])
            if not jobs:
                break
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
