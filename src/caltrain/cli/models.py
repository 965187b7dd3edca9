"""``caltrain models``: list the models with their options and defaults (``--json`` for machines).

Examples::

    caltrain models               # every model, one summary line and its options
    caltrain models resnet20 --parameters   # with the parameter count for 10 classes on 3x32x32 inputs
    caltrain models --json        # {"entries": [...], "common_options": {...}}
"""

from __future__ import annotations

import argparse

from caltrain.cli.data import add_listing_arguments, describe, keyword_defaults, print_catalog

__all__ = ["EXAMPLES", "add_arguments", "parameter_count", "run"]

EXAMPLES = (
    ("caltrain models", "every model with its options and defaults"),
    ("caltrain models resnet20 wrn28_10 --parameters --json",
     "two models with their parameter counts (10 classes, 3x32x32), as JSON"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_listing_arguments(parser, "models")
    parser.add_argument(
        "--parameters",
        action="store_true",
        help="add each model's parameter count for 10 classes and 3x32x32 inputs (built without weights)",
    )


def parameter_count(name: str) -> int:
    """Parameters of ``name`` for 10 classes and 3x32x32 inputs, built on the meta device (no memory)."""
    import torch

    from caltrain import models

    with torch.device("meta"):
        return models.num_parameters(models.create(name, num_classes=10, input_shape=(3, 32, 32)))


def run(args: argparse.Namespace) -> int:
    from caltrain import models

    names = args.names or models.names()
    for name in names:
        models.MODELS.get(name)  # unknown names fail with the list of valid ones
    common = keyword_defaults(models.create)
    entries = [describe(models.MODELS, name, hidden=tuple(common)) for name in names]
    if args.parameters:
        for entry in entries:
            entry["parameters"] = parameter_count(entry["name"])
            entry["summary"] += f" [{entry['parameters']:,} parameters]"
    print_catalog(entries, as_json=args.json, common=common, quiet=args.quiet)
    return 0
