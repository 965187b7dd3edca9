"""``caltrain report DIR``: write a self-contained HTML (or Markdown) report of a suite or a run directory.

Examples::

    caltrain report runs/bench-quick                 # runs/bench-quick/report.html
    caltrain report runs/bench-quick --format md     # report.md and report_files/*.png
    caltrain report runs/my-run --out /tmp/run.html  # a single run directory

All the work is :func:`caltrain.report.write_report`; this module only parses the arguments. The report's path is
printed on stdout (``--json``: ``{"report": PATH, "format": "html" | "md"}``); progress goes to stderr unless
``--quiet``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["EXAMPLES", "MAX_DPI", "add_arguments", "run"]

EXAMPLES = (
    ("caltrain report runs/bench-quick", "runs/bench-quick/report.html: one self-contained page"),
    ("caltrain report runs/my-run --format md --out notes/run.md --quiet",
     "Markdown with its figures in notes/run_files/; only the path is printed"),
)

#: Highest ``--dpi`` (print quality; a figure's memory grows with the square of the resolution).
MAX_DPI = 600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from caltrain.cli._options import add_json, add_quiet

    parser.add_argument("path", help="a suite directory (runs/, results.json) or a complete run directory")
    parser.add_argument("--format", choices=("html", "md"), default="html",
                        help="html: one self-contained report.html (default); md: report.md with PNG files")
    parser.add_argument("--out", metavar="FILE", help="output file (default: PATH/report.html or PATH/report.md)")
    parser.add_argument("--max-classes", type=int, default=10, metavar="N",
                        help="classwise reliability panels show at most N classes (default 10)")
    parser.add_argument("--dpi", type=int, default=96, metavar="N",
                        help="resolution of the figures, 10 to 600 (default 96)")
    add_quiet(parser, "no progress on stderr; print only the path of the report")
    add_json(parser, 'print {"report": PATH, "format": FORMAT} instead of the path')


def run(args: argparse.Namespace) -> int:
    from caltrain.cli._checks import check_int_range
    from caltrain.report import write_report

    if args.max_classes < 1:
        raise ValueError(f"--max-classes: expected an integer >= 1, got {args.max_classes}")
    check_int_range(args.dpi, "--dpi", low=10, high=MAX_DPI, why="print quality; figures grow with the square")
    if args.out is not None and Path(args.out).is_dir():
        example = Path(args.out) / "report.html"
        raise ValueError(f"--out {args.out}: is a directory; give the report's file name, e.g. {example}")
    _check_json_files(Path(args.path))
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    try:
        path = write_report(args.path, format=args.format, out=args.out, max_classes=args.max_classes,
                            dpi=args.dpi, log=log)
    except ImportError as err:
        print(f"caltrain report: error: {err} (install the report extra: pip install 'caltrain[report]')",
              file=sys.stderr)
        return 2
    if args.json:
        import json

        print(json.dumps({"report": str(path), "format": args.format}))
    else:
        print(path)
    return 0


def _check_json_files(root: Path) -> None:
    """``ValueError`` naming the file, line and column of the first damaged JSON file the report would read.

    Without it a truncated ``results.json`` ended in ``Expecting property name ...: line 1 column 2``, with
    no file named. Checks the suite's or run's own files and every run's ``summary.json`` and ``labels.json``.
    """
    import json

    if not root.is_dir():
        return  # write_report says what is wrong with the path
    names = ("results.json", "summary.json", "suite.json")
    files = [root / n for n in names]
    files += sorted(root.glob("runs/*/summary.json")) + sorted(root.glob("runs/*/labels.json"))
    for file in files:
        if not file.is_file():
            continue
        try:
            json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{file}: not valid JSON (line {err.lineno}, column {err.colno}): {err.msg}") from None
        except UnicodeDecodeError:
            raise ValueError(f"{file}: not valid JSON (not UTF-8 text)") from None
