"""``caltrain data``: list the datasets with their options and defaults (``--json`` for machines).

Examples::

    caltrain data                 # every dataset, one summary line and its options
    caltrain data synthetic       # just one
    caltrain data --json          # the same as JSON: {"entries": [...], "common_options": {...}}
    caltrain data --quiet         # the names alone, one per line

:func:`describe` and :func:`print_catalog` also serve ``caltrain models`` and ``caltrain losses``; nothing here
reads a dataset's files.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from typing import Any, Callable, Iterable

__all__ = ["EXAMPLES", "add_arguments", "add_listing_arguments", "describe", "keyword_defaults", "print_catalog",
           "run"]

EXAMPLES = (
    ("caltrain data", "every dataset: a summary line, the data it needs, its options and defaults"),
    ("caltrain data cifar10 digits --json", "two datasets as JSON (the listing shape of docs/cli.md)"),
)


def _summary(factory: Callable[..., Any]) -> str:
    """The first line of the docstring of ``factory``'s module (after its ``name``: prefix), else its own."""
    module = sys.modules.get(factory.__module__)
    doc = inspect.getdoc(module) or inspect.getdoc(factory) or ""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    return first.split(": ", 1)[1] if first.startswith("``") and ": " in first else first


def describe(registry: Any, name: str, *, hidden: Iterable[str] = ()) -> dict[str, Any]:
    """``{"name", "summary", "options": {option: default or None if required}}`` of one entry of ``registry``
    (a :class:`caltrain.utils.registry.Registry`)."""
    hidden = set(hidden)
    options = {
        key: (None if default is inspect.Parameter.empty else default)
        for key, default in registry.defaults(name).items()
        if key not in hidden
    }
    return {"name": name, "summary": _summary(registry.get(name)), "options": options}


def keyword_defaults(function: Callable[..., Any]) -> dict[str, Any]:
    """The keyword-only parameters of ``function`` with their defaults (``None`` where required)."""
    return {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in inspect.signature(function).parameters.values()
        if p.kind == p.KEYWORD_ONLY
    }


def print_catalog(entries: list[dict[str, Any]], *, as_json: bool, common: dict[str, Any] | None = None,
                  quiet: bool = False) -> None:
    """Print ``entries`` as JSON (the listing shape, :func:`caltrain.cli._options.listing`), as their names alone
    (``quiet``) or as an aligned text listing (name, summary, then its options)."""
    from caltrain.cli._options import listing, print_listing

    if print_listing(listing(entries, common), as_json=as_json, quiet=quiet):
        return
    width = max(len(e["name"]) for e in entries) if entries else 0
    for entry in entries:
        print(f"{entry['name']:<{width}}  {entry['summary']}")
        if entry["options"]:
            opts = ", ".join(f"{k}={v!r}" for k, v in entry["options"].items())
            print(f"{'':<{width}}  options: {opts}")
    if common:
        print("\noptions every entry takes: " + ", ".join(f"{k}={v!r}" for k, v in common.items()))


def add_listing_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """The arguments every listing takes: names to show, ``--json``, ``--quiet``."""
    from caltrain.cli._options import add_json, add_quiet

    parser.add_argument("names", nargs="*", help=f"{what} to show (default: all)")
    add_quiet(parser, "print the names alone, one per line")
    add_json(parser, 'print JSON: {"entries": [{"name", "summary", "options", ...}], "common_options": {...}}')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_listing_arguments(parser, "datasets")


def run(args: argparse.Namespace) -> int:
    from caltrain import data

    names = args.names or data.names()
    for name in names:
        data.DATASETS.get(name)  # unknown names fail with the list of valid ones
    entries = [describe(data.DATASETS, name, hidden=("root", "seed")) for name in names]
    print_catalog(entries, as_json=args.json, common=keyword_defaults(data.create), quiet=args.quiet)
    return 0
