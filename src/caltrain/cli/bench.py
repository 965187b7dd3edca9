"""``caltrain bench SUITE``: run a benchmark suite's grid (skipping complete runs) and aggregate it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["ACCEPTS_OVERRIDES", "add_arguments", "run"]

#: ``--section.key=value`` arguments are configuration overrides applied to every run.
ACCEPTS_OVERRIDES = True


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("suite", nargs="?", help="a shipped suite name (see --list) or a suite YAML file")
    p.add_argument("--out", metavar="DIR", help="output directory (default: ./runs/bench-<suite>)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: on this machine, --jobs runs at a time (default); ray: one Ray task per run")
    p.add_argument("--address", metavar="ADDR", help="Ray cluster address (default: start a local Ray instance)")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="local executor: train N runs at once in worker processes, each with cores/N threads "
                        "(default: one per core this process may use; 1 for runs on a GPU; 1 trains in this process)")
    p.add_argument("--seeds", type=int, metavar="N", help="use seeds 0..N-1 instead of the suite's")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a configuration key in every run, e.g. --set epochs=5 --set data.root=~/data")
    p.add_argument("--list", action="store_true", help="list the shipped suites and exit")
    p.add_argument("--no-report", action="store_true", help="do not write report.html at the end")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (repeatable): a module name importable from the current directory or "
                        "sys.path, or a path to a .py file, whose @register calls add datasets, models, objectives "
                        "or calibrators for the suite to name (recorded in suite.json; Ray workers import them too; see docs/suites.md)")


def run(args: argparse.Namespace) -> int:
    from caltrain.cli._checks import check_int_range, check_out_dir
    from caltrain.train.config import check_device, load_yaml
    from caltrain.train.suite import builtin_suites, default_jobs, expand, load_suite, run_suite
    from caltrain.utils.plugins import import_modules

    imports = import_modules(args.imports)  # before the suite's configurations are built and validated
    if args.list or not args.suite:
        for name in builtin_suites():
            s = load_suite(name)
            print(f"{name:26s} {s.description}\n{'':26s} data: {s.data_needed}")
        return 0
    if args.seeds is not None:
        check_int_range(args.seeds, "--seeds", low=1)
    if Path(args.suite).suffix in (".yaml", ".yml"):  # a file: its YAML errors name it, with line and column
        if not Path(args.suite).exists():
            raise FileNotFoundError(f"suite {args.suite}: no such file")
        load_yaml(args.suite)
    suite = load_suite(args.suite)
    out = check_out_dir(args.out) if args.out else Path("runs") / f"bench-{suite.name}"
    seeds = list(range(args.seeds)) if args.seeds is not None else None
    overrides = list(args.set) + list(args.extra_overrides)
    specs = expand(suite, overrides, seeds)
    for config in {(s.config.device, s.config.precision): s.config for s in specs}.values():
        check_device(config)  # device=cuda without a GPU: one message before any run starts
    if args.jobs is not None:
        check_int_range(args.jobs, "--jobs", low=1)
    jobs = args.jobs or default_jobs([s.config for s in specs])
    result = run_suite(suite, out, executor=args.executor, address=args.address, overrides=overrides, seeds=seeds,
                       imports=imports, jobs=jobs)
    from caltrain.train.run_dir import SuiteDir

    paths = SuiteDir(out)
    print(paths.results("md").read_text())
    if not args.no_report:
        _write_report(out)
    print("results: " + ", ".join(str(paths.results(f)) for f in ("csv", "md", "json")), file=sys.stderr)
    if result["failed"]:
        print(f"caltrain bench: {len(result['failed'])} run(s) failed (see messages above)", file=sys.stderr)
        return 1
    return 0


def _write_report(out: Path) -> None:
    """The suite's HTML report, when the report extra (matplotlib) is installed."""
    try:
        from caltrain.report import write_report
    except ImportError:
        return
    try:
        path = write_report(out)
    except (ImportError, FileNotFoundError) as err:  # matplotlib missing, or no run of the suite completed
        print(f"no report written: {err}", file=sys.stderr)
        return
    print(f"report: {path}", file=sys.stderr)
