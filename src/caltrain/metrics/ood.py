"""Out-of-distribution detection: scores (MSP, entropy, energy) and AUROC, AUPR, FPR at 95% TPR.

Scores, larger = "more in-distribution":

- ``"msp"``: maximum softmax probability ``max_k p_k`` (Hendrycks & Gimpel 2017, arXiv 1610.02136);
- ``"entropy"``: negative predictive entropy ``sum_k p_k log p_k`` (``0 log 0 = 0``);
- ``"energy"``: negative free energy ``T logsumexp(z / T)`` of the logits (Liu et al. 2020, arXiv 2010.03759);
  needs logits (``from_logits=True``), as probabilities lose the logits' scale.

Detection metrics treat in-distribution samples as positives, scores ``s_in [N_in]`` and ``s_out [N_out]``:

- ``auroc = P(s_in > s_out) + P(s_in = s_out) / 2`` (Mann-Whitney, ties counted one half; equals
  scikit-learn's ``roc_auc_score``);
- ``aupr_in`` / ``aupr_out``: average precision (scikit-learn's step-wise definition, no interpolation) with
  in- / out-of-distribution samples as positives (for ``aupr_out`` the scores are negated);
- ``fpr_at_95_tpr``: the fraction of OOD samples scoring at least the threshold ``t`` that keeps 95% of
  in-distribution samples (``t`` the ``ceil(0.95 N_in)``-th largest in-distribution score).

Example:
    >>> import torch
    >>> float(auroc(torch.tensor([0.9, 0.8]), torch.tensor([0.1, 0.85])))
    0.75
"""

from __future__ import annotations

from typing import Any

import torch

from caltrain.utils.checks import as_tensor, check_choice, check_finite, check_nonempty, check_number

__all__ = ["OOD_SCORES", "aupr", "auroc", "fpr_at_tpr", "ood_detection", "ood_score"]

#: Names accepted by :func:`ood_score`.
OOD_SCORES = ("msp", "entropy", "energy")


def ood_score(
    values: Any, method: str = "msp", *, from_logits: bool = False, temperature: float = 1.0
) -> torch.Tensor:
    """Per-sample in-distribution score ``[N]`` float64 of ``values [N, K]`` (probabilities or logits)."""
    check_choice(method, "method", OOD_SCORES)
    v = as_tensor(values, "values")
    if v.ndim != 2:
        raise ValueError(f"values: expected shape [N, K], got shape {tuple(v.shape)}")
    check_nonempty(v, "values")
    check_finite(v, "values")
    v = v.to(torch.float64)
    if method == "energy":
        if not from_logits:
            raise ValueError("method: 'energy' needs logits; pass from_logits=True with logits")
        t = check_number(temperature, "temperature", low=0, low_inclusive=False)
        return t * torch.logsumexp(v / t, dim=1)
    if from_logits:
        logp = torch.log_softmax(v, dim=1)
        p = logp.exp()
    else:
        p = v
        logp = v.clamp(min=torch.finfo(torch.float64).tiny).log()
    if method == "msp":
        return p.max(dim=1).values
    return torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(1)


def _scores(s_in: Any, s_out: Any) -> tuple[torch.Tensor, torch.Tensor]:
    a = as_tensor(s_in, "scores_in").reshape(-1).to(torch.float64)
    b = as_tensor(s_out, "scores_out", device=a.device).reshape(-1).to(torch.float64)
    check_nonempty(a, "scores_in")
    check_nonempty(b, "scores_out")
    check_finite(a, "scores_in")
    check_finite(b, "scores_out")
    return a, b


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks of ``x`` with ties given their average rank."""
    sorted_x, order = torch.sort(x, stable=True)
    n = x.shape[0]
    new = torch.ones(n, dtype=torch.bool, device=x.device)
    new[1:] = sorted_x[1:] != sorted_x[:-1]
    group = new.cumsum(0) - 1
    counts = torch.bincount(group).to(torch.float64)
    ends = counts.cumsum(0)
    avg = ends - (counts - 1) / 2  # average of ranks (ends - counts + 1) .. ends
    ranks = torch.empty(n, dtype=torch.float64, device=x.device)
    ranks[order] = avg[group]
    return ranks


def auroc(scores_in: Any, scores_out: Any) -> torch.Tensor:
    """Area under the ROC curve, in-distribution as positives, ties counted one half (float64 scalar)."""
    a, b = _scores(scores_in, scores_out)
    ranks = _average_ranks(torch.cat([a, b]))
    n_in, n_out = a.shape[0], b.shape[0]
    u = ranks[:n_in].sum() - n_in * (n_in + 1) / 2
    return u / (n_in * n_out)


def aupr(scores_pos: Any, scores_neg: Any) -> torch.Tensor:
    """Average precision with ``scores_pos`` as positives: ``sum_t (R_t - R_{t-1}) P_t`` over distinct thresholds."""
    a, b = _scores(scores_pos, scores_neg)
    s = torch.cat([a, b])
    pos = torch.cat([torch.ones_like(a), torch.zeros_like(b)])
    s_sorted, order = torch.sort(s, descending=True, stable=True)
    tp = pos[order].cumsum(0)
    fp = (1 - pos[order]).cumsum(0)
    last = torch.ones_like(s_sorted, dtype=torch.bool)
    last[:-1] = s_sorted[1:] != s_sorted[:-1]
    tp, fp = tp[last], fp[last]
    precision = tp / (tp + fp)
    recall = tp / a.shape[0]
    d_recall = torch.diff(recall, prepend=recall.new_zeros(1))
    return (d_recall * precision).sum()


def fpr_at_tpr(scores_in: Any, scores_out: Any, tpr: float = 0.95) -> torch.Tensor:
    """Fraction of OOD scores ``>= t``, ``t`` the ``ceil(tpr N_in)``-th largest in-distribution score."""
    tpr = check_number(tpr, "tpr", low=0, high=1, low_inclusive=False)
    a, b = _scores(scores_in, scores_out)
    k = max(1, int(torch.ceil(torch.tensor(tpr * a.shape[0] - 1e-9)).item()))
    threshold = torch.sort(a, descending=True).values[k - 1]
    return (b >= threshold).to(torch.float64).mean()


def ood_detection(scores_in: Any, scores_out: Any) -> dict[str, float]:
    """``{"auroc", "aupr_in", "aupr_out", "fpr_at_95_tpr"}`` as Python floats (module docstring)."""
    a, b = _scores(scores_in, scores_out)
    return {
        "auroc": float(auroc(a, b)),
        "aupr_in": float(aupr(a, b)),
        "aupr_out": float(aupr(-b, -a)),
        "fpr_at_95_tpr": float(fpr_at_tpr(a, b, 0.95)),
    }
