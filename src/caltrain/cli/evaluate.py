"""``caltrain evaluate``: every calibration metric of a predictions file, as a table or JSON.

Examples::

    caltrain evaluate preds.npz                  # table
    caltrain evaluate preds.npz --json           # one JSON object (keys of caltrain.metrics.summarize)
    caltrain evaluate preds.pt --n-bins 10 --bootstrap 1000     # with 95% intervals
    caltrain evaluate preds.pt --abstention renormalized        # K+1 outputs (not with --bootstrap)
    caltrain evaluate --demo                     # synthetic over-confident predictions with a known posterior

The file (``.npz``, or ``.pt`` holding a dict) must hold ``labels`` (``[N]`` or ``[N, *spatial]`` integers) and
exactly one of ``probs`` (probabilities, ``[N, K(, *spatial)]``) or ``logits`` (softmax applied in float64);
optionally ``true_posterior`` (``[N, K(, *spatial)]``, adds ``true_ece``, ``pointwise_ce``, ``grouping_loss``). With ``--abstention`` the last
column is the "unknown" output. Bad input exits with status 2 and the reason on stderr.

Bounds of the options (each violation is one line naming the option): ``--n-bins`` 1 to 10,000
(:data:`caltrain.utils.checks.MAX_BINS`: past that nearly every bin is empty and memory grows with the bin
count), ``--bootstrap`` 0 to 100,000 resamples (percentile intervals are stable after a few thousand; more
only costs time), ``--n`` (demo) 1 to 1,000,000 samples.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

__all__ = ["EXAMPLES", "MAX_BOOTSTRAP", "MAX_DEMO_SAMPLES", "add_arguments", "demo_predictions", "format_table", "run"]

EXAMPLES = (
    ("caltrain evaluate runs/my-run/logits_test.npz --bootstrap 1000",
     "every metric of a run's test predictions, with 95% bootstrap intervals"),
    ("caltrain evaluate preds.pt --n-bins 10 --abstention renormalized --json",
     "K+1 outputs (last column = unknown), 10 bins; one JSON object"),
)

#: Most bootstrap resamples (percentile intervals are stable after a few thousand; more only costs time).
MAX_BOOTSTRAP = 100_000
#: Most samples of ``--demo`` (three float64 [N, 10] arrays: 240 MB at this bound).
MAX_DEMO_SAMPLES = 1_000_000

#: One-line descriptions of the keys, in display order.
DESCRIPTIONS = {
    "n": "samples evaluated",
    "accuracy": "top-1 accuracy",
    "nll": "negative log-likelihood",
    "brier": "Brier score (sum over classes)",
    "ece": "expected calibration error (equal-width bins)",
    "mce": "maximum calibration error",
    "rmsce": "root-mean-square calibration error",
    "adaece": "ECE on equal-mass bins",
    "classwise_ece": "classwise ECE (Kull et al. 2019)",
    "smooth_ece": "smooth ECE (Blasiok & Nakkiran 2023)",
    "aurc": "area under the risk-coverage curve",
    "eaurc": "excess AURC",
    "true_ece": "calibration error E|E[P(correct|x) | conf] - conf| (true posterior)",
    "pointwise_ce": "E|P(correct|x) - conf| (true posterior; adds the grouping loss)",
    "grouping_loss": "pointwise_ce - true_ece (true posterior)",
    "abstention_rate": "fraction predicted unknown",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from caltrain.cli._options import ABSTENTION_CONVENTIONS, add_device, add_json, add_quiet

    parser.add_argument("file", nargs="?", help="predictions file (.npz or .pt) with labels and probs or logits")
    parser.add_argument("--n-bins", type=int, default=15, metavar="N",
                        help="bins of the binned metrics, 1 to 10000 (default 15)")
    parser.add_argument(
        "--abstention",
        default=None,
        choices=ABSTENTION_CONVENTIONS,
        help="evaluation convention for K+1 outputs (last column = unknown)",
    )
    parser.add_argument("--ignore-index", type=int, default=None, metavar="LABEL",
                        help="label value to leave out (dense inputs)")
    parser.add_argument(
        "--bootstrap", type=int, default=0, metavar="N",
        help="add 95%% bootstrap intervals of ece/adaece/nll/brier from N resamples (at most 100000)",
    )
    parser.add_argument("--demo", action="store_true", help="evaluate synthetic over-confident predictions")
    parser.add_argument("--n", type=int, default=None, metavar="N",
                        help="samples of the demo, at most 1000000 (default 20000)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the demo and of the bootstrap")
    add_device(parser, "cpu", "torch device of the computation: cpu (default), auto, cuda, cuda:N or mps")
    add_quiet(parser, "print the table only (no explanation of --demo)")
    add_json(parser, "print one JSON object instead of the table")


def demo_predictions(
    n: int = 20000, num_classes: int = 10, *, temperature: float = 2.5, seed: int = 0
) -> dict[str, Any]:
    """Synthetic predictions with a known posterior: ``q = softmax(z)``, labels ``~ q``, model ``softmax(t z)``.

    ``t = temperature > 1`` makes the model over-confident (its true calibration error is known through ``q``).
    Returns ``{"probs", "labels", "true_posterior"}`` float64 / int64 tensors.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    z = 1.5 * torch.randn(n, num_classes, generator=gen, dtype=torch.float64)
    q = torch.softmax(z, dim=1)
    labels = torch.multinomial(q, 1, generator=gen).squeeze(1)
    return {"probs": torch.softmax(temperature * z, dim=1), "labels": labels, "true_posterior": q}


def _load(path: str) -> dict[str, Any]:
    from caltrain.utils.io import load_arrays

    arrays = load_arrays(path)
    has_p, has_z = "probs" in arrays, "logits" in arrays
    if has_p == has_z:
        raise ValueError(
            f"{path}: expected exactly one of the keys 'probs' or 'logits' (and 'labels'), found {sorted(arrays)}"
        )
    if "labels" not in arrays:
        raise ValueError(f"{path}: expected a 'labels' array, found {sorted(arrays)}")
    for key in ("labels", "probs", "logits", "true_posterior"):
        kind = getattr(getattr(arrays.get(key), "dtype", None), "kind", "f")
        if kind not in "biuf":  # strings, objects, complex: torch's message would not name the file nor the key
            raise ValueError(f"{path}: {key!r} must hold numbers, got an array of dtype {arrays[key].dtype}")
    return arrays


def format_table(columns: dict[str, dict[str, float]]) -> str:
    """Aligned text table: one row per metric key, one column per entry of ``columns``."""
    keys = [k for k in DESCRIPTIONS if any(k in c for c in columns.values())]
    keys += [k for c in columns.values() for k in c if k not in keys and k not in DESCRIPTIONS]
    keys = list(dict.fromkeys(keys))
    names = list(columns)
    width = max(len(k) for k in keys)

    def fmt(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, str):
            return value
        if float(value).is_integer() and abs(value) >= 1:
            return f"{int(value)}"
        return "nan" if math.isnan(value) else f"{value:.6f}"

    widths = [max([12, len(n)] + [len(fmt(columns[n].get(k))) for k in keys]) for n in names]
    lines = ["  ".join([f"{'metric':<{width}}"] + [f"{n:>{w}}" for n, w in zip(names, widths)] + ["  description"])]
    for key in keys:
        cells = [f"{fmt(columns[n].get(key)):>{w}}" for n, w in zip(names, widths)]
        lines.append("  ".join([f"{key:<{width}}"] + cells + ["  " + DESCRIPTIONS.get(key, "")]))
    return "\n".join(lines)


def _on_device(arrays: dict[str, Any], device: str) -> dict[str, Any]:
    """``arrays`` as torch tensors on ``device``; unchanged on the CPU (the metrics take NumPy arrays as they are)."""
    if device == "cpu":
        return arrays
    import torch

    keys = ("labels", "probs", "logits", "true_posterior")  # the arrays the metrics read; others stay as they are
    return {key: torch.as_tensor(value).to(device) if key in keys else value for key, value in arrays.items()}


def _intervals(args: argparse.Namespace, probs: Any, labels: Any, from_logits: bool) -> dict[str, str]:
    from caltrain import metrics

    out = {}
    for name in ("ece", "adaece", "nll", "brier"):
        kwargs = {"n_bins": args.n_bins} if name in ("ece", "adaece") else {}
        _, lo, hi = metrics.bootstrap(
            name, probs, labels, n=args.bootstrap, seed=args.seed, from_logits=from_logits,
            ignore_index=args.ignore_index, **kwargs,
        )
        out[name] = (lo, hi)
    return out


def run(args: argparse.Namespace) -> int:
    from caltrain import metrics
    from caltrain.cli._checks import check_int_range, resolve_device
    from caltrain.utils.checks import MAX_BINS

    device = resolve_device(args.device)
    if args.demo == bool(args.file):
        raise ValueError("file: give a predictions file or --demo (not both, not neither)")
    check_int_range(args.n_bins, "--n-bins", low=1, high=MAX_BINS,
                    why="past that nearly every bin is empty, and memory grows with the number of bins")
    check_int_range(args.bootstrap, "--bootstrap", low=0, high=MAX_BOOTSTRAP,
                    why="percentile intervals are stable after a few thousand resamples")
    if args.bootstrap and args.abstention is not None:
        raise ValueError("--bootstrap: not available together with --abstention")
    if args.demo:
        args.n = 20000 if args.n is None else args.n
        check_int_range(args.n, "--n", low=1, high=MAX_DEMO_SAMPLES, why="the demo's arrays would not fit in memory")
        for option, value in (("--abstention", args.abstention), ("--ignore-index", args.ignore_index)):
            if value is not None:
                raise ValueError(f"{option}: applies to a predictions file, not to --demo")
    elif args.n is not None:
        raise ValueError("--n: sets the size of --demo; a predictions file is evaluated whole")
    if args.demo:
        data = _on_device(demo_predictions(args.n, seed=args.seed), device)
        columns = {
            "overconfident": metrics.summarize(
                data["probs"], data["labels"], n_bins=args.n_bins, true_posterior=data["true_posterior"]
            ),
            "true_posterior": metrics.summarize(
                data["true_posterior"], data["labels"], n_bins=args.n_bins, true_posterior=data["true_posterior"]
            ),
        }
        if args.json:
            print(json.dumps(columns, indent=2))
        else:
            if not args.quiet:
                print(
                    f"demo: {args.n} synthetic samples, 10 classes, labels drawn from a known posterior q;\n"
                    "'overconfident' = softmax(2.5 z) of the posterior's logits z, 'true_posterior' = q itself\n"
                )
            print(format_table(columns))
        return 0
    arrays = _on_device(_load(args.file), device)
    from_logits = "logits" in arrays
    values = arrays["logits"] if from_logits else arrays["probs"]
    summary = metrics.summarize(
        values,
        arrays["labels"],
        n_bins=args.n_bins,
        true_posterior=arrays.get("true_posterior"),
        abstention=args.abstention,
        ignore_index=args.ignore_index,
        from_logits=from_logits,
    )
    intervals = _intervals(args, values, arrays["labels"], from_logits) if args.bootstrap else {}
    if args.json:
        payload: dict[str, Any] = dict(summary)
        for name, (lo, hi) in intervals.items():
            payload[f"{name}_ci"] = [lo, hi]
        print(json.dumps(payload, indent=2))
        return 0
    column = {k: v for k, v in summary.items()}
    table_columns: dict[str, dict[str, Any]] = {"value": column}
    if intervals:
        table_columns["95% interval"] = {k: f"[{lo:.4f}, {hi:.4f}]" for k, (lo, hi) in intervals.items()}
    print(format_table(table_columns))
    return 0
