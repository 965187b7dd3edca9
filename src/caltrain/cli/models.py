"""``caltrain models``: list the models with their options and defaults (``--json`` for machines).

Examples::

    caltrain models               # every model, one summary line and its options
    caltrain models resnet20 --parameters   # with the parameter count for 10 classes on 3x32x32 inputs
    caltrain models --json
"""

from __future__ import annotations

import argparse

import torch

from caltrain import models
from caltrain.cli.data import describe, keyword_defaults, print_catalog

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", help="models to show (default: all)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--parameters",
        action="store_true",
        help="add each model's parameter count for 10 classes and 3x32x32 inputs (built without weights)",
    )


def parameter_count(name: str) -> int:
    """Parameters of ``name`` for 10 classes and 3x32x32 inputs, built on the meta device (no memory)."""
    with torch.device("meta"):
        return models.num_parameters(models.create(name, num_classes=10, input_shape=(3, 32, 32)))


def run(args: argparse.Namespace) -> int:
    names = args.names or models.names()
    for name in names:
        models.MODELS.get(name)  # unknown names fail with the list of valid ones
    common = keyword_defaults(models.create)
    entries = [describe(models.MODELS, name, hidden=tuple(common)) for name in names]
    if args.parameters:
        for entry in entries:
            entry["parameters"] = parameter_count(entry["name"])
            entry["summary"] += f" [{entry['parameters']:,} parameters]"
    print_catalog(entries, as_json=args.json, common=common)
    return 0
