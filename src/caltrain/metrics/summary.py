"""Every standard metric of one set of predictions in one pass: what the trainer logs after each epoch.

:func:`summarize` shares the work between metrics: one ``max`` gives confidence and prediction, one
``bincount`` pass the equal-width bins (ECE, MCE, RMSCE), one descending sort serves both the equal-mass
bins (AdaECE) and the risk-coverage curve (AURC, E-AURC), one ``[N, K]`` ``bincount`` the classwise ECE.
Measured cost on 10k x 10 float64 probabilities: see docs/metrics.md (a few milliseconds on one CPU core).

Keys (plain Python floats):

=================  ==============================================================================
``n``              number of evaluated samples (pixels for dense inputs, after ``ignore_index``)
``accuracy``       top-1 accuracy
``nll``, ``brier`` :mod:`caltrain.metrics.proper_scores` (Brier summed over classes)
``ece``            top-label ECE, ``n_bins`` equal-width bins ``(lo, hi]``
``mce``, ``rmsce`` max and RMS calibration error on the same bins
``adaece``         ECE on ``n_bins`` equal-mass bins
``classwise_ece``  classwise ECE (Kull et al. 2019), ``n_bins`` equal-width bins per class
``smooth_ece``     smooth ECE with automatic bandwidth (Blasiok & Nakkiran 2023)
``aurc``, ``eaurc`` selective risk (:mod:`caltrain.metrics.selective`); ranked by confidence, or by
                   ``-p_unknown`` with an abstention convention
``true_ece``       with ``true_posterior``: the calibration error ``E |E[q(yhat | x) | conf] - conf|``,
                   estimated with the known posterior (:mod:`caltrain.metrics.true_calibration`)
``pointwise_ce``   with ``true_posterior``: ``E |q(yhat | x) - conf|``, each prediction against its true
                   probability (not a calibration error: it adds the grouping loss)
``grouping_loss``  with ``true_posterior``: ``pointwise_ce - true_ece`` (>= 0)
``abstention_rate`` fraction whose argmax over K + 1 is unknown (only with ``abstention``)
=================  ==============================================================================

Example:
    >>> import torch
    >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]], dtype=torch.float64)
    >>> s = summarize(p, torch.tensor([0, 1, 1]), n_bins=10)
    >>> round(s["ece"], 6), s["n"], round(s["accuracy"], 4)
    (0.333333, 3, 0.6667)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from caltrain.abstention import ABSTENTION_CONVENTIONS, apply_abstention
from caltrain.metrics.binning import bin_statistics, sorted_quantile_statistics, uniform_bin_index
from caltrain.metrics.classwise import classwise_bin_statistics
from caltrain.metrics.ece import calibration_error_from_stats
from caltrain.metrics.proper_scores import brier_per_sample, nll_per_sample
from caltrain.metrics.selective import aurc_from_sorted, optimal_aurc
from caltrain.metrics.smooth_ece import smooth_ece_from_scores
from caltrain.metrics.true_calibration import predicted_true_probability, true_calibration_from_scores
from caltrain.metrics.validation import prepare_with
from caltrain.utils.checks import check_choice, check_n_bins

__all__ = ["SUMMARY_KEYS", "summarize"]

#: Keys always present in :func:`summarize`'s result.
SUMMARY_KEYS = (
    "n", "accuracy", "nll", "brier", "ece", "mce", "rmsce", "adaece", "classwise_ece", "smooth_ece", "aurc", "eaurc",
)


def summarize(
    probs: Any,
    labels: Any,
    *,
    n_bins: int = 15,
    true_posterior: Any = None,
    abstention: str | None = None,
    ignore_index: int | None = None,
    from_logits: bool = False,
) -> dict[str, float | int]:
    """Every standard metric of ``probs`` and ``labels`` as plain floats (``n``, the count, an int).

    The keys are listed in the module docstring.

    Args:
        probs: ``[N, K(, *spatial)]`` probabilities (``[N, K + 1, ...]`` with ``abstention``), or logits with
            ``from_logits=True``.
        labels: ``[N(, *spatial)]`` class indices in ``[0, K)``.
        n_bins: bins of every binned metric (default 15).
        true_posterior: optional ``[N, K(, *spatial)]`` true class probabilities; adds ``true_ece``,
            ``pointwise_ce`` and ``grouping_loss`` (their estimator bins with its own rule, ``ceil(N^(1/3))``
            equal-mass bins, not ``n_bins``). K is the number of real classes: ``probs.shape[1]``, or
            ``probs.shape[1] - 1`` with an ``abstention`` convention (the unknown output has no true probability;
            a prediction of unknown scores ``q = 0``). Any other width raises ``ValueError`` naming
            ``true_posterior``.
        abstention: ``None`` or one of :data:`ABSTENTION_CONVENTIONS` (last column = unknown).
        ignore_index: label value of entries to leave out.
        from_logits: apply a float64 softmax to ``probs`` first.
    """
    n_bins = check_n_bins(n_bins)
    if abstention is not None:
        check_choice(abstention, "abstention", ABSTENTION_CONVENTIONS)
    k_out = None
    if abstention is not None:
        shape = getattr(probs, "shape", None)
        if shape is not None and len(shape) >= 2:
            k_out = int(shape[1]) - 1
            if k_out < 1:
                raise ValueError(
                    f"probs: an abstention convention needs [N, K + 1] outputs with K >= 1, got {list(shape)}"
                )
    if true_posterior is not None:
        _check_posterior_width(probs, true_posterior, abstention)
    p, y, q = prepare_with(
        probs, labels, true_posterior, from_logits=from_logits, ignore_index=ignore_index, num_classes=k_out
    )
    out: dict[str, Any] = {}
    if abstention is not None:
        scores, p_unknown = apply_abstention(p, abstention)
        out["abstention_rate"] = (p.argmax(1) == p.shape[1] - 1).to(torch.float64).mean()
        rank_score = -p_unknown.to(torch.float64)
    else:
        scores = p
        rank_score = None
    n = y.shape[0]
    conf, pred = scores.max(dim=1)
    conf = conf.to(torch.float64)
    correct = pred == y
    uniform = bin_statistics(conf, correct, uniform_bin_index(conf, n_bins), n_bins)
    conf_desc, order = torch.sort(conf, descending=True, stable=True)
    ada = sorted_quantile_statistics(conf_desc.flip(0), correct[order].flip(0), n_bins)
    if rank_score is None:
        risk = aurc_from_sorted(conf_desc, ~correct[order])
    else:
        g_desc, g_order = torch.sort(rank_score, descending=True, stable=True)
        risk = aurc_from_sorted(g_desc, ~correct[g_order])
    n_err = (~correct).sum()
    aurc_value = risk.mean()
    out.update(
        n=float(n),
        accuracy=correct.to(torch.float64).mean(),
        nll=nll_per_sample(scores, y).mean(),
        brier=brier_per_sample(scores, y).mean(),
        ece=calibration_error_from_stats(uniform, "l1"),
        mce=calibration_error_from_stats(uniform, "max"),
        rmsce=calibration_error_from_stats(uniform, "l2"),
        adaece=calibration_error_from_stats(ada, "l1"),
        classwise_ece=calibration_error_from_stats(classwise_bin_statistics(scores, y, n_bins), "l1").mean(),
        smooth_ece=smooth_ece_from_scores(conf, correct)[0],
        aurc=aurc_value,
        eaurc=aurc_value - optimal_aurc(n, n_err, device=conf.device),
    )
    if q is not None:
        # the ascending order of conf is the descending one reversed (ties are averaged, so their order is moot)
        out.update(true_calibration_from_scores(conf, predicted_true_probability(conf, pred, q), order=order.flip(0)))
    ordered = {key: out[key] for key in SUMMARY_KEYS}
    ordered.update({key: value for key, value in out.items() if key not in ordered})
    values = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=conf.device) for v in ordered.values()])
    result = dict(zip(ordered, values.cpu().tolist()))  # one device-to-host copy for every value
    result["n"] = int(result["n"])  # a count, printed as 2000 rather than 2000.0
    return result


def _check_posterior_width(probs: Any, true_posterior: Any, abstention: str | None) -> None:
    """Raise unless ``true_posterior`` has one column per real class of ``probs`` (``K``, or ``K + 1 - 1``)."""
    p_shape = tuple(getattr(probs, "shape", None) or np.shape(probs))
    q_shape = tuple(getattr(true_posterior, "shape", None) or np.shape(true_posterior))
    if len(p_shape) < 2 or len(q_shape) < 2:
        return  # prepare_with names the wrong number of dimensions
    k = int(p_shape[1]) - (1 if abstention is not None else 0)
    if int(q_shape[1]) != k:
        expected = [q_shape[0], k, *q_shape[2:]]
        why = (
            f"probs has {p_shape[1]} columns, the last the unknown output of abstention={abstention!r}"
            if abstention is not None
            else f"probs has {p_shape[1]} classes"
        )
        raise ValueError(
            f"true_posterior: expected shape {expected} (one column per class: {why}), got {list(q_shape)}"
        )
