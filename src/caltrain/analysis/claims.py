"""Each seed paper's claim as a designed experiment: paired effects across seeds, 95% intervals, verdicts.

A claim (:class:`Claim`) names the shipped suite that tests it (``caltrain/train/suites/claims-*.yaml``) and its
parts (:class:`Part`): a metric, the arm of the claimed method and the arm it is compared with (a selection of the
suite's runs by their labels), the claimed direction and, for "at least as good as" claims, a non-inferiority
margin. ``caltrain bench claims`` (:func:`run_claims`) runs the suites with the suite runner, reads the runs back
through the aggregate (:func:`caltrain.train.aggregate.results`) and writes ``claims.json``, ``claims.md`` and
``claims.html``. Everything between the runs and the verdicts is a pure function of the run records
(:func:`evaluate_claim`), tested on hand-made numbers.

**Paired effects.** Seed s of the method and seed s of the baseline share their data split and initial-weight
seed, so the unit of analysis is the seed: with v_s and b_s the metric of the two arms on seed s, the per-seed
difference is d_s = v_s − b_s over the S seeds both arms finished, and the effect is its mean
d̄ = (1/S) Σ_s d_s. An arm may itself be a contrast (``Arm.relative_to``: v_s = m(A, s) − m(B, s)), which makes
difference-in-differences effects ("a larger gain on the long-tailed data"). A part without baseline is a
one-sample test of the mean of v_s against ``null`` (the Pearson r of the coupling claim).

**Intervals** (level 1 − α, α = 0.05):

- ``statistic="mean"``: the paired t interval d̄ ± t_{1−α/2, S−1} · sd(d) / √S, sd with ddof = 1
  (Student 1908; for S = 5 seeds t_{0.975, 4} = 2.776). Chosen over the percentile bootstrap of d̄, whose
  coverage with 5 seeds is well below 95% (84% in a seeded simulation of normal differences; there are only 126
  distinct resamples of 5 values).
- ``statistic="seed_std"`` (variability across seeds): the effect is sd_s(v) − sd_s(b), the difference of the
  two arms' sample standard deviations over the same seeds; its interval is the percentile bootstrap over seeds,
  resampling the seed indices jointly for both arms (paired), ``n_boot`` = 10,000 resamples from a seeded NumPy
  generator, quantiles with linear interpolation (``numpy.quantile``'s default). With 5 seeds this interval is
  wide and biased towards 0 (a resample with repeated seeds has a smaller sd): read it as weak evidence.
  ``caltrain.metrics.bootstrap`` resamples the samples of one prediction set, not seeds, so it is not reused.

**Verdict rule** (:func:`verdict`). A part claims d < θ (direction "less") or d > θ ("greater"), where the
threshold θ is ``null`` shifted by the margin δ ≥ 0 towards the baseline's side: θ = null + δ for "less",
θ = null − δ for "greater" (null = 0 for a paired comparison; δ = 0 for a superiority claim, so θ = 0). With
[lo, hi] the interval:

- **holds** when the interval lies entirely on the claimed side of θ (hi < θ for "less", lo > θ for "greater");
- **does not hold** when it lies entirely on the other side (lo > θ for "less", hi < θ for "greater");
- **inconclusive** otherwise (the interval contains θ), and whenever fewer than 2 seeds are paired.

A claim with several parts holds when every part holds, does not hold when any part does not hold, and is
inconclusive otherwise (:func:`combine`). A non-inferiority part ("at least as good", "no worse", "at equal
accuracy") that holds while its interval excludes 0 on the worse side gets a note: the method is worse, but by
less than the margin. The margins are caltrain's choices (the papers do not define "equal accuracy"):
:data:`MARGINS`. Other notes flag what makes a verdict weak rather than tuning the experiment until it holds:
equal per-seed differences (a zero-width interval), fewer than 2 paired seeds, an inconclusive non-inferiority
interval wider than twice its margin (too few seeds or test samples), and a convergence metric every run meets
within 2 epochs (data too easy at epoch resolution).

**Trade-off fronts** (MbLS). Each method is swept over a hyperparameter; per seed its settings give points
(test accuracy a, test ECE e), the non-dominated ones form its Pareto front (:func:`pareto_front`) and the front
is summarised by its hypervolume (:func:`hypervolume`, Zitzler & Thiele 1998): the area of the (accuracy, ECE)
region that the front dominates and that dominates the reference point r = (min a, max e) over every run of the
suite (all methods, all seeds; fixed for the experiment). A larger hypervolume is a better trade-off; the
effect is the paired difference of the per-seed hypervolumes.

Example:
    >>> lo, hi = paired_t_interval([0.01, 0.03, 0.02, 0.02, 0.02])[1:]
    >>> round(lo, 4), round(hi, 4)
    (0.0112, 0.0288)
    >>> verdict(lo, hi, direction="greater", threshold=0.0)
    'holds'
"""

from __future__ import annotations

import functools
import html
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

__all__ = [
    "ALPHA", "CLAIMS", "HOLDS", "INCONCLUSIVE", "MARGINS", "NOT_HOLDS", "PENDING", "Arm", "Claim", "Part",
    "bootstrap_interval", "combine", "evaluate_claim", "evaluate_folder", "evaluate_part", "hypervolume",
    "metric_value", "paired_t_interval", "pareto_front", "run_claims", "select_claims", "setting_text",
    "suite_setting", "t_quantile",
    "to_html", "to_markdown", "verdict", "write_pages",
]

HOLDS, NOT_HOLDS, INCONCLUSIVE, PENDING = "holds", "does not hold", "inconclusive", "pending"
#: Two-sided level of every interval (95% intervals).
ALPHA = 0.05
#: Bootstrap resamples for the ``seed_std`` statistic.
N_BOOT = 10_000
#: Non-inferiority margins δ (caltrain's choices): accuracy 1 percentage point, ECE 0.5 point, NLL 0.01 nats.
MARGINS = {"accuracy": 0.01, "ece": 0.005, "nll": 0.01}
#: Epoch-end records over which ``last_epochs_ece_std`` is taken.
LAST_EPOCHS = 5

VERDICT_RULE = (
    "Per part: the effect's 95% interval entirely on the claimed side of the threshold (0, or 0 shifted by the "
    "non-inferiority margin towards the baseline) => holds; entirely on the other side => does not hold; "
    "otherwise (or fewer than 2 paired seeds) => inconclusive. A claim holds when every part holds, does not "
    "hold when any part does not hold, and is inconclusive otherwise."
)


# --------------------------------------------------------------------------------------------------------------
# Statistics (pure, float64)
# --------------------------------------------------------------------------------------------------------------

def _t_central_mass(theta: float, df: int) -> float:
    """P(|T| < t) for Student's t with integer ``df``, as a function of theta = atan(t / sqrt(df)).

    Abramowitz & Stegun 26.7.3-26.7.4: with c = cos theta, s = sin theta,
    odd df:  (2/pi) (theta + s (c + (2/3) c^3 + (2·4)/(3·5) c^5 + ... up to c^(df-2)))  (theta alone for df = 1);
    even df: s (1 + (1/2) c^2 + (1·3)/(2·4) c^4 + ... up to c^(df-2)).
    """
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2:
        total, term = 0.0, math.cos(theta)
        for j in range(1, (df - 1) // 2 + 1):
            total += term
            term *= (2 * j) / (2 * j + 1) * c2
        return (2 / math.pi) * (theta + s * total)
    total, term = 0.0, 1.0
    for j in range(1, df // 2 + 1):
        total += term
        term *= (2 * j - 1) / (2 * j) * c2
    return s * total


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t distribution with integer ``df`` >= 1 degrees of freedom.

    Inverts the exact finite-series CDF of Abramowitz & Stegun 26.7.3-26.7.4 by bisection on
    theta = atan(t / sqrt(df)) in [0, pi/2) (200 halvings: exact to float64). No SciPy needed.

    Example:
        >>> round(t_quantile(0.975, 4), 4), round(t_quantile(0.975, 1), 4)
        (2.7764, 12.7062)
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p: expected a probability in (0, 1), got {p!r}")
    if int(df) != df or df < 1:
        raise ValueError(f"df: expected an integer >= 1, got {df!r}")
    df = int(df)
    if p == 0.5:
        return 0.0
    target = abs(2.0 * p - 1.0)  # P(|T| < t) for t the quantile of max(p, 1 - p)
    lo, hi = 0.0, math.pi / 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_central_mass(mid, df) < target:
            lo = mid
        else:
            hi = mid
    t = math.sqrt(df) * math.tan(0.5 * (lo + hi))
    return t if p > 0.5 else -t


def paired_t_interval(differences: Sequence[float], alpha: float = ALPHA) -> tuple[float, float, float]:
    """``(mean, lo, hi)``: the mean of the paired differences and its two-sided 1 − ``alpha`` t interval.

    mean ± t_{1−alpha/2, S−1} · sd / sqrt(S), sd the sample standard deviation (ddof = 1) of the S differences.
    With S < 2 the interval is (nan, nan) (no spread to estimate).
    """
    d = np.asarray(differences, dtype=np.float64).ravel()
    if d.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(d.mean())
    if d.size < 2:
        return mean, math.nan, math.nan
    half = t_quantile(1 - alpha / 2, d.size - 1) * float(d.std(ddof=1)) / math.sqrt(d.size)
    return mean, mean - half, mean + half


def bootstrap_interval(
    statistic: Callable[[np.ndarray, np.ndarray], np.ndarray],
    method: Sequence[float],
    baseline: Sequence[float],
    *,
    n: int = N_BOOT,
    seed: int = 0,
    alpha: float = ALPHA,
) -> tuple[float, float, float]:
    """``(estimate, lo, hi)``: a statistic of two paired series and its percentile bootstrap interval.

    Args:
        statistic: ``f(m, b) -> values``, vectorised over rows: ``m`` and ``b`` are ``float64 [R, S]`` (R
            resamples of the S paired seeds), it returns ``[R]``.
        method, baseline: the two arms' values, seed by seed (same length S >= 2).
        n: resamples; the seed indices of each resample are drawn with replacement from ``seed``'s
            ``numpy.random.default_rng``, as one ``[n, S]`` matrix, shared by both arms (paired).
        alpha: two-sided level; the interval is the (alpha/2, 1 − alpha/2) quantiles (linear interpolation).
    """
    m = np.asarray(method, dtype=np.float64).ravel()
    b = np.asarray(baseline, dtype=np.float64).ravel()
    if m.shape != b.shape:
        raise ValueError(f"method, baseline: paired series of different lengths {m.size} and {b.size}")
    if m.size < 2:
        return math.nan, math.nan, math.nan
    estimate = float(statistic(m[None], b[None])[0])
    index = np.random.default_rng(seed).integers(0, m.size, size=(int(n), m.size))
    values = statistic(m[index], b[index])
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return estimate, float(lo), float(hi)


def seed_std_difference(m: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise sd(m) − sd(b) (ddof = 1) of ``[R, S]`` arrays: the ``seed_std`` statistic."""
    return m.std(axis=1, ddof=1) - b.std(axis=1, ddof=1)


def verdict(lo: float, hi: float, *, direction: str, threshold: float = 0.0) -> str:
    """:data:`HOLDS`, :data:`NOT_HOLDS` or :data:`INCONCLUSIVE` for an interval [lo, hi] (module docstring).

    ``direction`` "less" claims effect < threshold, "greater" effect > threshold. A NaN bound is inconclusive.
    """
    if direction not in ("less", "greater"):
        raise ValueError(f"direction: expected 'less' or 'greater', got {direction!r}")
    if math.isnan(lo) or math.isnan(hi):
        return INCONCLUSIVE
    if direction == "less":
        return HOLDS if hi < threshold else NOT_HOLDS if lo > threshold else INCONCLUSIVE
    return HOLDS if lo > threshold else NOT_HOLDS if hi < threshold else INCONCLUSIVE


def combine(verdicts: Sequence[str]) -> str:
    """A claim's verdict from its parts': holds iff all hold, does not hold iff any does not, else inconclusive."""
    if not verdicts:
        return INCONCLUSIVE
    if any(v == NOT_HOLDS for v in verdicts):
        return NOT_HOLDS
    return HOLDS if all(v == HOLDS for v in verdicts) else INCONCLUSIVE


def pareto_front(accuracy: Sequence[float], ece: Sequence[float]) -> np.ndarray:
    """Indices (ascending) of the points no other point dominates (higher-or-equal accuracy and lower-or-equal
    ECE, one of them strictly). Duplicated points are kept once (the first)."""
    a = np.asarray(accuracy, dtype=np.float64)
    e = np.asarray(ece, dtype=np.float64)
    keep = []
    for i in range(a.size):
        dominated = np.any((a >= a[i]) & (e <= e[i]) & ((a > a[i]) | (e < e[i])))
        duplicate = np.any((a[:i] == a[i]) & (e[:i] == e[i]))
        if not dominated and not duplicate:
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def hypervolume(accuracy: Sequence[float], ece: Sequence[float], reference: tuple[float, float]) -> float:
    """Area of {(a, e): r_a <= a <= a_i and e_i <= e <= r_e for some point i}: what the points dominate in
    (accuracy up, ECE down) above the reference r = (r_a, r_e).

    With the front sorted by accuracy a_1 > ... > a_m (so e_1 > ... > e_m) and a_{m+1} = r_a:
    HV = Σ_i (a_i − a_{i+1}) (r_e − e_i). Points that do not dominate r contribute nothing.
    """
    a = np.asarray(accuracy, dtype=np.float64)
    e = np.asarray(ece, dtype=np.float64)
    ra, re = float(reference[0]), float(reference[1])
    inside = (a > ra) & (e < re)
    a, e = a[inside], e[inside]
    if a.size == 0:
        return 0.0
    front = pareto_front(a, e)
    order = front[np.argsort(-a[front], kind="stable")]
    fa, fe = a[order], e[order]
    widths = fa - np.append(fa[1:], ra)
    return float(np.sum(widths * (re - fe)))


# --------------------------------------------------------------------------------------------------------------
# Claim definitions
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Arm:
    """The runs of one side of a comparison: every run whose labels match ``select`` (a label -> value or tuple of
    values mapping over ``dataset``, ``objective``, ``variant``), grouped by seed. With ``relative_to``, the arm's
    value on seed s is m(this, s) − m(relative_to, s) (a contrast)."""

    select: Mapping[str, str | tuple[str, ...]]
    relative_to: Arm | None = None

    def describe(self) -> str:
        """e.g. ``objective=gence, dataset=long-tail-100``."""
        text = ", ".join(f"{k}={'|'.join(v) if isinstance(v, tuple) else v}" for k, v in self.select.items())
        return f"({text}) − ({self.relative_to.describe()})" if self.relative_to else text


@dataclass(frozen=True)
class Part:
    """One part of a claim: the paired effect of ``metric`` between ``method`` and ``baseline`` (module docstring).

    Attributes:
        label: a short human name ("Socrates vs SAT").
        metric: a name :func:`metric_value` knows (``test.ece``, ``posthoc.ats.nll``, ``epochs_to_95``,
            ``last_epochs_ece_std``, ``coupling_r``, ``hypervolume``).
        method, baseline: the two arms; ``baseline=None`` is a one-sample test against ``null``.
        direction: "less" (the claim is effect < threshold) or "greater".
        margin: non-inferiority margin δ >= 0 (0: superiority).
        statistic: "mean" (paired t interval of the mean difference) or "seed_std" (difference of the
            across-seed standard deviations, bootstrap interval).
        null: the value a one-sample effect is compared with (0 for paired comparisons).
        baseline_metric: the metric taken on the baseline arm when it differs (GenCE after ATS against the focal
            variants without calibration: ``metric="posthoc.ats.ece"``, ``baseline_metric="test.ece"``).
    """

    label: str
    metric: str
    method: Arm
    baseline: Arm | None
    direction: str
    margin: float = 0.0
    statistic: str = "mean"
    null: float = 0.0
    baseline_metric: str | None = None

    @property
    def baseline_metric_name(self) -> str:
        """The metric taken on the baseline arm (``baseline_metric``, default ``metric``)."""
        return self.baseline_metric or self.metric

    @property
    def threshold(self) -> float:
        """θ = null + δ ("less") or null − δ ("greater")."""
        return self.null + self.margin if self.direction == "less" else self.null - self.margin


@dataclass(frozen=True)
class Claim:
    """A seed paper's claim: its text, the suite that tests it and its parts (all must hold).

    ``pending``: a reason the claim cannot be tested yet (its suite is not shipped); its parts are defined so
    that adding the suite and removing ``pending`` is all it takes.
    """

    id: str
    paper: str
    claim: str
    suite: str
    parts: tuple[Part, ...]
    notes: tuple[str, ...] = ()
    pending: str | None = None


def _obj(name: str | tuple[str, ...], **more: str) -> Arm:
    return Arm({"objective": name, **more})


def _socrates() -> list[Claim]:
    suite, paper = "claims-socrates", "Socrates Loss (Gómez-Gálvez et al., TMLR 2026, arXiv 2604.12245)"
    s = _obj("socrates")
    stability = []
    for base, name in (("sat", "SAT"), ("deep_gamblers", "Deep Gamblers")):
        stability.append(Part(f"ECE along the last {LAST_EPOCHS} epochs: Socrates vs {name}", "last_epochs_ece_std",
                              s, _obj(base), "less"))
        stability.append(Part(f"final ECE across seeds: Socrates vs {name}", "test.ece", s, _obj(base), "less",
                              statistic="seed_std"))
    convergence = [Part(f"Socrates vs {name}", "epochs_to_95", s, _obj(base), "less")
                   for base, name in (("sat", "SAT"), ("deep_gamblers", "Deep Gamblers"))]
    tradeoff = []
    for base, name in (("ce", "CE"), ("focal", "focal (gamma 2)")):
        tradeoff.append(Part(f"ECE: Socrates vs {name}", "test.ece", s, _obj(base), "less"))
        tradeoff.append(Part(f"accuracy: Socrates vs {name} (non-inferior)", "test.accuracy", s, _obj(base),
                             "greater", margin=MARGINS["accuracy"]))
    return [
        Claim("socrates-stability", paper, "more stable training than SAT and Deep Gamblers: a lower standard "
              "deviation of test ECE along the last epochs (per seed) and across seeds", suite, tuple(stability)),
        Claim("socrates-convergence", paper, "faster convergence than SAT and Deep Gamblers (epochs until the "
              "validation accuracy reaches 95% of its final value)", suite, tuple(convergence)),
        Claim("socrates-tradeoff", paper, "a better accuracy-ECE trade-off than CE and focal loss: lower test ECE at "
              "an accuracy no more than 1 point lower", suite, tuple(tradeoff)),
    ]


def _mbls() -> list[Claim]:
    mbls = _obj(("mbls-2", "mbls-5", "mbls-10", "mbls-20"))
    ls = _obj(("ls-0.02", "ls-0.05", "ls-0.1", "ls-0.2"))
    focal = _obj(("focal-1", "focal-2", "focal-3", "focal-5"))
    return [Claim(
        "mbls-tradeoff", "Margin-based Label Smoothing (Liu et al., CVPR 2022, arXiv 2111.15430)",
        "a better accuracy-ECE trade-off than label smoothing and focal loss: a larger hypervolume of the Pareto "
        "front in (test accuracy, test ECE), each method swept over four values of its hyperparameter",
        "claims-mbls",
        (Part("MbLS (margin 2-20) vs LS (0.02-0.2)", "hypervolume", mbls, ls, "greater"),
         Part("MbLS (margin 2-20) vs focal (gamma 1-5)", "hypervolume", mbls, focal, "greater")),
        notes=("The fronts use the test split, as a hyperparameter sweep in a paper does; every method gets four "
               "settings.",),
    )]


def _calmo() -> list[Claim]:
    paper = "CalMO, 'Too Sharp, Too Sure' (Morosini et al., arXiv 2604.20614)"
    optimisers = (("sgd", "SGD"), ("adamw", "AdamW"), ("muon", "Muon"), ("sam", "SAM"))
    ece = []
    for v, name in optimisers:
        ece.append(Part(f"ECE under {name}", "test.ece", _obj("calmo", variant=v), _obj("ce", variant=v), "less"))
        ece.append(Part(f"accuracy under {name} (non-inferior)", "test.accuracy", _obj("calmo", variant=v),
                        _obj("ce", variant=v), "greater", margin=MARGINS["accuracy"]))
    coupling = [Part(f"r(ECE, GN sharpness) of CE under {name}", "coupling_r", _obj("ce", variant=v), None, "greater")
                for v, name in optimisers]
    return [
        Claim("calmo-ece", paper, "lower test ECE than CE under each of SGD, AdamW, Muon and SAM, at an accuracy no "
              "more than 1 point lower", "claims-calmo", tuple(ece)),
        Claim("calmo-coupling", paper, "ECE tracks Gauss-Newton sharpness along training: a positive Pearson r per "
              "optimiser (the paper reports r = .96-.98 for test ECE under GD/SGD/SAM)", "claims-calmo",
              tuple(coupling),
              notes=("r per run over the tracked steps, ECE and GN sharpness both measured by the curvature tracker "
                     "on the same 256 training samples (caltrain.analysis.coupling, r_subset); the interval is the "
                     "t interval of the mean r over seeds.",)),
    ]


def _gence() -> list[Claim]:
    paper = "Generative Cross-Entropy, GenCE (Zhan et al., arXiv 2604.06689; caltrain's reconstruction)"
    datasets = (("balanced", "balanced"), ("long-tail-100", "long-tailed (imbalance 100)"))
    versus_ce = []
    for d, name in datasets:
        versus_ce.append(Part(f"accuracy on {name} data (non-inferior)", "test.accuracy", _obj("gence", dataset=d),
                              _obj("ce", dataset=d), "greater", margin=MARGINS["accuracy"]))
        versus_ce.append(Part(f"ECE on {name} data (non-inferior)", "test.ece", _obj("gence", dataset=d),
                              _obj("ce", dataset=d), "less", margin=MARGINS["ece"]))
    lt, bal = "long-tail-100", "balanced"
    gain = [
        Part("accuracy gain over CE: long-tailed minus balanced", "test.accuracy",
             Arm({"objective": "gence", "dataset": lt}, _obj("ce", dataset=lt)),
             Arm({"objective": "gence", "dataset": bal}, _obj("ce", dataset=bal)), "greater"),
        Part("ECE change from CE: long-tailed minus balanced", "test.ece",
             Arm({"objective": "gence", "dataset": lt}, _obj("ce", dataset=lt)),
             Arm({"objective": "gence", "dataset": bal}, _obj("ce", dataset=bal)), "less"),
    ]
    focal = []
    for d, name in datasets:
        for f, fname in (("focal-3", "focal (gamma 3)"), ("flsd53", "FLSD-53"), ("adafocal", "AdaFocal"),
                         ("dual_focal", "dual focal")):
            focal.append(Part(f"ECE of GenCE + ATS vs {fname}, {name} (non-inferior)", "posthoc.ats.ece",
                              _obj("gence", dataset=d), _obj(f, dataset=d), "less", margin=MARGINS["ece"],
                              baseline_metric="test.ece"))
    return [
        Claim("gence-vs-ce", paper, "accuracy and ECE at least as good as CE (within 1 and 0.5 points), on balanced "
              "and long-tailed data", "claims-gence", tuple(versus_ce)),
        Claim("gence-long-tail-gain", paper, "the larger gain over CE on the long-tailed variant (imbalance 100): a "
              "difference in differences across the two datasets", "claims-gence", tuple(gain)),
        Claim("gence-ats-vs-focal", paper, "GenCE + ATS calibrates competitively with the focal variants: its ECE "
              "after ATS at most 0.5 point above each variant's (uncalibrated) ECE", "claims-gence", tuple(focal),
              notes=("ATS is caltrain's reconstruction (the paper's algorithm is not public); it is fitted on the "
                     "validation split. The focal variants are compared without post-hoc calibration, as the "
                     "abstract's 'competitive with focal-loss variants' reads.",)),
    ]


def _ats() -> list[Claim]:
    parts = []
    for o, name in (("ce", "CE"), ("focal-3", "focal (gamma 3)"), ("ls-0.1", "LS 0.1")):
        parts.append(Part(f"ECE after ATS vs after TS, {name} network (non-inferior)", "posthoc_ats_minus_ts.ece",
                          _obj(o), None, "less", margin=MARGINS["ece"]))
        parts.append(Part(f"NLL after ATS vs after TS, {name} network (non-inferior)", "posthoc_ats_minus_ts.nll",
                          _obj(o), None, "less", margin=MARGINS["nll"]))
    return [Claim(
        "ats-vs-ts", "Adaptive piecewise temperature scaling, ATS (Zhan et al., arXiv 2604.06689; caltrain's "
        "reconstruction)", "no worse than temperature scaling in ECE and NLL on held-out data (within 0.5 point of "
        "ECE and 0.01 nats of NLL)", "claims-ats", tuple(parts),
        notes=("Both calibrators are fitted on the validation split and scored on the test split of the same run.",),
    )]


def _aslp() -> list[Claim]:
    return [Claim(
        "aslp-ece", "ASLP with SC-BCE (Liu et al., ICCV 2023, arXiv 2307.13539)",
        "lower pooled pixel ECE than BCE at equal pixel accuracy", "claims-aslp",
        (Part("pooled pixel ECE: ASLP vs BCE", "test.ece", _obj("aslp"), _obj("bce"), "less"),
         Part("pooled pixel accuracy: ASLP vs BCE (non-inferior)", "test.accuracy", _obj("aslp"), _obj("bce"),
              "greater", margin=MARGINS["accuracy"])),
    )]


#: Every claim, in the order of the verdict table.
CLAIMS: tuple[Claim, ...] = tuple(_socrates() + _mbls() + _calmo() + _gence() + _ats() + _aslp())


def select_claims(names: Sequence[str] | None = None) -> list[Claim]:
    """The claims with these ids, or whose id starts with one of ``names`` followed by "-" (``socrates`` selects
    the three Socrates claims); every claim when ``names`` is None or empty.

    Raises:
        ValueError: a name that selects nothing (the message lists the valid ones).
    """
    if not names:
        return list(CLAIMS)
    chosen = []
    for name in names:
        hit = [c for c in CLAIMS if c.id == name or c.id.startswith(f"{name}-")]
        if not hit:
            from caltrain.utils.checks import did_you_mean

            prefixes = sorted({c.id.split("-")[0] for c in CLAIMS})
            valid = [*prefixes, *(c.id for c in CLAIMS)]
            raise ValueError(f"claims: unknown claim {name!r}; valid: {', '.join(valid)}{did_you_mean(name, valid)}")
        chosen.extend(c for c in hit if c not in chosen)
    return [c for c in CLAIMS if c in chosen]


# --------------------------------------------------------------------------------------------------------------
# Metrics of run records
# --------------------------------------------------------------------------------------------------------------

#: name -> (description, unit, display scale) of the derived metrics; ``split.key`` paths are described below.
DERIVED_METRICS: dict[str, tuple[str, str, float]] = {
    "last_epochs_ece_std": (f"sample std of test ECE over the last {LAST_EPOCHS} epochs", "points", 100.0),
    "epochs_to_95": ("epochs until validation accuracy reaches 95% of its final value", "epochs", 1.0),
    "coupling_r": ("Pearson r of ECE and GN sharpness along training (same 256 training samples)", "r", 1.0),
    "hypervolume": ("hypervolume of the (test accuracy, test ECE) Pareto front", "points^2", 1e4),
}
_NAMES = {"ece": "ECE", "adaece": "AdaECE", "classwise_ece": "classwise ECE", "nll": "NLL", "brier": "Brier score",
          "smooth_ece": "smooth ECE", "aurc": "AURC"}
_SCALES = {"accuracy": 100.0, "ece": 100.0, "adaece": 100.0, "classwise_ece": 100.0, "brier": 1.0, "nll": 1.0}


def metric_info(metric: str) -> tuple[str, str, float]:
    """``(description, unit, display scale)`` of a metric name (raises ``ValueError`` for an unknown one).

    Names: ``test.<key>`` / ``val.<key>`` (a key of the run's ``summary.json`` split), ``posthoc.<calibrator>.<key>``
    (after that calibrator, fitted on validation, on test), ``posthoc_ats_minus_ts.<key>`` (the ATS value minus
    the TS value of the same run), and :data:`DERIVED_METRICS`.
    """
    if metric in DERIVED_METRICS:
        return DERIVED_METRICS[metric]
    parts = metric.split(".")
    key = parts[-1]
    unit, scale = ("points", 100.0) if _SCALES.get(key, 1.0) == 100.0 else ("nats", 1.0) if key == "nll" else ("", 1.0)
    key = _NAMES.get(key, key)
    if len(parts) == 2 and parts[0] in ("test", "val"):
        return f"{parts[0]} {key}", unit, scale
    if len(parts) == 3 and parts[0] == "posthoc":
        return f"test {key} after {parts[1].upper() if parts[1] in ('ts', 'ats') else parts[1]}", unit, scale
    if len(parts) == 2 and parts[0] == "posthoc_ats_minus_ts":
        return f"test {key} after ATS minus after TS", unit, scale
    from caltrain.utils.checks import did_you_mean

    valid = ["test.<key>", "val.<key>", "posthoc.<calibrator>.<key>", "posthoc_ats_minus_ts.<key>",
             *DERIVED_METRICS]
    raise ValueError(f"metric: unknown name {metric!r}; valid: {', '.join(valid)}{did_you_mean(metric, valid)}")


def _lookup(run: Mapping[str, Any], path: Sequence[str], metric: str) -> float:
    node: Any = run
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(f"metric {metric!r}: run {run.get('run', '?')} has no {'.'.join(path)}")
        node = node[part]
    return math.nan if node is None else float(node)


def metric_value(metric: str, runs: Sequence[Mapping[str, Any]], *,
                 reference: tuple[float, float] | None = None) -> float:
    """The value of ``metric`` for the runs of one arm on one seed.

    Args:
        metric: see :func:`metric_info`.
        runs: run records (``{"run", "labels", "test", "val", "posthoc", "curves", "coupling"}``); exactly one,
            except for ``hypervolume`` (the points of a sweep).
        reference: ``hypervolume``'s reference point (accuracy, ECE).
    """
    metric_info(metric)
    if metric == "hypervolume":
        if reference is None:
            raise ValueError("metric 'hypervolume' needs a reference point")
        return hypervolume([r["test"]["accuracy"] for r in runs], [r["test"]["ece"] for r in runs], reference)
    if len(runs) != 1:
        names = ", ".join(str(r.get("run")) for r in runs)
        raise ValueError(f"metric {metric!r}: expected one run per seed and arm, got {len(runs)} ({names})")
    run = runs[0]
    if metric == "last_epochs_ece_std":
        curve = [v for v in run["curves"]["test_ece"] if v is not None][-LAST_EPOCHS:]
        return float(np.std(curve, ddof=1)) if len(curve) >= 2 else math.nan
    if metric == "epochs_to_95":
        from caltrain.train.aggregate import epochs_to_fraction

        value = epochs_to_fraction([v for v in run["curves"]["val_accuracy"] if v is not None], 0.95)
        return math.nan if value is None else float(value)
    if metric == "coupling_r":
        coupling = run.get("coupling")
        if not coupling:
            raise KeyError(f"metric 'coupling_r': run {run.get('run')} has no curvature records "
                           "(train with curvature.every_steps)")
        return float(coupling["r_subset"])
    parts = metric.split(".")
    if parts[0] == "posthoc_ats_minus_ts":
        return (_lookup(run, ("posthoc", "ats", parts[1]), metric)
                - _lookup(run, ("posthoc", "ts", parts[1]), metric))
    return _lookup(run, parts, metric)


# --------------------------------------------------------------------------------------------------------------
# Evaluation (pure: run records in, verdicts out)
# --------------------------------------------------------------------------------------------------------------

def _matches(run: Mapping[str, Any], select: Mapping[str, Any]) -> bool:
    labels = run["labels"]
    for key, want in select.items():
        have = str(labels.get(key, ""))
        if have not in (want if isinstance(want, tuple) else (want,)):
            return False
    return True


def _by_seed(runs: Sequence[Mapping[str, Any]], arm: Arm) -> dict[int, list[Mapping[str, Any]]]:
    out: dict[int, list[Mapping[str, Any]]] = {}
    for r in runs:
        if _matches(r, arm.select):
            out.setdefault(int(r["labels"]["seed"]), []).append(r)
    return out


def _arm_values(metric: str, arm: Arm, runs: Sequence[Mapping[str, Any]],
                reference: tuple[float, float] | None) -> dict[int, float]:
    """Per-seed value of an arm (a contrast when ``arm.relative_to``: seeds missing either side are left out)."""
    values = {seed: metric_value(metric, group, reference=reference) for seed, group in _by_seed(runs, arm).items()}
    if arm.relative_to is not None:
        other = _arm_values(metric, arm.relative_to, runs, reference)
        values = {s: v - other[s] for s, v in values.items() if s in other}
    return values


def _reference(runs: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    acc = [r["test"]["accuracy"] for r in runs]
    ece = [r["test"]["ece"] for r in runs]
    return float(min(acc)), float(max(ece))


def _arm_estimate(values: np.ndarray, statistic: str) -> float:
    if statistic == "seed_std":
        return float(values.std(ddof=1)) if values.size >= 2 else math.nan
    return float(values.mean()) if values.size else math.nan


def evaluate_part(test: Part, runs: Sequence[Mapping[str, Any]], *, alpha: float = ALPHA, n_boot: int = N_BOOT,
                  boot_seed: int = 0) -> dict[str, Any]:
    """One part of a claim on the run records of its suite: effect, interval, verdict and notes.

    Args:
        test: the part.
        runs: every run record of the suite (the hypervolume reference point is taken over all of them).

    Returns:
        A JSON-ready dict: ``label``, ``metric``, ``metric_description``, ``unit``, ``scale`` (multiply effects by it
        for display), ``method``, ``baseline``, ``direction``, ``margin``, ``threshold``, ``statistic``,
        ``interval`` (how it was computed), ``seeds`` (the paired seeds), ``method_values``,
        ``baseline_values`` (per paired seed), ``method_estimate``, ``baseline_estimate`` (each arm's mean over
        the paired seeds, or its across-seed sd for ``seed_std``; None without baseline), ``effect``, ``lo``, ``hi``,
        ``verdict``, ``notes`` (why a verdict is weak or degenerate).
    """
    description, unit, scale = metric_info(test.metric)
    if test.statistic not in ("mean", "seed_std"):
        raise ValueError(f"test {test.label!r}: statistic must be 'mean' or 'seed_std', got {test.statistic!r}")
    if test.statistic == "seed_std" and test.baseline is None:
        raise ValueError(f"test {test.label!r}: statistic 'seed_std' compares two arms; give a baseline")
    if test.baseline_metric is not None:
        description += f" (baseline: {metric_info(test.baseline_metric)[0]})"
    uses_front = "hypervolume" in (test.metric, test.baseline_metric_name)
    reference = _reference(runs) if uses_front and runs else None
    method = _arm_values(test.metric, test.method, runs, reference)
    baseline = (_arm_values(test.baseline_metric_name, test.baseline, runs, reference)
                if test.baseline is not None else {})
    usable = [s for s, v in method.items() if not math.isnan(v)]
    if test.baseline is not None:
        usable = [s for s in usable if s in baseline and not math.isnan(baseline[s])]
    seeds = sorted(usable)
    m = np.array([method[s] for s in seeds], dtype=np.float64)
    b = np.array([baseline[s] for s in seeds], dtype=np.float64) if test.baseline is not None else None
    notes: list[str] = []
    if test.statistic == "mean":
        d = m - b if b is not None else m
        effect, lo, hi = paired_t_interval(d, alpha)
        interval = f"paired t, {100 * (1 - alpha):g}%" if b is not None else f"one-sample t, {100 * (1 - alpha):g}%"
        if d.size >= 2 and np.all(d == d[0]):
            notes.append(f"all {d.size} per-seed differences are equal ({d[0] * scale:g} {unit}): the interval has "
                         "zero width and the metric does not separate the arms here")
    else:
        effect, lo, hi = bootstrap_interval(seed_std_difference, m, b, n=n_boot, seed=boot_seed, alpha=alpha)
        interval = (f"percentile bootstrap over seeds (paired), {n_boot} resamples, {100 * (1 - alpha):g}%; weak "
                    "with few seeds")
    if len(seeds) < 2:
        notes.append(f"{len(seeds)} paired seed(s): an interval needs at least 2 (failed or missing runs?)")
    result = verdict(lo, hi, direction=test.direction, threshold=test.threshold)
    if test.metric == "epochs_to_95" and m.size and max(np.max(m), np.max(b) if b is not None else 0) <= 2:
        notes.append("every run reaches 95% of its final validation accuracy within 2 epochs: the data is too "
                     "easy to compare convergence speed at epoch resolution")
    if result == INCONCLUSIVE and test.margin > 0 and hi - lo > 2 * test.margin:
        notes.append(f"the interval ({(hi - lo) * scale:.2g} {unit} wide) is wider than twice the margin "
                     f"({test.margin * scale:g} {unit}): too few seeds or test samples to decide at this margin "
                     "(more seeds: --seeds)")
    if result == HOLDS and test.margin > 0 and test.statistic == "mean":
        worse = lo > test.null if test.direction == "less" else hi < test.null
        if worse:
            notes.append("worse than the baseline (the interval excludes 0 on the worse side), but by less than "
                         f"the margin {test.margin * scale:g} {unit}")
    return {
        "label": test.label, "metric": test.metric, "metric_description": description, "unit": unit, "scale": scale,
        "method": test.method.describe(), "baseline": test.baseline.describe() if test.baseline else None,
        "direction": test.direction, "margin": test.margin, "threshold": test.threshold,
        "statistic": test.statistic, "interval": interval, "seeds": seeds,
        "method_values": m.tolist(), "baseline_values": b.tolist() if b is not None else None,
        "method_estimate": _arm_estimate(m, test.statistic),
        "baseline_estimate": _arm_estimate(b, test.statistic) if b is not None else None,
        "effect": effect, "lo": lo, "hi": hi, "verdict": result, "notes": notes,
        "points": _front_points(test, runs) if uses_front else None,
    }


def _front_points(test: Part, runs: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """For a hypervolume part: each swept setting's mean (test accuracy, test ECE) over seeds, by objective."""
    points = {}
    for arm in (test.method, test.baseline):
        if arm is None:
            continue
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for r in runs:
            if _matches(r, arm.select):
                groups.setdefault(str(r["labels"]["objective"]), []).append(r)
        wanted = arm.select.get("objective", ())
        order = list(wanted) if isinstance(wanted, tuple) else []
        for name, group in sorted(groups.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else
                                                                  len(order), kv[0])):
            points[name] = [float(np.mean([r["test"]["accuracy"] for r in group])),
                            float(np.mean([r["test"]["ece"] for r in group]))]
    return points


def _points_text(part: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} ({100 * a:.1f}, {100 * e:.2f})" for k, (a, e) in (part.get("points") or {}).items())


def evaluate_claim(claim: Claim, runs: Sequence[Mapping[str, Any]], *, setting: Mapping[str, Any] | None = None,
                   alpha: float = ALPHA, n_boot: int = N_BOOT) -> dict[str, Any]:
    """A claim's parts (:func:`evaluate_part`) and its verdict (:func:`combine`); ``pending`` claims are not
    evaluated. ``setting`` (what the suite ran) is copied into the result."""
    base = {"id": claim.id, "paper": claim.paper, "claim": claim.claim, "suite": claim.suite,
            "setting": dict(setting or {}), "notes": list(claim.notes)}
    if claim.pending:
        return {**base, "verdict": PENDING, "reason": claim.pending, "parts": []}
    if not runs:
        return {**base, "verdict": INCONCLUSIVE, "reason": f"no complete run of suite {claim.suite}", "parts": []}
    parts = [evaluate_part(t, runs, alpha=alpha, n_boot=n_boot) for t in claim.parts]
    return {**base, "verdict": combine([t["verdict"] for t in parts]), "reason": None, "parts": parts}


# --------------------------------------------------------------------------------------------------------------
# Reading a suite folder into run records, and the setting it ran under
# --------------------------------------------------------------------------------------------------------------

def load_run_records(suite_dir: str | Path) -> list[dict[str, Any]]:
    """One record per complete run of a suite folder, through the aggregate (:func:`caltrain.train.aggregate.results`):
    ``{"run", "labels", "test", "val", "posthoc", "curves", "coupling"}`` (``coupling``: the run's
    :func:`caltrain.analysis.coupling.run_coupling` statistics when it tracked curvature, else None)."""
    from caltrain.analysis.coupling import run_coupling
    from caltrain.train.aggregate import results
    from caltrain.train.run_dir import SuiteDir

    suite = SuiteDir(suite_dir)
    _, document = results(suite.root)
    records = []
    for row in document["rows"]:
        for seed_row, curves in zip(row["per_seed"], row["curves"]):
            labels = {k: row[k] for k in ("dataset", "model", "objective", "variant")}
            labels["seed"] = seed_row["seed"]
            metrics = suite.run(seed_row["run"]).read_metrics()
            coupling = run_coupling(metrics) if any("curvature" in r for r in metrics) else None
            records.append({"run": seed_row["run"], "labels": labels, "test": seed_row["test"],
                            "val": seed_row["val"], "posthoc": seed_row["posthoc"], "curves": curves,
                            "coupling": coupling})
    return records


def suite_setting(suite_dir: Path, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the suite's runs ran under, read from their ``config.yaml`` (one per dataset x variant)."""
    import yaml

    from caltrain.train.run_dir import SuiteDir

    suite = SuiteDir(suite_dir)
    meta = suite.read_meta()
    configs: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        key = (r["labels"]["dataset"], r["labels"]["variant"])
        if key not in configs:
            configs[key] = yaml.safe_load(suite.run(r["run"]).config.read_text())
    datasets, optimisers = {}, {}
    for (dataset, variant), c in configs.items():
        datasets[dataset] = {"name": c["data"]["name"], **({"options": c["data"]["options"]}
                                                            if c["data"]["options"] else {})}
        o = c["optim"]
        optimisers[variant or "-"] = f"{o['name']} lr {o['lr']:g}" + (
            f" momentum {o['momentum']:g}" if o["name"] in ("sgd", "sam") else "")
    first = next(iter(configs.values()), None)
    seeds = sorted({int(r["labels"]["seed"]) for r in records})
    setting: dict[str, Any] = {"suite": meta.get("name", suite.root.name), "datasets": datasets,
                               "optimisers": optimisers, "seeds": seeds, "overrides": meta.get("overrides", [])}
    if first is not None:
        model = first["model"]
        setting.update(model=model["name"] + (f" {model['options']}" if model["options"] else ""),
                       epochs=first["epochs"], batch_size=first["data"]["batch_size"],
                       schedule=first["schedule"]["name"], n_bins=first["eval"]["n_bins"],
                       select=first["eval"]["select"], test_samples=records[0]["test"].get("n"))
    return setting


def setting_text(setting: Mapping[str, Any]) -> str:
    """One line: data, model, optimiser(s), epochs, ECE bins, seeds."""
    if not setting:
        return "-"
    data = "; ".join(f"{k}: {v['name']}" + (f" {v['options']}" if v.get("options") else "")
                     for k, v in setting.get("datasets", {}).items())
    opt = ", ".join(f"{v}" if k == "-" else f"{k}: {v}" for k, v in setting.get("optimisers", {}).items())
    seeds = setting.get("seeds", [])
    parts = [data, str(setting.get("model", "?")), opt, f"{setting.get('schedule', '?')} lr",
             f"{setting.get('epochs', '?')} epochs", f"batch {setting.get('batch_size', '?')}",
             f"model at the {setting.get('select', '?')} epoch", f"ECE {setting.get('n_bins', '?')} bins",
             f"{setting.get('test_samples', '?')} test samples", f"{len(seeds)} seeds"]
    if setting.get("overrides"):
        parts.append("overrides " + " ".join(setting["overrides"]))
    return "; ".join(parts)


def evaluate_folder(out_dir: str | Path, claims: Sequence[Claim] | None = None, *,
                    alpha: float = ALPHA, n_boot: int = N_BOOT) -> dict[str, Any]:
    """Evaluate ``claims`` (default: all) on the suite folders ``out_dir/<suite>`` that :func:`run_claims`
    wrote; nothing is trained or written. Returns the ``claims.json`` document."""
    out = Path(out_dir)
    cache: dict[str, tuple[list, dict]] = {}
    evaluated = []
    for claim in claims if claims is not None else CLAIMS:
        if claim.pending:
            evaluated.append(evaluate_claim(claim, []))
            continue
        if claim.suite not in cache:
            folder = out / claim.suite
            records = load_run_records(folder) if (folder / "runs").is_dir() else []
            cache[claim.suite] = (records, suite_setting(folder, records) if records else {})
        records, setting = cache[claim.suite]
        result = evaluate_claim(claim, records, setting=setting, alpha=alpha, n_boot=n_boot)
        result["setting_text"] = setting_text(setting)
        evaluated.append(result)
    import caltrain

    return {"format": 1, "caltrain_version": caltrain.__version__, "alpha": alpha, "rule": VERDICT_RULE,
            "margins": MARGINS, "claims": evaluated}


# --------------------------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------------------------

def _number(x: Any, scale: float = 1.0, *, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    v = x * scale
    text = f"{v:+.2f}" if sign else f"{v:.2f}"
    return text if abs(v) >= 0.1 or v == 0 else (f"{v:+.2g}" if sign else f"{v:.2g}")


def part_cells(part: Mapping[str, Any]) -> dict[str, str]:
    """The display cells of one evaluated part (values in the metric's display unit)."""
    s, unit = part["scale"], part["unit"]
    what = part["metric_description"] + (" (across-seed sd)" if part["statistic"] == "seed_std" else "")
    op = "<" if part["direction"] == "less" else ">"
    threshold = f"{round(part['threshold'] * s, 6):g}"
    claimed = f"mean {op} {threshold}" if part["baseline"] is None else f"method − baseline {op} {threshold}"
    return {
        "part": part["label"], "metric": f"{what} [{unit}]" if unit else what, "claimed": claimed,
        "method": f"{part['method']}: {_number(part['method_estimate'], s)}",
        "baseline": "-" if part["baseline"] is None else f"{part['baseline']}: {_number(part['baseline_estimate'], s)}",
        "effect": f"{_number(part['effect'], s, sign=True)} [{_number(part['lo'], s, sign=True)}, "
                  f"{_number(part['hi'], s, sign=True)}]",
        "n": str(len(part["seeds"])), "interval": part["interval"], "verdict": part["verdict"],
        "notes": "; ".join(part["notes"]),
    }


_PART_COLUMNS = ("part", "metric", "method", "baseline", "effect", "claimed", "n", "verdict", "notes")
_HEADERS = {"effect": "effect [95% interval]", "claimed": "claimed", "n": "seeds"}


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(document: Mapping[str, Any], *, details: bool = True) -> str:
    """The verdicts as Markdown: a summary table (one row per claim), then (``details``) each claim's parts."""
    alpha = document["alpha"]
    lines = ["# Claims of the seed papers, tested", "",
             f"Verdict rule: {document['rule']} Intervals: {100 * (1 - alpha):g}%. Effects and values in the "
             "metric's unit (points = percentage points).", "",
             "| claim | verdict | setting |", "|---|---|---|"]
    for c in document["claims"]:
        lines.append(f"| {_md_cell(c['id'])}: {_md_cell(c['claim'])} | **{c['verdict']}** | "
                     f"{_md_cell(c.get('reason') or c.get('setting_text', ''))} |")
    for c in document["claims"] if details else ():
        lines += ["", f"## {c['id']}: {c['verdict']}", "", f"{c['paper']}: {c['claim']}.", ""]
        if c.get("reason"):
            lines += [f"Not evaluated: {c['reason']}.", ""]
        else:
            lines += [f"Setting: {c.get('setting_text', '-')}.", ""]
        if c["parts"]:
            lines += ["| " + " | ".join(_HEADERS.get(k, k) for k in _PART_COLUMNS) + " |",
                      "|" + "---|" * len(_PART_COLUMNS)]
            for part in c["parts"]:
                cells = part_cells(part)
                lines.append("| " + " | ".join(_md_cell(cells[k]) for k in _PART_COLUMNS) + " |")
            lines.append("")
            intervals = sorted({p["interval"] for p in c["parts"]})
            lines.append("Intervals: " + "; ".join(intervals) + ".")
            for part in c["parts"]:
                if part.get("points"):
                    lines.append(f"Mean (test accuracy, test ECE) in points per setting, {part['label']}: "
                                 f"{_points_text(part)}.")
        for note in c.get("notes", []):
            lines.append(f"Note: {note}")
    return "\n".join(lines) + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1300px; color: #222; padding: 0 1rem; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: .3rem .5rem; vertical-align: top; text-align: left; }
th { background: #f3f3f3; } .holds { color: #176b2c; font-weight: bold; }
.does-not-hold { color: #a4161a; font-weight: bold; } .inconclusive { color: #8a6d00; font-weight: bold; }
.pending { color: #666; font-weight: bold; } .note { color: #555; font-size: .85rem; } td.num { white-space: nowrap; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; font-size: 1.15rem; }
"""


def to_html(document: Mapping[str, Any]) -> str:
    """The verdicts as one self-contained HTML page (no script, no external resource): the summary table, then
    each claim's parts."""
    e = html.escape

    def cls(v: str) -> str:
        return v.replace(" ", "-")

    summary = "".join(
        f"<tr><td><a href='#{e(c['id'])}'>{e(c['id'])}</a>: {e(c['claim'])}</td>"
        f"<td class='{cls(c['verdict'])}'>{e(c['verdict'])}</td>"
        f"<td class='note'>{e(c.get('reason') or c.get('setting_text', ''))}</td></tr>" for c in document["claims"])
    sections = []
    for c in document["claims"]:
        body = [f"<h2 id='{e(c['id'])}'>{e(c['id'])}: <span class='{cls(c['verdict'])}'>{e(c['verdict'])}</span></h2>",
                f"<p>{e(c['paper'])}: {e(c['claim'])}.</p>"]
        if c.get("reason"):
            body.append(f"<p class='note'>Not evaluated: {e(c['reason'])}.</p>")
        else:
            body.append(f"<p class='note'>Setting: {e(c.get('setting_text', '-'))}.</p>")
        if c["parts"]:
            head = "".join(f"<th>{e(_HEADERS.get(k, k))}</th>" for k in _PART_COLUMNS)
            rows = []
            for part in c["parts"]:
                cells = part_cells(part)
                tds = []
                for k in _PART_COLUMNS:
                    klass = cls(cells[k]) if k == "verdict" else "num" if k in ("effect", "n") else "note" \
                        if k == "notes" else ""
                    tds.append(f"<td class='{klass}'>{e(cells[k])}</td>")
                rows.append("<tr>" + "".join(tds) + "</tr>")
            intervals = "; ".join(sorted({p["interval"] for p in c["parts"]}))
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
                        f"<p class='note'>Intervals: {e(intervals)}.</p>")
        body += [f"<p class='note'>Mean (test accuracy, test ECE) in points per setting, {e(p['label'])}: "
                 f"{e(_points_text(p))}.</p>" for p in c["parts"] if p.get("points")]
        body += [f"<p class='note'>Note: {e(n)}</p>" for n in c.get("notes", [])]
        sections.append("".join(body))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>caltrain: claims tested</title>"
            f"<style>{_CSS}</style></head><body><h1>Claims of the seed papers, tested</h1>"
            f"<p>{e(document['rule'])} Intervals: {100 * (1 - document['alpha']):g}%. Effects and values in the "
            f"metric's unit (points = percentage points). caltrain {e(str(document.get('caltrain_version')))}.</p>"
            f"<table><thead><tr><th>claim</th><th>verdict</th><th>setting</th></tr></thead><tbody>{summary}"
            f"</tbody></table>{''.join(sections)}</body></html>\n")


# --------------------------------------------------------------------------------------------------------------
# The command: run the suites, evaluate, write the pages
# --------------------------------------------------------------------------------------------------------------

#: Files :func:`run_claims` writes at the top of its output folder (``claims.json`` also marks it as caltrain's).
OUTPUT_FILES = ("claims.json", "claims.md", "claims.html")


def _check_out(out: Path, suites: Sequence[str]) -> None:
    """Refuse a folder caltrain did not write: it must be absent, empty, or hold ``claims.json``."""
    from caltrain.train.run_dir import ForeignFilesError

    if not out.exists() or (out / "claims.json").is_file():
        return
    if not out.is_dir():
        raise ForeignFilesError(f"--out {out}: not a directory")
    entries = sorted(out.iterdir())
    if entries:
        raise ForeignFilesError(f"--out {out}: refusing to write the claims experiment into a folder caltrain did "
                                f"not write (no claims.json; it holds {entries[0]}); choose another directory")


def write_pages(out_dir: str | Path, document: Mapping[str, Any]) -> list[Path]:
    """Write ``claims.json``, ``claims.md`` and ``claims.html`` into ``out_dir`` (atomically); their paths."""
    from caltrain.utils.io import atomic_write_json, atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / name for name in OUTPUT_FILES]
    atomic_write_json(paths[0], document)
    atomic_write_text(paths[1], to_markdown(document))
    atomic_write_text(paths[2], to_html(document))
    return paths


def run_claims(
    out_dir: str | Path,
    *,
    claims: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    overrides: Sequence[str] = (),
    executor: str = "local",
    address: str | None = None,
    imports: Sequence[str] = (),
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
) -> dict[str, Any]:
    """Run the claims' suites into ``out_dir/<suite>/`` (:func:`caltrain.train.suite.run_suite`: finished runs are
    reused), evaluate every claim and write ``claims.{json,md,html}`` into ``out_dir``.

    Args:
        claims: claim ids or prefixes (:func:`select_claims`); default all.
        seeds: seeds for every suite (default: each suite's, 5); at least 2.
        overrides, executor, address, imports: as for :func:`caltrain.train.suite.run_suite`, applied to every suite.

    Returns:
        ``{"document": claims.json content, "failed": [run failure messages], "paths": [written files],
        "seconds": wall time}``.

    Raises:
        ValueError: an unknown claim, fewer than 2 seeds, or an invalid configuration in any suite (all of them
            are built and validated before the first run).
        ForeignFilesError: ``out_dir`` holds files caltrain did not write.
    """
    from caltrain.train.suite import expand, load_suite, run_suite
    from caltrain.utils.plugins import import_modules

    started = time.perf_counter()
    chosen = select_claims(claims)
    if seeds is not None and len(set(seeds)) < 2:
        raise ValueError(f"seeds: a paired interval needs at least 2 seeds, got {list(seeds)}")
    out = Path(out_dir)
    suites = list(dict.fromkeys(c.suite for c in chosen if not c.pending))
    imports = import_modules(imports)
    loaded = [load_suite(name) for name in suites]
    for suite in loaded:  # every configuration of every suite validated before the first run
        expand(suite, overrides, seeds)
    _check_out(out, suites)
    write_pages(out, {**evaluate_folder(out, [c for c in chosen if c.pending]), "status": "running"})
    failed: list[str] = []
    for suite in loaded:
        log(f"claims: suite {suite.name} (claims {', '.join(c.id for c in chosen if c.suite == suite.name)})")
        result = run_suite(suite, out / suite.name, executor=executor, address=address, overrides=overrides,
                           seeds=seeds, imports=imports, log=log)
        failed.extend(result["failed"])
    document = evaluate_folder(out, chosen)
    seconds = time.perf_counter() - started
    document.update(status="complete", failed_runs=len(failed), seconds=seconds)
    paths = write_pages(out, document)
    return {"document": document, "failed": failed, "paths": paths, "seconds": seconds}


def bench_claims(spec: str, *, out: str | Path | None, seeds: int | None, overrides: Sequence[str],
                 executor: str = "local", address: str | None = None, imports: Sequence[str] = ()) -> int:
    """``caltrain bench claims[:ID,...]``: :func:`run_claims`, then the verdict table on stdout; exit status 1
    when a run failed. ``spec`` is ``claims`` (every claim) or ``claims:socrates,ats`` (ids or prefixes)."""
    names = [n.strip() for n in spec.partition(":")[2].split(",") if n.strip()]
    if seeds is not None and seeds < 2:
        raise ValueError(f"--seeds: the claims need at least 2 seeds for a paired interval, got {seeds}")
    folder = Path(out) if out else Path("runs") / "bench-claims"
    result = run_claims(folder, claims=names or None, seeds=list(range(seeds)) if seeds else None,
                        overrides=overrides, executor=executor, address=address, imports=imports)
    print(to_markdown(result["document"], details=False))
    print("claims: " + ", ".join(str(p) for p in result["paths"]), file=sys.stderr)
    if result["failed"]:
        print(f"caltrain bench: {len(result['failed'])} run(s) failed (see messages above)", file=sys.stderr)
        return 1
    return 0
