"""``caltrain bench SUITE``: run a benchmark suite's grid (skipping complete runs) and aggregate it.

``caltrain bench --list`` lists the shipped suites and the studies (``--json``: the listing shape of
docs/cli.md). A run of a suite prints its results table (``results.md``) on stdout and its progress on stderr;
``--json`` prints one object instead, ``{"suite", "out", "runs", "skipped", "stale", "failed", "files",
"report", "results"}`` (``results``: the content of ``results.json``); ``--quiet`` silences the progress
(failures are still printed).

A *study* is a named experiment that is not one suite grid (:data:`STUDIES`): ``caltrain bench claims``
(``claims:ID,...`` for some; :mod:`caltrain.analysis.claims`) and ``caltrain bench estimators``
(:mod:`caltrain.analysis.estimator_convergence`). A new one is a function ``(args, imports) -> exit status``
and one entry in :data:`STUDIES`; the options it cannot honour are refused by name before it starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

__all__ = ["ACCEPTS_OVERRIDES", "EXAMPLES", "STUDIES", "Study", "add_arguments", "run"]

#: ``--section.key=value`` arguments are configuration overrides applied to every run.
ACCEPTS_OVERRIDES = True

EXAMPLES = (
    ("caltrain bench quick", "every seed method and the main baselines on embedded data, 3 seeds (about 4 minutes)"),
    ("caltrain bench mukhoti2020-cifar10 --set data.root=~/data --seeds 1 --device cuda --json",
     "a paper suite on real CIFAR-10, one seed, on the GPU; the results as JSON"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from caltrain.cli._options import add_device, add_imports, add_json, add_quiet, add_set

    p.add_argument("suite", nargs="?", help="a shipped suite name (see --list), a suite YAML file, or a study: "
                                            "'claims' ('claims:ID,...'), 'estimators'")
    p.add_argument("--out", metavar="DIR", help="output directory (default: ./runs/bench-<suite>)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: on this machine, --jobs runs at a time (default); ray: one Ray task per run")
    p.add_argument("--address", metavar="ADDR", help="Ray cluster address (default: start a local Ray instance)")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="local executor: train N runs at once in worker processes, each with cores/N threads "
                        "(default: one per core this process may use; 1 for runs on a GPU; 1 trains in this process)")
    p.add_argument("--seeds", type=int, metavar="N", help="use seeds 0..N-1 instead of the suite's")
    add_set(p, "override a configuration key in every run, VALUE read as YAML, e.g. --set epochs=5 "
               "--set data.root=~/data")
    add_device(p, None, "where every run trains: auto, cpu, cuda, cuda:N or mps (default: the suite's, else auto); "
                        "the same as --set device=DEVICE")
    p.add_argument("--list", action="store_true", help="list the shipped suites and exit")
    p.add_argument("--no-report", action="store_true", help="do not write report.html at the end")
    add_quiet(p, "no progress on stderr (failed runs are still reported)")
    add_json(p, "print one JSON object (the run counts, the files written and the results) instead of the table; "
                "with --list, the suites as JSON")
    add_imports(p, "for the suite to name (recorded in suite.json; Ray workers import them too)")


class Study(NamedTuple):
    """A named experiment of ``caltrain bench`` that is not one suite grid."""

    run: Callable[[argparse.Namespace, list[str]], int]  #: (args, imports) -> exit status
    summary: str  #: its line in ``bench --list``
    refuses: tuple[str, ...]  #: the options it does not take (each refused by name), as argparse dests


def _claims(args: argparse.Namespace, imports: list[str]) -> int:
    from caltrain.analysis.claims import bench_claims
    from caltrain.cli._checks import check_out_dir

    return bench_claims(args.suite, out=check_out_dir(args.out) if args.out else None, seeds=args.seeds,
                        overrides=_overrides(args), executor=args.executor, address=args.address, imports=imports)


def _estimators(args: argparse.Namespace, imports: list[str]) -> int:
    from caltrain.analysis.estimator_convergence import bench_argv, main

    return main(bench_argv(args))


#: The studies by name (``claims`` also as ``claims:ID,...``).
STUDIES: dict[str, Study] = {
    "claims": Study(_claims, "every seed paper's claim as a paired experiment over the claims-* suites, with "
                             "verdicts (claims:ID,... for some; docs/claims.md)", ("json", "quiet")),
    "estimators": Study(_estimators, "binned, debiased and smooth ECE against the true calibration error as N "
                                     "grows (docs/metrics.md)", ("json", "quiet", "device")),
}


def _study(name: str) -> Study | None:
    return STUDIES.get(name.partition(":")[0] if name.startswith("claims:") else name)


def run(args: argparse.Namespace) -> int:
    from caltrain.utils.plugins import import_modules

    imports = import_modules(args.imports)  # before the suite's configurations are built and validated
    if args.list or not args.suite:
        return _list(args)
    if args.seeds is not None:
        from caltrain.cli._checks import check_int_range

        check_int_range(args.seeds, "--seeds", low=1)
    study = _study(args.suite)
    if study is not None:
        given = [f"--{dest.replace('_', '-')}" for dest in study.refuses if getattr(args, dest, None)]
        if given:
            raise ValueError(f"{given[0]}: does not apply to 'caltrain bench {args.suite}' (a study, not a suite)")
        return study.run(args, imports)
    return _run_suite(args, imports)


def _list(args: argparse.Namespace) -> int:
    """The shipped suites (name, description, the data each needs), then the studies."""
    from caltrain.cli._options import listing, print_listing
    from caltrain.train.suite import builtin_suites, load_suite

    entries = []
    for name in builtin_suites():
        s = load_suite(name)
        entries.append({"name": name, "summary": s.description, "data": s.data_needed})
    entries += [{"name": name, "summary": study.summary, "data": "nothing (embedded data)", "study": True}
                for name, study in STUDIES.items()]
    if not print_listing(listing(entries), as_json=args.json, quiet=args.quiet):
        for e in entries:
            print(f"{e['name']:26s} {e['summary']}" + ("" if e.get("study") else f"\n{'':26s} data: {e['data']}"))
    return 0


def _run_suite(args: argparse.Namespace, imports: list[str]) -> int:
    from caltrain.cli._checks import check_int_range, check_out_dir
    from caltrain.train.config import check_device, load_yaml
    from caltrain.train.run_dir import SuiteDir
    from caltrain.train.suite import default_jobs, expand, load_suite, run_suite

    if Path(args.suite).suffix in (".yaml", ".yml"):  # a file: its YAML errors name it, with line and column
        if not Path(args.suite).exists():
            raise FileNotFoundError(f"suite {args.suite}: no such file")
        load_yaml(args.suite)
    suite = load_suite(args.suite)
    out = check_out_dir(args.out) if args.out else Path("runs") / f"bench-{suite.name}"
    seeds = list(range(args.seeds)) if args.seeds is not None else None
    overrides = _overrides(args)
    specs = expand(suite, overrides, seeds)
    for config in {(s.config.device, s.config.precision): s.config for s in specs}.values():
        check_device(config)  # device=cuda without a GPU: one message before any run starts
    if args.jobs is not None:
        check_int_range(args.jobs, "--jobs", low=1)
    jobs = args.jobs or default_jobs([s.config for s in specs])
    log = _silent if args.quiet else _stderr
    result = run_suite(suite, out, executor=args.executor, address=args.address, overrides=overrides, seeds=seeds,
                       imports=imports, log=log, jobs=jobs)
    paths = SuiteDir(out)
    report = None if args.no_report else _write_report(out, log)
    files = {fmt: str(paths.results(fmt)) for fmt in ("csv", "md", "json")}
    if args.json:
        _print_json(suite.name, out, result, files, report, paths)
    else:
        print(paths.results("md").read_text())
        log("results: " + ", ".join(files.values()))
    if result["failed"]:
        if args.quiet:  # the FAILED lines went to the silenced log: they are errors, so print them
            for message in result["failed"]:
                print(f"FAILED {message}", file=sys.stderr)
        print(f"caltrain bench: {len(result['failed'])} run(s) failed (see messages above)", file=sys.stderr)
        return 1
    return 0


def _overrides(args: argparse.Namespace) -> list[str]:
    """The configuration overrides of every run: ``--device``, ``--quiet``, then ``--set`` and ``--key=value``."""
    out = [f"device={args.device}"] if args.device is not None else []
    if args.quiet:
        out.append("quiet=true")  # not a result key: complete runs are reused all the same
    return out + list(args.set) + list(args.extra_overrides)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _silent(message: str) -> None:
    pass


def _print_json(name: str, out: Path, result: dict[str, Any], files: dict[str, str], report: Path | None,
                paths: Any) -> None:
    import json

    from caltrain.utils.io import read_json, to_jsonable

    payload = {
        "suite": name, "out": str(out),
        "runs": result["runs"], "skipped": result["skipped"], "stale": result["stale"], "failed": result["failed"],
        "files": files, "report": None if report is None else str(report),
        "results": read_json(paths.results("json")) if paths.results("json").is_file() else None,
    }
    print(json.dumps(to_jsonable(payload), indent=2))


def _write_report(out: Path, log=_stderr) -> Path | None:
    """The suite's HTML report, when the report extra (matplotlib) is installed; its path, else None."""
    try:
        from caltrain.report import write_report
    except ImportError:
        return None
    try:
        path = write_report(out)
    except (ImportError, FileNotFoundError) as err:  # matplotlib missing, or no run of the suite completed
        print(f"no report written: {err}", file=sys.stderr)
        return None
    log(f"report: {path}")
    return path
