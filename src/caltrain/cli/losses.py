"""``caltrain losses``: list the training objectives with their hyperparameters, defaults and papers.

Examples::

    caltrain losses                 # every objective: summary, paper, what the trainer hands it, hyperparameters
    caltrain losses focal mbls      # just these
    caltrain losses --json          # the same as JSON (one object per objective)

Everything comes from the registry (:mod:`caltrain.losses.registry`): a factory's signature is its
hyperparameter schema and its class attributes (``paper``, ``requires``, ``has_abstention``,
``needs_input_grad``, ``needs_validation``) say what the trainer must hand it. Nothing here builds a model.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from caltrain.cli.data import describe
from caltrain.utils.io import to_jsonable

__all__ = ["add_arguments", "catalog", "entry", "run"]

_HIDDEN = ("num_classes", "num_samples", "reduction")


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
    parser.add_argument("names", nargs="*", help="objectives to show (default: all)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    entries = catalog(list(args.names))
    if args.json:
        print(json.dumps(to_jsonable(entries), indent=2))
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
