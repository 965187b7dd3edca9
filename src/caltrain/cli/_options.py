"""The options every command spells the same way, and the deprecated spellings that still work for a release.

One place for the shared conventions of docs/cli.md ("Conventions"): ``--out`` (where results go), ``--set
KEY=VALUE`` (a setting, VALUE read as YAML), ``--device`` (where a command computes), ``--quiet`` and ``--json``
(how a command prints its result), ``--import`` (a module of yours). Each command calls these helpers, so the same
option has the same spelling, metavar and meaning everywhere; the help text says what it means for that command.

Nothing here imports torch: building a parser must stay cheap (``caltrain --help`` in well under a second).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

__all__ = ["ABSTENTION_CONVENTIONS", "CALIBRATABLE", "LEGACY_CALIBRATABLE", "DeprecatedAlias", "add_device",
           "add_imports", "add_json", "add_quiet", "add_set", "listing", "parse_settings", "print_listing"]


#: The K+1 conventions of :mod:`caltrain.abstention` (its ``ABSTENTION_CONVENTIONS``, ``CALIBRATABLE`` and the old
#: calibrator spellings), spelled here so that building a parser imports no torch; tests/cli/test_conventions.py
#: checks that they are the owner's.
ABSTENTION_CONVENTIONS = ("with_unknown", "without_unknown", "renormalized")
CALIBRATABLE = ("renormalized", "with_unknown")
LEGACY_CALIBRATABLE = ("classes", "all")


class DeprecatedAlias(argparse.Action):
    """An old spelling of an option: works like the new one, with a one-line warning on stderr.

    ``parser.add_argument("--output", dest="out", action=DeprecatedAlias, new="--out")`` stores into ``out``;
    with ``append=True`` it appends (as ``--set`` does). The alias is hidden from ``--help`` (the new spelling is
    what the help teaches); the warning names both spellings and says when the old one goes.
    """

    def __init__(self, option_strings, dest, *, new: str, append: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("help", argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)
        self.new = new
        self.append = append

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: warning: {option_string} is deprecated and will be removed in the next release; "
              f"use {self.new}", file=sys.stderr, flush=True)
        if self.append:
            values = [*(getattr(namespace, self.dest, None) or []), values]
        setattr(namespace, self.dest, values)


def add_set(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE`` (repeatable, into ``args.set``); VALUE is read as YAML."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=help)


def add_device(parser: argparse.ArgumentParser, default: str | None, help: str) -> None:
    """``--device DEVICE``: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (checked when the command runs)."""
    parser.add_argument("--device", default=default, metavar="DEVICE", help=help)


def add_quiet(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--quiet", action="store_true", help=help)


def add_json(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--json", action="store_true", help=help)


def add_imports(parser: argparse.ArgumentParser, what: str) -> None:
    """``--import MODULE`` (repeatable, into ``args.imports``): a module whose ``@register`` calls add components."""
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import MODULE first (repeatable): a module name importable from the current directory "
                             "or sys.path, or a path to a .py file, whose @register calls add datasets, models, "
                             f"objectives or calibrators {what} (see docs/suites.md)")


#: A number in exponent notation without a dot ("1e-3"), which YAML 1.1 (PyYAML) reads as a string.
_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def parse_settings(pairs: list[str], option: str = "--set") -> dict[str, Any]:
    """``["key=value", "a.b=value", ...]`` -> a nested dict; VALUE is read as YAML, as ``caltrain train --set``.

    The parsing is :func:`caltrain.train.config.parse_override`'s (one owner); a value in exponent notation
    without a dot (``1e-3``), which YAML 1.1 reads as a string, is read as the number it means (as JSON does).
    A pair without ``=`` raises ``ValueError`` naming ``option``.
    """
    from caltrain.train.config import ConfigError, parse_override

    out: dict[str, Any] = {}
    for text in pairs:
        try:
            path, value = parse_override(text)
        except ConfigError as err:
            raise ValueError(f"{option}: {err}") from None
        if isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
            value = float(value)
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"{option} {text!r}: {part!r} is a value, not a section")
            node = child
        node[path[-1]] = value
    return out


def listing(entries: list[dict[str, Any]], common: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one JSON shape of every listing (``losses``, ``data``, ``models``, ``bench --list``).

    ``{"entries": [{"name", "summary", ...}, ...], "common_options": {option: default}}``: one object per entry,
    in the listing's order, each with at least ``name`` and ``summary``; ``common_options`` holds the options
    every entry takes (empty when there are none).
    """
    return {"entries": entries, "common_options": dict(common or {})}


def print_listing(payload: dict[str, Any], *, as_json: bool, quiet: bool) -> bool:
    """Print a listing as JSON (``--json``) or its names, one per line (``--quiet``); False when neither applies
    (the caller prints its own text form)."""
    if as_json:
        import json

        from caltrain.utils.io import to_jsonable

        print(json.dumps(to_jsonable(payload), indent=2))
        return True
    if quiet:
        for entry in payload["entries"]:
            print(entry["name"])
        return True
    return False
