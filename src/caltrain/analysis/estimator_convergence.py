"""How far the calibration-error estimators are from the true calibration error, as the sample size N grows.

Every binned ECE estimates TCE = E |P(correct | conf) - conf| from labels; its bias depends on the number of
bins and on N (Kumar, Liang & Ma 2019, arXiv 1909.10155; Roelofs, Cain, Shlens & Mozer 2022, arXiv 2012.08668,
whose simulations this follows). Where the posterior is known the truth is known, so the error of each
estimator can be measured: for every model, size N and seed, draw N predictions with their labels, apply
each estimator, and report ``mean - truth`` (the bias) and the spread over seeds.

Models (``source``):

- ``"simulation"`` (default; exact truth): a two-class top-label model with confidence C = 0.5 + 0.5 U,
  U ~ Beta(5, 1) (mean confidence 0.92; most networks' confidences sit near 1, as in Roelofs et al.'s fits),
  P(correct | C) = R(C) and a label drawn from it. ``calibrated``: R(c) = c (TCE 0). ``overconfident``:
  logit R(c) = logit(c) / 1.5 (TCE 0.069 in L1, 0.072 in L2), Roelofs et al.'s logistic family. The truths are integrals
  over the Beta density (float64 midpoint rule, 200,000 points); the known posterior is (R(C), 1 - R(C)).
- ``"synthetic"``: caltrain's Gaussian mixture (:mod:`caltrain.data.synthetic`, 10 classes, 32 dimensions,
  separation 4). ``calibrated``: the Bayes classifier of the first 16 coordinates, p(y | x_1..16) (exactly
  calibrated for the observed label, TCE 0, yet its pointwise error against p(y | x) is large: the grouping
  loss); ``overconfident``: the same logits times 2. Truth of the latter: the known-posterior estimator
  :func:`caltrain.metrics.true_calibration_error` on 10^6 fresh samples (its own error there is below 0.002,
  tests/metrics/test_true_calibration.py).

Estimators (:data:`ESTIMATORS`): ECE with equal-width (``ece-width-B``) and equal-mass (``ece-mass-B``) bins for
B = 5, 15, 50; the debiased L2 ECE of Kumar et al. with 15 equal-mass bins (``debiased-l2``, compared with the L2
truth); smooth ECE with its automatic bandwidth (Blasiok & Nakkiran 2023, arXiv 2309.12236; its population
value is not TCE but a smoothed error tied to the distance to calibration, itself at most TCE: compared with the
L1 truth as a user would read it);
and the known-posterior estimator ``true-ece`` (:func:`caltrain.metrics.true_calibration_error`, P(correct | x)
in place of the labels: what only data with a known posterior allows).

``python -m caltrain.analysis.estimator_convergence`` (or ``caltrain bench estimators``) prints the table and
writes ``table.md``, ``table.json`` and ``figure.png`` (with matplotlib) under ``--out``; the default grid
(N = 100 ... 100,000, 10 seeds, both models) takes under a minute on one CPU core (docs/metrics.md).

Example:
    >>> rows = convergence_table(sizes=(200,), seeds=2, estimators=("ece-width-15", "true-ece"))
    >>> sorted({(r["model"], r["estimator"]) for r in rows})[:2]
    [('calibrated', 'ece-width-15'), ('calibrated', 'true-ece')]
    >>> rows[0]["truth"]
    0.0
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from caltrain import metrics as M
from caltrain.utils.checks import check_choice, check_positive_int

__all__ = [
    "ESTIMATORS",
    "MODELS",
    "SOURCES",
    "Model",
    "convergence_table",
    "format_table",
    "main",
    "make_models",
    "plot_convergence",
]

#: Sources of the models (module docstring).
SOURCES = ("simulation", "synthetic")
#: Model names, in both sources.
MODELS = ("calibrated", "overconfident")
#: Default sample sizes.
SIZES = (100, 300, 1_000, 3_000, 10_000, 30_000, 100_000)

Estimator = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _binned(n_bins: int, binning: str) -> Estimator:
    def estimate(p: torch.Tensor, y: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return M.expected_calibration_error(p, y, n_bins, binning=binning, validate_args=False)

    return estimate


#: name -> (estimator(probs, labels, true_posterior), the norm of the truth it is compared with).
ESTIMATORS: dict[str, tuple[Estimator, int]] = {
    **{f"ece-width-{b}": (_binned(b, "uniform"), 1) for b in (5, 15, 50)},
    **{f"ece-mass-{b}": (_binned(b, "quantile"), 1) for b in (5, 15, 50)},
    "debiased-l2": (lambda p, y, q: M.debiased_calibration_error(p, y, 15, validate_args=False), 2),
    "smooth-ece": (lambda p, y, q: M.smooth_calibration_error(p, y, validate_args=False), 1),
    "true-ece": (lambda p, y, q: M.true_calibration_error(p, q), 1),
}


@dataclass(frozen=True)
class Model:
    """A model whose calibration is known: ``sample(n, seed) -> (probs [n, K], labels [n], posterior [n, K])``.

    ``truth`` maps the norm (1, 2) to the population TCE; ``how`` says how it was obtained.
    """

    name: str
    sample: Callable[[int, int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    truth: dict[int, float]
    how: str


# -- the direct simulation ----------------------------------------------------------------------------------------

_BETA = (5.0, 1.0)
_TEMPERATURE = 1.5


def _reliability(kind: str, c: np.ndarray) -> np.ndarray:
    if kind == "calibrated":
        return c
    logit = np.log(c) - np.log1p(-np.minimum(c, 1 - 1e-16))
    return 1.0 / (1.0 + np.exp(-logit / _TEMPERATURE))


def _simulation_model(kind: str, seed: int) -> Model:
    a, b = _BETA
    u = (np.arange(200_000) + 0.5) / 200_000
    w = u ** (a - 1) * (1 - u) ** (b - 1)
    w /= w.sum()
    c = 0.5 + 0.5 * u
    gap = _reliability(kind, c) - c
    truth = {1: float(np.dot(w, np.abs(gap))), 2: float(math.sqrt(np.dot(w, gap**2)))}

    def sample(n: int, rep: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([seed, MODELS.index(kind), n, rep])
        conf = 0.5 + 0.5 * rng.beta(a, b, n)
        r = _reliability(kind, conf)
        wrong = rng.uniform(size=n) >= r
        probs = torch.from_numpy(np.stack([conf, 1 - conf], 1))
        return probs, torch.from_numpy(wrong.astype(np.int64)), torch.from_numpy(np.stack([r, 1 - r], 1))

    how = "Beta(5, 1) integral" if kind == "overconfident" else "exact (calibrated)"
    return Model(kind, sample, truth, how)


# -- caltrain's Gaussian mixture ------------------------------------------------------------------------------------

_REFERENCE_N = 1_000_000


def _synthetic_model(kind: str, seed: int) -> Model:
    from caltrain.data.seeding import make_generator
    from caltrain.data.synthetic import GaussianMixture

    mixture = GaussianMixture.random(10, 32, separation=4.0, seed=0)
    seen = mixture.means[:, :16]
    scale = 1.0 if kind == "calibrated" else 2.0

    def predict(x: torch.Tensor) -> torch.Tensor:
        logits = mixture.prior.log() - 0.5 * torch.cdist(x[:, :16].to(torch.float64), seen).pow(2)
        return torch.softmax(scale * logits, dim=1)

    def draw(n: int, *parts: int | str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = mixture.sample(n, make_generator(seed, "estimator-convergence", kind, *parts))
        return predict(x), y, mixture.posterior(x)

    def sample(n: int, rep: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return draw(n, n, rep)

    if kind == "calibrated":
        return Model(kind, sample, {1: 0.0, 2: 0.0}, "exact (Bayes classifier of 16 coordinates)")
    conf, q = [], []
    # only (C, Q) are kept: 16 MB, whatever the dimension (_REFERENCE_N is read here: the tests lower it)
    for i in range(0, _REFERENCE_N, 100_000):
        p, _, post = draw(100_000, "reference", i)
        c, pred = p.max(1)
        conf.append(c)
        q.append(post.gather(1, pred[:, None]).squeeze(1))
    from caltrain.metrics.true_calibration import true_calibration_from_scores

    c, qq = torch.cat(conf), torch.cat(q)
    truth = {r: float(true_calibration_from_scores(c, qq, norm=r)["true_ece"]) for r in (1, 2)}
    return Model(kind, sample, truth, f"known-posterior estimate on {_REFERENCE_N:,} samples")


def make_models(source: str = "simulation", *, seed: int = 0) -> list[Model]:
    """The two models of ``source`` (module docstring): calibrated and over-confident."""
    check_choice(source, "source", SOURCES)
    build = _simulation_model if source == "simulation" else _synthetic_model
    return [build(kind, seed) for kind in MODELS]


def convergence_table(
    *,
    sizes: Sequence[int] = SIZES,
    seeds: int = 10,
    source: str = "simulation",
    estimators: Sequence[str] | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per (model, estimator, N): the estimates over ``seeds`` draws against the known truth.

    Row keys: ``model``, ``estimator``, ``norm`` (of the truth compared with), ``n``, ``seeds``, ``truth``,
    ``mean``, ``bias`` (mean - truth), ``sd`` (over seeds), ``rmse`` (root mean squared error against the truth).

    Args:
        sizes: sample sizes N (each a positive int).
        seeds: draws per (model, N) (at least 2, for the spread).
        source: ``"simulation"`` (exact truth) or ``"synthetic"`` (:data:`SOURCES`).
        estimators: names in :data:`ESTIMATORS` (default: all).
        seed: base seed of every draw.
    """
    names = list(ESTIMATORS) if estimators is None else [check_choice(e, "estimators", ESTIMATORS) for e in estimators]
    sizes = [check_positive_int(n, "sizes") for n in sizes]
    seeds = check_positive_int(seeds, "seeds", minimum=2)
    rows = []
    for model in make_models(source, seed=seed):
        for n in sizes:
            values = np.empty((seeds, len(names)))
            for rep in range(seeds):
                probs, labels, posterior = model.sample(n, rep)
                for j, name in enumerate(names):
                    values[rep, j] = float(ESTIMATORS[name][0](probs, labels, posterior))
            for j, name in enumerate(names):
                norm = ESTIMATORS[name][1]
                truth, v = model.truth[norm], values[:, j]
                rows.append({
                    "model": model.name, "estimator": name, "norm": norm, "n": n, "seeds": seeds,
                    "truth": truth, "mean": float(v.mean()), "bias": float(v.mean() - truth),
                    "sd": float(v.std(ddof=1)), "rmse": float(np.sqrt(np.mean((v - truth) ** 2))),
                })
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per (model, estimator), one column per N, cells ``bias ± sd``."""
    sizes = sorted({r["n"] for r in rows})
    head = "| model | estimator | truth | " + " | ".join(f"N = {n:,}" for n in sizes) + " |"
    lines = [head, "|" + "---|" * (3 + len(sizes))]
    cells: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault((r["model"], r["estimator"]), {})[r["n"]] = r
    for (model, name), by_n in cells.items():
        first = next(iter(by_n.values()))
        truth = f"{first['truth']:.4f}" + (" (L2)" if first["norm"] == 2 else "")
        values = [f"{by_n[n]['bias']:+.4f} ± {by_n[n]['sd']:.4f}" if n in by_n else "" for n in sizes]
        lines.append(f"| {model} | {name} | {truth} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def _style(name: str, i: int) -> tuple[str, str, float]:
    """(colour, line style, width): one colour per bin count, solid for equal width, dashed for equal mass."""
    if name.startswith(("ece-width-", "ece-mass-")):
        colour = {"5": "C0", "15": "C1", "50": "C2"}.get(name.rsplit("-", 1)[1], f"C{i % 10}")
        return colour, "-" if name.startswith("ece-width-") else "--", 1.2
    return {"debiased-l2": ("C3", "-.", 1.2), "smooth-ece": ("C4", ":", 1.6), "true-ece": ("black", "-", 2.2)}.get(
        name, (f"C{i % 10}", "-", 1.2))


def plot_convergence(rows: list[dict[str, Any]], *, estimators: Sequence[str] | None = None) -> Any:
    """A matplotlib ``Figure`` (Agg, no pyplot state): one panel per model, bias against N (log), band ± sd."""
    from matplotlib.figure import Figure

    models = list(dict.fromkeys(r["model"] for r in rows))
    names = list(dict.fromkeys(r["estimator"] for r in rows)) if estimators is None else list(estimators)
    fig = Figure(figsize=(5.2 * len(models), 4.2), layout="constrained")
    axes = fig.subplots(1, len(models), sharey=True, squeeze=False)[0]
    for ax, model in zip(axes, models):
        for i, name in enumerate(names):
            sel = sorted((r for r in rows if r["model"] == model and r["estimator"] == name), key=lambda r: r["n"])
            if not sel:
                continue
            n = np.array([r["n"] for r in sel])
            bias = np.array([r["bias"] for r in sel])
            sd = np.array([r["sd"] for r in sel])
            colour, style, width = _style(name, i)
            ax.plot(n, bias, style, marker="o", ms=3, color=colour, label=name, lw=width)
            ax.fill_between(n, bias - sd, bias + sd, color=colour, alpha=0.07)
        truth = next(r["truth"] for r in rows if r["model"] == model and r["norm"] == 1)
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("samples N")
        ax.set_title(f"{model} (true ECE {truth:.3f})")
    axes[0].set_ylabel("estimate - true calibration error")
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return fig


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m caltrain.analysis.estimator_convergence",
        description="Bias of the binned, debiased and smooth ECE estimators against the known true calibration "
                    "error as N grows, for a calibrated and an over-confident model (docs/metrics.md).",
    )
    parser.add_argument("--out", metavar="DIR", default="runs/estimator-convergence",
                        help="writes table.md, table.json and figure.png here (default: ./runs/estimator-convergence)")
    parser.add_argument("--seeds", type=int, default=10, help="draws per model and N (default 10, at least 2)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="sample sizes N")
    parser.add_argument("--source", choices=SOURCES, default="simulation",
                        help="simulation (exact truth, default) or synthetic (caltrain's Gaussian mixture)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Compute the table, print it, write it (Markdown and JSON) and the figure under ``--out``."""
    from caltrain.utils.io import atomic_write_bytes, atomic_write_json, atomic_write_text

    args = _parser().parse_args(argv)
    for n in args.sizes:
        if not 1 <= n <= 10**7:
            raise ValueError(f"--sizes: expected sample sizes from 1 to 10,000,000, got {n}")
    if not 2 <= args.seeds <= 10_000:
        raise ValueError(f"--seeds: expected 2 to 10,000 draws, got {args.seeds}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is an existing file, not a directory")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is faster, and much faster on a shared machine
    try:
        rows = convergence_table(sizes=args.sizes, seeds=args.seeds, source=args.source)
    finally:
        torch.set_num_threads(threads)
    table = format_table(rows)
    print(table)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "table.md", table + "\n")
    atomic_write_json(out / "table.json", {"source": args.source, "seeds": args.seeds, "rows": rows})
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("no figure: matplotlib is not installed (pip install caltrain[report])", file=sys.stderr)
    else:
        import io

        buffer = io.BytesIO()
        plot_convergence(rows).savefig(buffer, format="png", dpi=110)
        atomic_write_bytes(out / "figure.png", buffer.getvalue())
    figure = ", figure.png" if "matplotlib" in sys.modules else ""
    print(f"written: {out / 'table.md'}, {out / 'table.json'}{figure}", file=sys.stderr)
    return 0


def bench_argv(args: argparse.Namespace) -> list[str]:
    """The arguments of :func:`main` from ``caltrain bench estimators``'s namespace (``--out``, ``--seeds``);
    the suite options that do not apply raise ``ValueError`` naming them."""
    unused = [opt for opt, given in (
        ("--set", args.set or getattr(args, "extra_overrides", None)), ("--executor", args.executor != "local"),
        ("--address", args.address), ("--import", args.imports), ("--no-report", args.no_report),
    ) if given]
    if unused:
        raise ValueError(f"{unused[0]}: does not apply to 'caltrain bench estimators' (a study, not a suite)")
    argv = ["--out", str(args.out)] if args.out else []
    return argv + (["--seeds", str(args.seeds)] if args.seeds is not None else [])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
