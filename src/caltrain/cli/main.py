"""The ``caltrain`` command: a thin dispatcher over one module per subcommand.

Each subcommand lives in ``caltrain/cli/<name>.py`` and defines ``add_arguments(parser)`` and
``run(args) -> int``. Only the chosen subcommand's module is imported, so ``caltrain --help`` and small
commands start fast.

Every failure is one line on stderr, ``caltrain COMMAND: error: ...``, and an exit status (:data:`EXIT_CODES`):
errors caused by the user's input (``ValueError``, ``TypeError``, ``KeyError``, and the path errors
``FileNotFoundError``, ``NotADirectoryError``, ``IsADirectoryError``, ``FileExistsError``,
``PermissionError``, and a plugin that cannot be loaded, :class:`~caltrain.utils.plugins.PluginError`) give 2; an unexpected exception (a bug) prints its traceback and gives 1; Ctrl-C gives 130. With the
environment variable ``CALTRAIN_DEBUG=1`` the full traceback is printed before the line (the exit status
stays the same). Output cut short by a closed pipe (``caltrain losses | head -1``) ends quietly with 141,
the status of a Unix tool killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import traceback
from typing import Sequence

import caltrain
from caltrain.utils.plugins import PluginError

#: The exit statuses of every command (documented in ``caltrain --help`` and docs/cli.md).
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "a run failed (caltrain bench: at least one run of the suite), or an unexpected error",
    2: "bad input: an invalid argument, option, configuration key or value, or a missing/unreadable file",
    3: "training diverged (non-finite loss; caltrain train)",
    130: "interrupted (Ctrl-C)",
    141: "the output pipe was closed early (e.g. caltrain losses | head -1); the output was cut, nothing else",
}

#: Exceptions that mean "the user's input is wrong": one line, exit status 2.
USER_ERRORS = (ValueError, TypeError, KeyError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
               FileExistsError, PermissionError, PluginError)

EPILOG = "exit status:\n" + "\n".join(f"  {code:<4d} {text}" for code, text in EXIT_CODES.items()) + """

environment:
  CALTRAIN_DEBUG=1   print the full Python traceback of an error (default: one line on stderr)
  CALTRAIN_DATA_DIR  where real datasets are read from (default ./data; --set data.root=DIR wins)

Run 'caltrain COMMAND --help' for a command's options."""

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
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"caltrain {caltrain.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in _available().items():
        p = sub.add_parser(name, help=help_, description=help_, epilog=EPILOG.rsplit("\n\n", 1)[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def _find_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def debug_enabled() -> bool:
    """Whether ``CALTRAIN_DEBUG`` asks for tracebacks (set, and not empty, ``0``, ``false``, ``no`` or ``off``)."""
    return os.environ.get("CALTRAIN_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")


def _fail(command: str | None, message: str, status: int) -> int:
    """Print ``caltrain COMMAND: message`` on stderr (after the traceback under CALTRAIN_DEBUG); return ``status``."""
    if debug_enabled() and status != 1:  # status 1 (a bug) printed its traceback already
        traceback.print_exc()
    prefix = f"caltrain {command}" if command else "caltrain"
    print(f"{prefix}: {message}", file=sys.stderr)
    return status


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the flush at exit does not fail again on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file (a test's capture): nothing to redirect
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``caltrain`` console script; returns the exit status (see :data:`EXIT_CODES`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _find_command(argv)
    try:
        return _main(argv, command)
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as Unix tools do
        _silence_stdout()
        return 141
    except KeyboardInterrupt:
        return _fail(command if command in COMMANDS else None, "interrupted", 130)
    except USER_ERRORS as err:
        message = str(err) if not isinstance(err, KeyError) else str(err.args[0] if err.args else err)
        return _fail(command, f"error: {message}", 2)
    except Exception as err:  # a bug in caltrain, not a bad input: the traceback is what a bug report needs
        traceback.print_exc()
        return _fail(command if command in COMMANDS else None,
                     f"error: {type(err).__name__}: {err} (an unexpected error: please report it with the traceback "
                     "above)", 1)


def _main(argv: list[str], command: str | None) -> int:
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
    return int(module.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
