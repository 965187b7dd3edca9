"""``caltrain losses``: list the training objectives with their hyperparameters, defaults and papers.

Examples::

    caltrain losses                 # every objective: summary, paper, what the trainer hands it, hyperparameters
    caltrain losses focal mbls      # just these
    caltrain losses --json          # the same as JSON: {"entries": [one object per objective], "common_options"}
    caltrain losses --quiet         # the names alone, one per line

Everything comes from the registry (:mod:`caltrain.losses.registry`): a factory's signature is its
hyperparameter schema and its class attributes (``paper``, ``requires``, ``has_abstention``,
``needs_input_grad``, ``needs_validation``) say what the trainer must hand it. Nothing here builds a model.
"""

from __future__ import annotations

import argparse
from typing import Any

from caltrain.cli.data import add_listing_arguments, describe

__all__ = ["COMMON_OPTIONS", "EXAMPLES", "add_arguments", "catalog", "entry", "run"]

_HIDDEN = ("num_classes", "num_samples", "reduction")
#: The option every objective takes (``common_options`` of ``--json``).
COMMON_OPTIONS = {"reduction": "mean"}

EXAMPLES = (
    ("caltrain losses", "every objective: summary, paper, what the trainer hands it, hyperparameters"),
    ("caltrain losses focal mbls --json", "two objectives as JSON (the listing shape of docs/cli.md)"),
)


def entry(name: str) -> dict[str, Any]:
    """One objective's description: name, summary, paper, options (defaults) and what it needs."""
    from caltrain import losses

    described = describe(losses.LOSSES, name, hidden=_HIDDEN)
    params = losses.LOSSES.parameters(name)
    # A small instance (K = 10, one sample) tells what the objective declares, whether it is a class or a factory.
    probe: Any = losses.create(name, num_classes=10, num_samples=1)
    return {
        "name": name,
        "summary": described["summary"],
        "paper": probe.paper,
        "options": described["options"],
        "outputs": "K+1" if probe.has_abstention else "K",
        "requires": sorted(probe.requires),
        "needs_input_grad": bool(probe.needs_input_grad),
        "needs_validation": bool(probe.needs_validation),
        "needs_num_samples": "num_samples" in params,
        "functional": hasattr(losses.functional, name),
    }


def catalog(names: list[str] | None = None) -> list[dict[str, Any]]:
    """Entries for ``names`` (default: every registered objective); unknown names raise with the valid ones."""
    from caltrain import losses

    names = names or losses.names()
    for name in names:
        losses.LOSSES.get(name)
    return [entry(name) for name in names]


def _needs(e: dict[str, Any]) -> str:
    parts = [f"outputs {e['outputs']}"]
    parts += [f"+{r}" for r in e["requires"]]
    if e["needs_input_grad"]:
        parts.append("input grad")
    if e["needs_validation"]:
        parts.append("validation each epoch")
    if e["needs_num_samples"]:
        parts.append("num_samples")
    return ", ".join(parts)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_listing_arguments(parser, "objectives")


def run(args: argparse.Namespace) -> int:
    from caltrain.cli._options import listing, print_listing

    entries = catalog(list(args.names))
    if print_listing(listing(entries, COMMON_OPTIONS), as_json=args.json, quiet=args.quiet):
        return 0
    width = max(len(e["name"]) for e in entries)
    pad = " " * (width + 2)
    for e in entries:
        print(f"{e['name']:<{width}}  {e['summary']}")
        if e["paper"]:
            print(f"{pad}paper: {e['paper']}")
        print(f"{pad}needs: {_needs(e)}")
        if e["options"]:
            print(f"{pad}options: " + ", ".join(f"{k}={v!r}" for k, v in e["options"].items()))
    print("\noptions every objective takes: reduction='mean' ('mean' | 'sum' | 'none')")
    return 0
