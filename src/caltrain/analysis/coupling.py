"""CalMO's coupling study in miniature: does ECE move with the Gauss-Newton sharpness along training?

Morosini et al. ("Too Sharp, Too Sure", arXiv 2604.20614; docs/methods.md#calmo-and-the-calibration-curvature-link)
train a 2 x 200 tanh MLP with several optimisers, measure ECE and curvature along the trajectory and report the
Pearson correlation between them (test ECE vs sharpness r = .96-.98 for GD/SGD/SAM). Here the training is the
library's own: the shipped suite ``calmo-coupling`` (``caltrain/train/suites/calmo-coupling.yaml``: the embedded
Gaussian mixture, CalMO's MLP, CE and CalMO under SGD, AdamW, Muon and SAM) run by
:func:`caltrain.train.suite.run_suite`, with the trainer's ``curvature.every_steps`` tracking and
``eval.every_steps`` test evaluations. This module only reads the finished runs' ``metrics.jsonl``:

    python -m caltrain.analysis.coupling --out runs/coupling          # run the suite (about a minute), then analyse
    python -m caltrain.analysis.coupling --analyse runs/coupling      # analyse a finished suite folder only

Per run, two correlations over the tracked steps (:func:`run_coupling`):

- ``r_subset``: r(ECE, GN sharpness), both measured by the tracker on the same ``curvature.subset`` training
  samples (the pairing of the paper's bound: the same margin tail controls both);
- ``r_test``: r(test ECE, GN sharpness on the training samples), the pairing of the paper's figure, whose
  sharpness data the paper does not state (a reading). It needs ``eval.every_steps`` to hit the tracked steps.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from caltrain.utils.io import atomic_write_json, read_json

__all__ = ["SUITE", "coupling_table", "main", "pearson_r", "run_coupling"]

#: The shipped suite this study runs.
SUITE = "calmo-coupling"


def pearson_r(a: Sequence[float], b: Sequence[float]) -> float:
    """Pearson correlation r = cov(a, b) / (sd(a) sd(b)) of two equally long series, in float64.

    NaN when either series is constant or shorter than 3.

    Example:
        >>> round(pearson_r([1, 2, 3, 4], [2, 4, 5, 9]), 4)
        0.9562
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"pearson_r: series of different lengths {a.shape} and {b.shape}")
    if a.size < 3 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def run_coupling(records: list[dict[str, Any]], *, sharpness_key: str = "gn_sharpness") -> dict[str, Any]:
    """The coupling statistics of one run, from its ``metrics.jsonl`` records.

    Args:
        records: the run's records; those with a ``curvature`` entry are the tracked steps, those with a
            ``test`` entry give the test ECE at their step (epoch-end and ``eval.every_steps`` records alike).
        sharpness_key: the tracker value correlated with ECE (default ``gn_sharpness``; ``batch_sharpness``).

    Returns:
        ``{"points", "r_subset", "points_test", "r_test", "final_test_ece", "final_test_accuracy"}``: the
        number of tracked steps, r(ECE, sharpness) on the tracked training samples, the number of tracked
        steps with a test evaluation, r(test ECE, sharpness) over them, and the last test ECE and accuracy (NaN
        where absent).

    Raises:
        ValueError: no curvature record (the run was trained without ``curvature.every_steps``).
    """
    tracked = [r for r in records if isinstance(r.get("curvature"), dict)]
    if not tracked:
        raise ValueError("records: no curvature records (train with curvature.every_steps set)")
    test = {r["step"]: r["test"] for r in records if isinstance(r.get("test"), dict)}
    sharp = [r["curvature"][sharpness_key] for r in tracked]
    paired = [(test[r["step"]]["ece"], r["curvature"][sharpness_key]) for r in tracked if r["step"] in test]
    last = test[max(test)] if test else {}
    return {
        "points": len(tracked),
        "r_subset": pearson_r([r["curvature"]["ece"] for r in tracked], sharp),
        "points_test": len(paired),
        "r_test": pearson_r(*zip(*paired)) if paired else math.nan,
        "final_test_ece": last.get("ece", math.nan),
        "final_test_accuracy": last.get("accuracy", math.nan),
    }


def coupling_table(suite_dir: str | Path, *, sharpness_key: str = "gn_sharpness") -> list[dict[str, Any]]:
    """One row per finished run of a suite folder (``suite_dir/runs/*`` with ``labels.json``), grid order.

    Each row is the run's labels (``dataset``, ``objective``, ``variant`` = the optimiser, ``seed``) plus
    :func:`run_coupling`'s statistics. Runs without curvature records or without ``metrics.jsonl`` are skipped.

    Raises:
        FileNotFoundError: ``suite_dir/runs`` does not exist.
    """
    from caltrain.train.run_dir import RunDir

    runs = Path(suite_dir) / "runs"
    if not runs.is_dir():
        raise FileNotFoundError(f"{runs}: no such folder (expected a suite output folder, see run_suite)")
    order = _suite_order(Path(suite_dir))
    rows = []
    for root in sorted(runs.iterdir(), key=lambda p: (order.get(p.name, len(order)), p.name)):
        if not (root / "labels.json").exists():
            continue
        records = RunDir(root).read_metrics()
        if not any("curvature" in r for r in records):
            continue
        rows.append({"run": root.name, **read_json(root / "labels.json"),
                     **run_coupling(records, sharpness_key=sharpness_key)})
    return rows


def _suite_order(suite_dir: Path) -> dict[str, int]:
    path = suite_dir / "suite.json"
    return {name: k for k, name in enumerate(read_json(path)["runs"])} if path.exists() else {}


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as aligned text, one line per run."""
    head = f"{'objective':10s} {'optimizer':9s} {'seed':>4s} {'test acc':>8s} {'test ECE':>8s} | " \
           f"{'r(ECE, GN) subset':>17s} {'r(test ECE, GN)':>15s} {'points':>6s}"
    lines = [head]
    for r in rows:
        lines.append(f"{r['objective']:10s} {r['variant'] or '-':9s} {r['seed']:4d} {r['final_test_accuracy']:8.3f} "
                     f"{r['final_test_ece']:8.3f} | {r['r_subset']:+17.3f} {r['r_test']:+15.3f} {r['points']:6d}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m caltrain.analysis.coupling",
        description="CalMO's coupling study in miniature: run the calmo-coupling suite, then print the Pearson r "
                    "between ECE and GN sharpness per objective and optimiser.",
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--out", metavar="DIR", default="runs/calmo-coupling",
                      help="suite output folder (default: ./runs/calmo-coupling; finished runs are reused)")
    what.add_argument("--analyse", metavar="DIR", help="only analyse this finished suite folder")
    parser.add_argument("--suite", default=SUITE, help=f"suite name or YAML file (default: {SUITE})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="configuration override for every run, e.g. --set epochs=10 (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default: the suite's)")
    parser.add_argument("--sharpness", default="gn_sharpness", help="tracker value to correlate with ECE")
    parser.add_argument("--json", default=None, help="write the rows to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite (unless ``--analyse``), print one line per run, optionally save the rows as JSON."""
    args = _parser().parse_args(argv)
    folder = args.analyse
    if folder is None:
        from caltrain.train.suite import load_suite, run_suite

        folder = args.out
        result = run_suite(load_suite(args.suite), folder, overrides=args.overrides, seeds=args.seeds)
        if result["failed"]:
            print(f"{len(result['failed'])} run(s) failed; the table covers the others", file=sys.stderr)
    rows = coupling_table(folder, sharpness_key=args.sharpness)
    print(format_table(rows))
    if args.json:
        atomic_write_json(args.json, rows)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
