"""The ``caltrain`` command: a thin dispatcher over one module per subcommand.

Each subcommand lives in ``caltrain/cli/<name>.py`` and defines ``add_arguments(parser)``, ``run(args) -> int``
and ``EXAMPLES`` (two ``(command line, what it does)`` pairs that end its ``--help``). Building a parser
imports only that module, and the modules import torch and the rest of caltrain inside ``run``: ``caltrain
--help`` and ``caltrain --version`` import neither torch nor a subpackage (tests/cli/test_conventions.py).

Every failure is one line on stderr, ``caltrain COMMAND: error: ...``, and an exit status (:data:`EXIT_CODES`):
errors caused by the user's input (``ValueError``, ``TypeError``, ``KeyError``, and the path errors
``FileNotFoundError``, ``NotADirectoryError``, ``IsADirectoryError``, ``FileExistsError``,
``PermissionError``, and a plugin that cannot be loaded, :class:`~caltrain.utils.plugins.PluginError`) give 2; an unexpected exception (a bug) prints its traceback and gives 1; Ctrl-C gives 130. With the
environment variable ``CALTRAIN_DEBUG=1`` the full traceback is printed before the line (the exit status
stays the same). Output cut short by a closed pipe (``caltrain losses | head -1``) ends quietly with 141,
the status of a Unix tool killed by SIGPIPE. A command line argparse cannot parse (a missing command, an
unknown option) prints the usage of the command at fault and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Sequence

#: The exit statuses of every command (documented in ``caltrain --help`` and docs/cli.md).
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "a run failed (caltrain bench: at least one run of the suite), or an unexpected error",
    2: "bad input: an invalid argument, option, configuration key or value, or a missing/unreadable file",
    3: "training diverged (non-finite loss; caltrain train)",
    130: "interrupted (Ctrl-C)",
    141: "the output pipe was closed early (e.g. caltrain losses | head -1); the output was cut, nothing else",
}

#: Exceptions that mean "the user's input is wrong": one line, exit status 2; so is
#: :class:`caltrain.utils.plugins.PluginError` (:func:`is_user_error`: its module is imported only on an error).
USER_ERRORS = (ValueError, TypeError, KeyError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
               FileExistsError, PermissionError)


def is_user_error(err: BaseException) -> bool:
    """Whether ``err`` is caused by the user's input (exit status 2), not by a bug in caltrain (1)."""
    if isinstance(err, USER_ERRORS):
        return True
    from caltrain.utils.plugins import PluginError

    return isinstance(err, PluginError)

_EXIT_AND_ENVIRONMENT = "exit status:\n" + "\n".join(
    f"  {code:<4d} {text}" for code, text in EXIT_CODES.items()) + """

environment:
  CALTRAIN_DEBUG=1   print the full Python traceback of an error (default: one line on stderr)
  CALTRAIN_DATA_DIR  where real datasets are read from (default ./data; --set data.root=DIR wins)"""

#: Two examples that end ``caltrain --help`` (each command's module has its own ``EXAMPLES``).
EXAMPLES = (
    ("caltrain bench quick", "every objective on the embedded data, 3 seeds; results and report.html"),
    ("caltrain train --loss focal --epochs 5", "one run; its directory is printed at the end"),
)

EPILOG = _EXIT_AND_ENVIRONMENT + "\n\nRun 'caltrain COMMAND --help' for a command's options."

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


def format_examples(examples: Sequence[tuple[str, str]]) -> str:
    """The ``examples:`` block that ends a ``--help``: each command line, then what it does."""
    return "examples:\n" + "\n".join(f"  {line}\n      {what}" for line, what in examples)


def _available() -> dict[str, tuple[str, str]]:
    """The commands whose module exists in this installation."""
    out = {}
    for name, (module, help_) in COMMANDS.items():
        if importlib.util.find_spec(module) is not None:
            out[name] = (module, help_)
    return out


class _Version(argparse.Action):
    """``--version``: reads the installed version only when asked (``importlib.metadata`` is not free)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        import caltrain

        print(f"caltrain {caltrain.__version__}")
        parser.exit()


def _command_parser(name: str, help_: str, module: str, make) -> argparse.ArgumentParser:
    """The parser of command ``name``, filled by its module: options, then an epilog ending in its examples."""
    mod = importlib.import_module(module)
    examples = getattr(mod, "EXAMPLES", ())
    epilog = _EXIT_AND_ENVIRONMENT + (f"\n\n{format_examples(examples)}" if examples else "")
    parser = make(name, help=help_, description=help_, epilog=epilog,
                  formatter_class=argparse.RawDescriptionHelpFormatter)
    mod.add_arguments(parser)
    return parser


def _build(fill: Sequence[str]) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and the parsers of the commands in ``fill`` (the others are listed, not built)."""
    parser = argparse.ArgumentParser(
        prog="caltrain",
        description="Train neural-network classifiers whose confidence can be trusted.",
        epilog=EPILOG + "\n\n" + format_examples(EXAMPLES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    built: dict[str, argparse.ArgumentParser] = {}
    for name, (module, help_) in _available().items():
        if name in fill:
            built[name] = _command_parser(name, help_, module, sub.add_parser)
        else:
            sub.add_parser(name, help=help_, description=help_)
    return parser, built


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser; only ``command``'s module is imported to add its arguments."""
    return _build([command] if command else [])[0]


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """The parser of every command, by name, each with all its options."""
    return _build(list(_available()))[1]


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
    except Exception as err:
        if is_user_error(err):
            message = str(err) if not isinstance(err, KeyError) else str(err.args[0] if err.args else err)
            return _fail(command, f"error: {message}", 2)
        # a bug in caltrain, not a bad input: the traceback is what a bug report needs
        traceback.print_exc()
        return _fail(command if command in COMMANDS else None,
                     f"error: {type(err).__name__}: {err} (an unexpected error: please report it with the traceback "
                     "above)", 1)


def _main(argv: list[str], command: str | None) -> int:
    parser, built = _build([command] if command in COMMANDS else [])
    args, unknown = parser.parse_known_args(argv)
    if args.command is None:  # as argparse does for a missing required argument: the usage, then exit 2
        parser.error(f"a COMMAND is required, one of: {', '.join(_available())} "
                     "('caltrain --help' says what each does)")
    own = built[args.command]  # errors from here on show this command's usage, not the top level's
    args.extra_overrides = []
    module = importlib.import_module(COMMANDS[args.command][0])
    if unknown:
        dotted = [u for u in unknown if u.startswith("--") and "=" in u and "." in u.split("=", 1)[0]]
        if not getattr(module, "ACCEPTS_OVERRIDES", False) or len(dotted) != len(unknown):
            own.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.extra_overrides = [u[2:] for u in dotted]
    return int(module.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
