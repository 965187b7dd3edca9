"""Evaluation conventions for abstention models (K + 1 outputs, the last one "unknown").

A model trained with an abstention output (Socrates loss, Deep Gamblers, Self-Adaptive Training; METHODS.md
1.1) outputs ``p in Delta^K`` over ``K`` classes plus "unknown" (index ``K``). Its calibration depends on how
those ``K + 1`` numbers become a prediction and a confidence; the convention is a named argument
(Gomez-Galvez et al. 2026, arXiv 2604.12245, and their code):

- ``"with_unknown"``: the scores are all ``K + 1`` probabilities: prediction ``argmax over K + 1`` (predicting
  unknown counts as wrong), confidence ``max over K + 1``; NLL/Brier/classwise over the ``K + 1`` columns.
- ``"without_unknown"``: the scores are the first ``K`` probabilities, not renormalised: prediction
  ``argmax_{k < K} p_k``, confidence ``p_yhat`` (rows sum to ``1 - p_unknown``); NLL uses ``-log p_y``
  and Brier/classwise the ``K`` columns as they are (a reading).
- ``"renormalized"``: ``q_k = p_k / (1 - p_unknown)`` for ``k < K``, an ordinary K-class distribution.
  Reading: a row with ``p_unknown = 1`` becomes uniform ``1/K``.

In every convention the abstention score is ``p_unknown`` (selective metrics keep the samples with the
smallest ``p_unknown`` first) and the abstention rate is the fraction whose argmax over ``K + 1`` is unknown.

Example:
    >>> import torch
    >>> p = torch.tensor([[0.6, 0.2, 0.2]], dtype=torch.float64)
    >>> [round(v, 6) for v in apply_abstention(p, "renormalized")[0][0].tolist()]
    [0.75, 0.25]
"""

from __future__ import annotations

import torch

from caltrain.utils.checks import check_choice

__all__ = ["ABSTENTION_CONVENTIONS", "apply_abstention"]

#: The named conventions for ``[N, K + 1]`` probabilities (module docstring).
ABSTENTION_CONVENTIONS = ("with_unknown", "without_unknown", "renormalized")


def apply_abstention(probs: torch.Tensor, convention: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scores [N, K'], p_unknown [N])`` of prepared ``probs [N, K + 1]`` under ``convention``.

    ``K' = K + 1`` for ``"with_unknown"``, ``K`` otherwise; labels stay in ``[0, K)``.
    """
    check_choice(convention, "abstention", ABSTENTION_CONVENTIONS)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(
            "probs: an abstention convention needs [N, K + 1] probabilities with K >= 1, "
            f"got shape {tuple(probs.shape)}"
        )
    p_unknown = probs[:, -1]
    if convention == "with_unknown":
        return probs, p_unknown
    classes = probs[:, :-1]
    if convention == "without_unknown":
        return classes, p_unknown
    total = classes.sum(1, keepdim=True)
    uniform = torch.full_like(classes, 1.0 / classes.shape[1])
    return torch.where(total > 0, classes / total.clamp(min=torch.finfo(classes.dtype).tiny), uniform), p_unknown
