"""Does ASLP's per-image perturbation probability follow the annotator's uncertainty? α_i against τ_i.

ASLP (Liu et al., ICCV 2023, arXiv 2307.13539) learns one label-perturbation probability α_i per training image.
Its update raises α_i with the image's mean signed logit margin g_i: images the model fits confidently get more
perturbation. On ``synthetic_saliency`` every training mask is drawn with a known annotator uncertainty τ_i
(pixels of boundary blur and label jitter, ``split.extra["tau"]``): a sharply annotated image (small τ_i) is
easy to fit confidently, so the design predicts that α_i **falls** as τ_i grows, a negative correlation. This
module measures it on finished runs:

- :func:`alpha_and_tau`: the run's final α (``sample_state.npz``, written by the trainer) and τ of the same
  training images (the dataset rebuilt from the run's ``config.yaml``; the embedded data is a pure function of
  its options);
- :func:`alpha_tau_correlation`: Pearson r and Spearman ρ (average ranks for ties: many α_i sit at the clamp 0)
  with the number of images;
- ``python -m caltrain.analysis.aslp RUN_OR_SUITE [...]``: one line per ASLP run, and the mean over runs.

Reading: a correlation over the *final* α (after the last epoch), not the selected epoch's.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["alpha_and_tau", "alpha_tau_correlation", "main", "rank_average", "suite_alpha_tau"]


def rank_average(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x`` with ties given their average rank (as ``scipy.stats.rankdata``).

    Example:
        >>> rank_average(np.array([0.0, 0.0, 0.3, 0.1, 0.0])).tolist()
        [2.0, 2.0, 5.0, 4.0, 2.0]
    """
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1, dtype=np.float64)
    _, first, counts = np.unique(x[order], return_index=True, return_counts=True)
    for start, count in zip(first, counts):  # one iteration per distinct value with ties, not per sample
        if count > 1:
            block = order[start : start + count]
            ranks[block] = ranks[block].mean()
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / denom if denom > 0 else float("nan")


def alpha_and_tau(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha [N], tau [N])`` of the training images of an ASLP run on a dataset that knows τ.

    Raises:
        ValueError: the run has no per-image α (not an ASLP run, or written before ``sample_state.npz``) or its
            dataset records no τ.
    """
    from caltrain import data
    from caltrain.train.config import load_yaml
    from caltrain.train.run_dir import RunDir
    from caltrain.utils.io import load_arrays

    run = RunDir(Path(run_dir))
    if not run.sample_state.is_file():
        raise ValueError(f"{run.root}: no sample_state.npz (not an objective with per-sample state, or an older run)")
    state = load_arrays(run.sample_state)
    if "alpha" not in state:
        raise ValueError(f"{run.sample_state}: holds {sorted(state)}, no 'alpha' (not an ASLP run)")
    cfg = load_yaml(run.config)
    ds = data.create(cfg["data"]["name"], root=cfg["data"].get("root"), **(cfg["data"].get("options") or {}))
    tau = (getattr(ds.train, "extra", None) or {}).get("tau")
    if tau is None:
        raise ValueError(f"{run.root}: dataset {cfg['data']['name']!r} records no annotator uncertainty tau")
    alpha = np.asarray(state["alpha"], dtype=np.float64)
    tau = tau.double().numpy()
    if alpha.shape != tau.shape:
        raise ValueError(f"{run.root}: alpha has {alpha.shape[0]} entries, the training split {tau.shape[0]} images")
    return alpha, tau


def alpha_tau_correlation(run_dir: str | Path) -> dict[str, float]:
    """Pearson r and Spearman ρ of α_i and τ_i over a run's training images, with ``n`` and α's mean."""
    alpha, tau = alpha_and_tau(run_dir)
    return {
        "pearson": _pearson(alpha, tau),
        "spearman": _pearson(rank_average(alpha), rank_average(tau)),
        "n": float(len(alpha)),
        "alpha_mean": float(alpha.mean()),
    }


def suite_alpha_tau(paths: Sequence[str | Path]) -> dict[str, dict[str, float]]:
    """:func:`alpha_tau_correlation` of every ASLP run under ``paths`` (run or suite directories), by run name."""
    from caltrain.train.run_dir import RunDir

    out: dict[str, dict[str, float]] = {}
    for path in paths:
        root = Path(path)
        runs = [root] if (root / "config.yaml").is_file() else sorted(p for p in (root / "runs").glob("*") if p.is_dir())
        for run in runs:
            if RunDir(run).sample_state.is_file():
                try:
                    out[run.name] = alpha_tau_correlation(run)
                except ValueError:
                    continue
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m caltrain.analysis.aslp",
                                     description="correlation of ASLP's per-image alpha with the annotator "
                                                 "uncertainty tau (synthetic_saliency runs)")
    parser.add_argument("paths", nargs="+", metavar="RUN_OR_SUITE", help="run or suite directories")
    args = parser.parse_args(argv)
    table = suite_alpha_tau(args.paths)
    if not table:
        print("no ASLP run with per-image alpha and a known tau under the given paths", file=sys.stderr)
        return 1
    for name, row in table.items():
        print(f"{name:45s} pearson {row['pearson']:+.3f}  spearman {row['spearman']:+.3f}  "
              f"n {int(row['n'])}  mean alpha {row['alpha_mean']:.4f}")
    for key in ("pearson", "spearman"):
        values = np.array([row[key] for row in table.values()])
        finite = values[np.isfinite(values)]
        constant = len(values) - len(finite)
        note = f" ({constant} runs left out: alpha constant, no correlation defined)" if constant else ""
        if not len(finite):
            print(f"mean {key}: undefined{note}")
            continue
        std = finite.std(ddof=1) if len(finite) > 1 else float("nan")
        print(f"mean {key}: {finite.mean():+.3f} ± {std:.3f} over {len(finite)} runs{note}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
