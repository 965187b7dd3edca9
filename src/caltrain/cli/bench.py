"""``caltrain bench SUITE``: run a benchmark suite's grid (skipping complete runs) and aggregate it.

``caltrain bench estimators`` is a study, not a suite: :mod:`caltrain.analysis.estimator_convergence`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["ACCEPTS_OVERRIDES", "add_arguments", "run"]

#: ``--section.key=value`` arguments are configuration overrides applied to every run.
ACCEPTS_OVERRIDES = True


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("suite", nargs="?", help="a shipped suite name (see --list) or a suite YAML file; 'estimators': "
                                            "ECE estimators against the true calibration error (--out, --seeds)")
    p.add_argument("--out", metavar="DIR", help="output directory (default: ./runs/bench-<suite>)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: sequential in this process (default); ray: one Ray task per run")
    p.add_argument("--address", metavar="ADDR", help="Ray cluster address (default: start a local Ray instance)")
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
    from caltrain.train.suite import builtin_suites, expand, load_suite, run_suite
    from caltrain.utils.plugins import import_modules

    imports = import_modules(args.imports)  # before the suite's configurations are built and validated
    if args.list or not args.suite:
        for name in builtin_suites():
            s = load_suite(name)
            print(f"{name:26s} {s.description}\n{'':26s} data: {s.data_needed}")
        print(f"{'claims':26s} every seed paper's claim as a paired experiment over the claims-* suites, with "
              "verdicts (claims:ID,... for some; docs/claims.md)")
        return 0
    if args.suite == "estimators":  # a study, not a suite (docs/metrics.md)
        from caltrain.analysis.estimator_convergence import bench_argv, main

        return main(bench_argv(args))
    if args.seeds is not None:
        check_int_range(args.seeds, "--seeds", low=1)
    if args.suite == "claims" or args.suite.startswith("claims:"):  # several suites + verdicts: docs/claims.md
        from caltrain.analysis.claims import bench_claims

        return bench_claims(args.suite, out=check_out_dir(args.out) if args.out else None, seeds=args.seeds,
                            overrides=list(args.set) + list(args.extra_overrides), executor=args.executor,
                            address=args.address, imports=imports)
    if Path(args.suite).suffix in (".yaml", ".yml"):  # a file: its YAML errors name it, with line and column
        if not Path(args.suite).exists():
            raise FileNotFoundError(f"suite {args.suite}: no such file")
        load_yaml(args.suite)
    suite = load_suite(args.suite)
    out = check_out_dir(args.out) if args.out else Path("runs") / f"bench-{suite.name}"
    seeds = list(range(args.seeds)) if args.seeds is not None else None
    overrides = list(args.set) + list(args.extra_overrides)
    for config in {(s.config.device, s.config.precision): s.config for s in expand(suite, overrides, seeds)}.values():
        check_device(config)  # device=cuda without a GPU: one message before any run starts
    result = run_suite(suite, out, executor=args.executor, address=args.address, overrides=overrides, seeds=seeds,
                       imports=imports)
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
