"""Bootstrap percentile confidence intervals for any metric, with vectorised resampling.

Draw ``n`` resamples of the ``N`` samples with replacement (an index matrix ``[n, N]`` from a seeded
``torch.Generator``), evaluate the metric on each, and report the percentile interval
``[Q(alpha/2), Q(1 - alpha/2)]`` of the ``n`` values (linear interpolation between order statistics, as
``numpy.quantile``) around the estimate on the full data (Efron & Tibshirani 1993, ch. 13).

Vectorised paths (:data:`BOOTSTRAP_METRICS`) evaluate a chunk of resamples at once from per-sample
quantities: the binned metrics gather each resample's bin indices and add them into ``[chunk, B]``
statistics with one ``bincount`` (equal-mass bins: one batched sort per chunk), the means (NLL, Brier,
accuracy) gather per-sample values. Chunks keep the temporary ``[chunk, N(, K)]`` tensors under
``chunk_elements`` entries. Any other callable ``metric(probs, labels, **kwargs)`` is evaluated once per
resample (a Python loop: slower, same result).

Dense inputs resample pixels independently (a reading; to resample whole images, index images yourself).

Example:
    >>> import torch
    >>> p = torch.softmax(torch.randn(200, 3, generator=torch.Generator().manual_seed(0)), 1)
    >>> y = torch.randint(0, 3, (200,), generator=torch.Generator().manual_seed(1))
    >>> est, lo, hi = bootstrap("ece", p, y, n=200, seed=0)
    >>> lo <= est <= hi
    True
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from caltrain.metrics.binning import bin_statistics, sorted_quantile_statistics, uniform_bin_index
from caltrain.metrics.classwise import classwise_calibration_error
from caltrain.metrics.ece import (
    NORMS,
    adaptive_calibration_error,
    calibration_error_from_stats,
    expected_calibration_error,
    top_label,
)
from caltrain.metrics.proper_scores import (
    accuracy,
    brier_per_sample,
    brier_score,
    negative_log_likelihood,
    nll_per_sample,
)
from caltrain.metrics.validation import prepare
from caltrain.utils.checks import check_choice, check_number, check_n_bins, check_positive_int
from caltrain.utils.registry import Registry

__all__ = ["BOOTSTRAP_METRICS", "bootstrap"]

#: name -> ``factory(probs, labels, **kwargs)`` returning ``evaluate(index [c, N]) -> values [c]``.
BOOTSTRAP_METRICS: Registry = Registry("bootstrap metric")


@BOOTSTRAP_METRICS.register("ece")
def _ece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15, norm: str = "l1", binning: str = "uniform"):
    n_bins = check_n_bins(n_bins)
    check_choice(norm, "norm", NORMS)
    check_choice(binning, "binning", ("uniform", "quantile"))
    conf, correct = top_label(probs, labels)
    conf, correct = conf.to(torch.float64), correct.to(torch.float64)
    bins = uniform_bin_index(conf, n_bins)

    def evaluate(index: torch.Tensor) -> torch.Tensor:
        c = index.shape[0]
        if binning == "uniform":
            offsets = (torch.arange(c, device=index.device) * n_bins)[:, None]
            stats = bin_statistics(conf[index], correct[index], bins[index] + offsets, n_bins, groups=c)
        else:
            s, order = torch.sort(conf[index], dim=1, stable=True)
            stats = sorted_quantile_statistics(s, correct[index].gather(1, order), n_bins)
        return calibration_error_from_stats(stats, norm)

    return evaluate


@BOOTSTRAP_METRICS.register("adaece")
def _adaece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15, norm: str = "l1"):
    return _ece(probs, labels, n_bins=n_bins, norm=norm, binning="quantile")


@BOOTSTRAP_METRICS.register("classwise_ece")
def _classwise(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15, norm: str = "l1"):
    n_bins = check_n_bins(n_bins)
    check_choice(norm, "norm", NORMS)
    k = probs.shape[1]
    p = probs.to(torch.float64)
    onehot = torch.nn.functional.one_hot(labels, k).to(torch.float64)
    bins = uniform_bin_index(p, n_bins) + torch.arange(k, device=p.device) * n_bins  # [N, K]

    def evaluate(index: torch.Tensor) -> torch.Tensor:
        c = index.shape[0]
        offsets = (torch.arange(c, device=index.device) * (k * n_bins))[:, None, None]
        stats = bin_statistics(p[index], onehot[index], bins[index] + offsets, n_bins, groups=c * k)
        return calibration_error_from_stats(stats, norm).reshape(c, k).mean(1)

    return evaluate


def _mean_of(values: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda index: values[index].mean(1)


@BOOTSTRAP_METRICS.register("nll")
def _nll(probs: torch.Tensor, labels: torch.Tensor):
    return _mean_of(nll_per_sample(probs, labels))


@BOOTSTRAP_METRICS.register("brier")
def _brier(probs: torch.Tensor, labels: torch.Tensor):
    return _mean_of(brier_per_sample(probs, labels))


@BOOTSTRAP_METRICS.register("accuracy")
def _accuracy(probs: torch.Tensor, labels: torch.Tensor):
    return _mean_of((probs.argmax(1) == labels).to(torch.float64))


_FUNCTION_NAMES: dict[Callable[..., Any], str] = {
    expected_calibration_error: "ece",
    adaptive_calibration_error: "adaece",
    classwise_calibration_error: "classwise_ece",
    negative_log_likelihood: "nll",
    brier_score: "brier",
    accuracy: "accuracy",
}


def bootstrap(
    metric: str | Callable[..., Any],
    probs: Any,
    labels: Any,
    n: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    *,
    from_logits: bool = False,
    ignore_index: int | None = None,
    chunk_elements: int = 1 << 24,
    **metric_kwargs: Any,
) -> tuple[float, float, float]:
    """``(estimate, lo, hi)``: the metric on all samples and its ``1 - alpha`` bootstrap percentile interval.

    Args:
        metric: a name in :data:`BOOTSTRAP_METRICS` (``ece``, ``adaece``, ``classwise_ece``, ``nll``,
            ``brier``, ``accuracy``), one of the matching public functions (same fast path), or any callable
            ``metric(probs, labels, **metric_kwargs)`` returning a scalar.
        probs, labels: as for the metrics (``[N, K(, *spatial)]``, ``[N(, *spatial)]``).
        n: number of resamples (>= 1).
        seed: seed of the resampling generator (same seed, same interval).
        alpha: two-sided level, in (0, 1).
        from_logits, ignore_index: input handling as for the metrics.
        chunk_elements: bound on the temporary tensors of the vectorised paths.
        **metric_kwargs: forwarded to the metric (e.g. ``n_bins=15``, ``norm="l2"``).
    """
    n = check_positive_int(n, "n")
    alpha = check_number(alpha, "alpha", low=0, high=1, low_inclusive=False, high_inclusive=False)
    chunk_elements = check_positive_int(chunk_elements, "chunk_elements")
    p, y = prepare(probs, labels, from_logits=from_logits, ignore_index=ignore_index)
    size = y.shape[0]
    name = metric if isinstance(metric, str) else _FUNCTION_NAMES.get(metric)  # type: ignore[arg-type]
    if name is None and not callable(metric):
        names = ", ".join(BOOTSTRAP_METRICS.names())
        raise ValueError(f"metric: expected a name ({names}) or a callable, got {metric!r}")
    generator = torch.Generator().manual_seed(int(seed))
    if name is not None:
        BOOTSTRAP_METRICS.check_kwargs(name, metric_kwargs)
        evaluate = BOOTSTRAP_METRICS.create(name, p, y, **metric_kwargs)
        per_row = size * (p.shape[1] if name == "classwise_ece" else 1)
        chunk = max(1, chunk_elements // max(per_row, 1))
        estimate = evaluate(torch.arange(size, device=p.device)[None])[0]
        parts = []
        for start in range(0, n, chunk):
            c = min(chunk, n - start)
            index = torch.randint(0, size, (c, size), generator=generator).to(p.device)
            parts.append(evaluate(index))
        values = torch.cat(parts)
    else:
        estimate = torch.as_tensor(metric(p, y, **metric_kwargs), dtype=torch.float64)
        out = []
        for _ in range(n):
            index = torch.randint(0, size, (size,), generator=generator).to(p.device)
            out.append(torch.as_tensor(metric(p[index], y[index], **metric_kwargs), dtype=torch.float64).reshape(()))
        values = torch.stack(out)
    q = torch.tensor([alpha / 2, 1 - alpha / 2], dtype=torch.float64, device=values.device)
    lo, hi = torch.quantile(values.to(torch.float64), q).tolist()
    return float(estimate), lo, hi
