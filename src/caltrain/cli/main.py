"""The ``caltrain`` command: a thin dispatcher over one module per subcommand.

Each subcommand lives in ``caltrain/cli/<name>.py`` and defines ``add_arguments(parser)`` and
``run(args) -> int``. Only the chosen subcommand's module is imported, so ``caltrain --help`` and small
commands start fast. Errors caused by the user's input (``ValueError``, ``TypeError``, ``KeyError``,
``FileNotFoundError``) are printed on stderr as one line and give exit status 2; anything else is a bug
and shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from typing import Sequence

import caltrain

# name -> (module, one-line help). Keep sorted by how often users need them.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("caltrain.cli.train", "train one model with one objective and save a run directory"),
    "bench": ("caltrain.cli.bench", "run a benchmark suite (objectives x seeds x datasets x models) and aggregate it"),
    "evaluate": ("caltrain.cli.evaluate", "print every calibration metric of a predictions file (.npz/.pt)"),
    "calibrate": ("caltrain.cli.calibrate", "fit a post-hoc calibrator on validation logits, report it on test logits"),
    "report": ("caltrain.cli.report", "write an HTML or Markdown report of a run or suite directory"),
    "losses": ("caltrain.cli.losses", "list the training objectives with their hyperparameters and defaults"),
    "data": ("caltrain.cli.data", "list the datasets"),
    "models": ("caltrain.cli.models", "list the models"),
}


def _available() -> dict[str, tuple[str, str]]:
    """The commands whose module exists in this installation."""
    out = {}
    for name, (module, help_) in COMMANDS.items():
        if importlib.util.find_spec(module) is not None:
            out[name] = (module, help_)
    return out


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser; only ``command``'s module is imported to add its arguments."""
    parser = argparse.ArgumentParser(
        prog="caltrain",
        description="Train neural-network classifiers whose confidence can be trusted.",
    )
    parser.add_argument("--version", action="version", version=f"caltrain {caltrain.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in _available().items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def _find_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``caltrain`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _find_command(argv)
    parser = build_parser(command if command in COMMANDS else None)
    args, unknown = parser.parse_known_args(argv)
    args.extra_overrides = []
    if unknown:
        module = importlib.import_module(COMMANDS[args.command][0]) if args.command else None
        dotted = [u for u in unknown if u.startswith("--") and "=" in u and "." in u.split("=", 1)[0]]
        if module is None or not getattr(module, "ACCEPTS_OVERRIDES", False) or len(dotted) != len(unknown):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.extra_overrides = [u[2:] for u in dotted]
    if args.command is None:
        parser.print_help()
        return 0
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except (ValueError, TypeError, KeyError, FileNotFoundError) as err:
        if os.environ.get("CALTRAIN_DEBUG"):
            raise
        print(f"caltrain {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"caltrain {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
