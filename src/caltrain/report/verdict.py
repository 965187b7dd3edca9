"""The verdict of a dataset: which objective is best calibrated at no accuracy cost, by how much, with an interval.

Definitions (the page states them under the verdicts):

- **reference** r: the task's baseline objective (``ce`` for classification) when the dataset has it, else the
  objective with the highest mean test accuracy.
- **no accuracy cost**: an objective o qualifies when its mean test accuracy over seeds is at least the
  reference's minus ``tolerance`` (0.5 percentage points by default): acc_o >= acc_r - 0.005.
- **best calibrated**: among the qualifying objectives (the reference always qualifies), the lowest mean test
  calibration error (ECE by default) over seeds.
- **by how much**: Delta = mean_s ECE(o, s) - mean_s ECE(r, s) over the seeds s both have, with a 95% paired
  percentile bootstrap interval over test samples: each resample b draws one index vector I_{s,b} of the
  test set of seed s (with replacement) and uses it for every objective (the test set is the same for all
  objectives of a seed, checked on the labels; when it is not, each objective gets its own draws), so
  Delta_b = mean_s [ECE_o(I_{s,b}) - ECE_r(I_{s,b})] and the interval is [Q(2.5%), Q(97.5%)] of Delta_b.
  The trained models are held fixed: the interval is the test-set sampling uncertainty of the difference, not
  the seed-to-seed spread (which the per-seed differences show beside it).

The values come from :func:`bootstrap_values` (the bins and the ECE formula of :mod:`caltrain.metrics`, with
each resample as a vector of draw counts); on the full test set they equal the runs' summaries (the tests
check it, and check the interval of one run against :func:`caltrain.metrics.bootstrap`'s).
Efron and Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13 (percentile interval).

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> probs = torch.softmax(torch.randn(2000, 3, generator=g), 1)
    >>> labels = torch.multinomial(probs, 1, generator=g).squeeze(1)        # calibrated by construction
    >>> hot = torch.softmax(3 * torch.log(probs), 1)                        # same predictions, over-confident
    >>> v = verdict("toy", {"ce": {0: (hot, labels)}, "good": {0: (probs, labels)}}, n=200)
    >>> v.best, v.lo < v.delta < v.hi < 0
    ('good', True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

__all__ = ["DEFAULT_TOLERANCE", "Verdict", "bootstrap_values", "choose_reference", "verdict", "weighted_top_label"]

#: "No accuracy cost": mean test accuracy at most this far (absolute, as a fraction) below the reference's.
DEFAULT_TOLERANCE = 0.005


@dataclass(frozen=True)
class Verdict:
    """The verdict of one dataset (all values fractions, not %).

    Attributes:
        dataset: the dataset label.
        metric: the calibration metric compared ("ece").
        reference: the reference objective; best: the best calibrated objective at no accuracy cost (may be
            the reference itself).
        value: objective -> mean over seeds of the metric; accuracy: objective -> mean test accuracy.
        delta, lo, hi: best - reference and its 95% paired bootstrap interval (0, 0, 0 when best is the
            reference); runner_up: when best is the reference, the next qualifying objective and its
            (delta, lo, hi) against the reference, else None.
        per_seed_delta: best - reference on each shared seed.
        tolerance: the accuracy tolerance; eligible: the qualifying objectives.
        lowest: the objective with the lowest metric overall (possibly not qualifying).
        n_resamples, n_test: bootstrap resamples and test-set size; paired: whether the resamples were shared.
        seeds: the seeds compared.
    """

    dataset: str
    metric: str
    reference: str
    best: str
    value: dict[str, float]
    accuracy: dict[str, float]
    delta: float
    lo: float
    hi: float
    per_seed_delta: list[float]
    tolerance: float
    eligible: list[str]
    lowest: str
    n_resamples: int
    n_test: int
    paired: bool
    seeds: list[int]
    runner_up: tuple[str, float, float, float] | None = None
    intervals: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    def sentence(self, metric_label: str = "ECE") -> str:
        """The verdict in one sentence (numbers in % and percentage points)."""
        ref, best = self.reference, self.best
        pct = lambda v: f"{100 * v:.2f}%"  # noqa: E731
        pp = lambda v: f"{100 * v:+.2f} pp"  # noqa: E731
        seeds = f"{len(self.seeds)} seed{'s' if len(self.seeds) != 1 else ''}"
        if best != ref:
            text = (f"{best} is the best calibrated at no accuracy cost (mean accuracy ≥ {ref}'s − "
                    f"{100 * self.tolerance:.1f} pp): test {metric_label} {pct(self.value[best])} "
                    f"vs {pct(self.value[ref])} for {ref}, Δ {pp(self.delta)} [95% CI {pp(self.lo)}, {pp(self.hi)}]; "
                    f"accuracy {pct(self.accuracy[best])} vs {pct(self.accuracy[ref])} "
                    f"({pp(self.accuracy[best] - self.accuracy[ref])}).")
            if self.lo <= 0 <= self.hi:
                text += f" The interval includes 0: not distinguishable from {ref} on this test set."
        else:
            text = (f"{ref} (the reference) stays the best calibrated: no objective within "
                    f"{100 * self.tolerance:.1f} pp of its accuracy has a lower test {metric_label} "
                    f"({pct(self.value[ref])}).")
            if self.runner_up is not None:
                name, d, lo, hi = self.runner_up
                text += f" Next: {name}, Δ {pp(d)} [95% CI {pp(lo)}, {pp(hi)}]."
        if self.lowest not in self.eligible:
            cost = self.accuracy[ref] - self.accuracy[self.lowest]
            text += (f" Lowest {metric_label} overall: {self.lowest} ({pct(self.value[self.lowest])}) at "
                     f"{100 * cost:.2f} pp less accuracy.")
        text += f" ({seeds}, {self.n_test} test samples, {self.n_resamples} resamples.)"
        return text


def choose_reference(objectives: Sequence[str], accuracy: dict[str, float],
                     candidates: Sequence[str] = ("ce",)) -> str:
    """The first of ``candidates`` among ``objectives``, else the objective with the highest mean accuracy."""
    for c in candidates:
        if c in objectives:
            return c
    return max(objectives, key=lambda o: (accuracy.get(o, float("-inf")), -objectives.index(o)))


def bootstrap_values(predictions: dict[str, dict[int, tuple[Any, Any]]], *, n_bins: int = 15, n: int = 1000,
                     seed: int = 0, chunk_elements: int = 1 << 22
                     ) -> tuple[dict[str, dict[str, np.ndarray]], bool, int]:
    """Top-label ECE and accuracy on the full test set and on shared bootstrap resamples.

    A resample is a vector of counts w [N] (how often each test sample was drawn; multinomial(N, 1/N)), so its
    per-bin statistics are weighted sums (:func:`weighted_top_label`, one matrix product per objective); the
    resamples are drawn once per seed and shared by every
    objective (paired) when their test labels agree, so the cost of drawing does not grow with the objectives.

    Args:
        predictions: objective -> seed -> ``(probs [N, C], labels [N])`` of that run's test split (the run's
            abstention convention already applied).
        n_bins: equal-width bins of the ECE (the runs' ``eval.n_bins``).
        n: resamples; seed: the resampling generator's seed (one generator per run seed s, seeded from both).
        chunk_elements: bound on each temporary count matrix (resamples x N entries, float64).

    Returns:
        ``(values, paired, n_test)``: values["ece" | "accuracy"][objective] is ``[S, 1 + n]`` float64 (column
        0: the full test set; then the resamples; S = the seeds every objective has, ascending); ``paired`` is
        True when every objective of every seed had the same labels; n_test is the first seed's test size.

    Raises:
        ValueError: no seed shared by every objective.
    """
    import torch

    objectives = list(predictions)
    seeds = sorted(set.intersection(*(set(predictions[o]) for o in objectives)))
    if not seeds:
        raise ValueError("predictions: no seed is shared by every objective")
    out = {m: {o: np.empty((len(seeds), 1 + n)) for o in objectives} for m in ("ece", "accuracy")}
    paired_all, n_test = True, 0
    for si, s in enumerate(seeds):
        labels = [np.asarray(predictions[o][s][1]) for o in objectives]
        size = len(labels[0])
        n_test = n_test or size
        paired = all(len(y) == size and np.array_equal(y, labels[0]) for y in labels)
        paired_all &= paired
        generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(s))

        def counts(length: int) -> list[torch.Tensor]:
            """Count matrices [c, length] (float64) of the n resamples, in chunks; the first row is all ones."""
            chunk = max(1, chunk_elements // max(length, 1))
            mats = [torch.ones(1, length, dtype=torch.float64)]
            for a in range(0, n, chunk):
                c = min(chunk, n - a)
                idx = torch.randint(0, length, (c, length), generator=generator)
                idx += (torch.arange(c) * length)[:, None]
                mats.append(torch.bincount(idx.reshape(-1), minlength=c * length).reshape(c, length).double())
            return mats

        shared = counts(size) if paired else None
        for o in objectives:
            p, y = predictions[o][s]
            parts = [weighted_top_label(p, y, w, n_bins=n_bins) for w in (shared or counts(len(y)))]
            out["ece"][o][si] = torch.cat([e for e, _ in parts]).numpy()
            out["accuracy"][o][si] = torch.cat([a for _, a in parts]).numpy()
    return out, paired_all, n_test


def weighted_top_label(probs: Any, labels: Any, weights: Any, *, n_bins: int = 15):
    """``(ece [R], accuracy [R])`` float64 of R weightings of the N samples (weights [R, N]: how often each
    sample is counted; a row of ones is the plain test set, a row of bootstrap draw counts a resample).

    With top-label confidence c_i, correctness a_i and equal-width bins (lo, hi]
    (:func:`caltrain.metrics.binning.uniform_bin_index`): n_b = sum_i w_i 1[i in b], S_b = sum_i w_i c_i 1[i in b],
    A_b = sum_i w_i a_i 1[i in b]; ECE = sum_b |A_b - S_b| / sum_b n_b
    (:func:`caltrain.metrics.ece.calibration_error_from_stats`), accuracy = sum_b A_b / sum_b n_b. One matrix
    product [R, N] x [N, 3B].
    """
    import torch

    from caltrain.metrics.binning import BinStats, uniform_bin_index
    from caltrain.metrics.ece import calibration_error_from_stats, top_label

    p = torch.as_tensor(probs, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.int64)
    w = torch.as_tensor(weights, dtype=torch.float64)
    conf, correct = top_label(p, y)
    conf, correct = conf.to(torch.float64), correct.to(torch.float64)
    onehot = torch.nn.functional.one_hot(uniform_bin_index(conf, n_bins), n_bins).to(torch.float64)
    features = torch.cat([onehot, onehot * conf[:, None], onehot * correct[:, None]], dim=1)  # [N, 3B]
    count, conf_sum, acc_sum = (w @ features).split(n_bins, dim=1)
    ece = calibration_error_from_stats(BinStats(count, conf_sum, acc_sum, None))
    return ece, acc_sum.sum(1) / count.sum(1)


def _interval(diff: np.ndarray) -> tuple[float, float, float]:
    """(estimate, lo, hi) of a per-seed difference matrix [S, 1 + n]: mean over seeds, percentile interval."""
    mean = diff.mean(axis=0)
    lo, hi = np.quantile(mean[1:], [0.025, 0.975])
    return float(mean[0]), float(lo), float(hi)


def verdict(dataset: str, predictions: dict[str, dict[int, tuple[Any, Any]]], *, n_bins: int = 15,
            reference_candidates: Sequence[str] = ("ce",),
            tolerance: float = DEFAULT_TOLERANCE, n: int = 1000, seed: int = 0) -> Verdict:
    """The :class:`Verdict` of one dataset from its runs' test predictions (definitions: module docstring).

    Args:
        dataset: the dataset label (for the text).
        predictions: objective -> seed -> ``(probs [N, C], labels [N])``, at least two objectives.
        n_bins: equal-width bins of the ECE (the runs' ``eval.n_bins``, so the values equal their summaries).
        reference_candidates: baseline objectives, in order of preference.
        tolerance: the accuracy tolerance of "no accuracy cost" (fraction, >= 0).
        n: bootstrap resamples; seed: their seed.

    Raises:
        ValueError: fewer than two objectives, or no seed shared by all of them.
    """
    if len(predictions) < 2:
        raise ValueError("predictions: a verdict compares at least two objectives")
    metric = "ece"
    values, paired, n_test = bootstrap_values(predictions, n_bins=n_bins, n=n, seed=seed)
    objectives = list(predictions)
    seeds = sorted(set.intersection(*(set(predictions[o]) for o in objectives)))
    cal = {o: float(values[metric][o][:, 0].mean()) for o in objectives}
    acc = {o: float(values["accuracy"][o][:, 0].mean()) for o in objectives}
    ref = choose_reference(objectives, acc, reference_candidates)
    eligible = [o for o in objectives if acc[o] >= acc[ref] - tolerance - 1e-12]
    ranked = sorted(eligible, key=lambda o: (cal[o], objectives.index(o)))
    best = ranked[0]
    intervals = {o: _interval(values[metric][o] - values[metric][ref]) for o in objectives if o != ref}
    delta, lo, hi = intervals[best] if best != ref else (0.0, 0.0, 0.0)
    runner_up = None
    if best == ref and len(ranked) > 1:
        runner_up = (ranked[1], *intervals[ranked[1]])
    per_seed = list(values[metric][best][:, 0] - values[metric][ref][:, 0])
    lowest = min(objectives, key=lambda o: (cal[o], objectives.index(o)))
    return Verdict(dataset=dataset, metric=metric, reference=ref, best=best, value=cal, accuracy=acc, delta=delta,
                   lo=lo, hi=hi, per_seed_delta=[float(d) for d in per_seed], tolerance=tolerance,
                   eligible=eligible, lowest=lowest, n_resamples=n, n_test=n_test, paired=paired, seeds=seeds,
                   runner_up=runner_up, intervals=intervals)
