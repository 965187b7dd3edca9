"""The abstention (K + 1) output: one vocabulary for metrics, calibrators, objectives, the trainer, CLI and report.

A model trained with an abstention output (Socrates loss, Deep Gamblers, Self-Adaptive Training; see
``docs/methods.md``) outputs ``p in Delta^K`` over ``K`` classes plus "unknown" (index ``K``, the last column).
Its calibration depends on how those ``K + 1`` numbers become a prediction and a confidence. The convention
is a named argument everywhere in caltrain, with these names (Gomez-Galvez et al. 2026, arXiv 2604.12245,
and their code):

- ``"with_unknown"``: the scores are all ``K + 1`` probabilities: prediction ``argmax over K + 1`` (predicting
  unknown counts as wrong), confidence ``max over K + 1``; NLL/Brier/classwise over the ``K + 1`` columns.
  A calibrator under this convention calibrates all ``K + 1`` logits as one (K + 1)-class problem.
- ``"without_unknown"``: the scores are the first ``K`` probabilities, not renormalised: prediction
  ``argmax_{k < K} p_k``, confidence ``p_yhat`` (rows sum to ``1 - p_unknown``); NLL uses ``-log p_y``
  and Brier/classwise the ``K`` columns as they are (a reading). These are not a distribution, so no
  calibrator is fitted under it.
- ``"renormalized"``: ``q_k = p_k / (1 - p_unknown)`` for ``k < K``, an ordinary K-class distribution.
  In logit space this is exactly the softmax of the ``K`` class logits (the unknown logit dropped), which is
  what a calibrator under this convention fits (:func:`calibration_logits`).
  Reading: a row with ``p_unknown = 1`` becomes uniform ``1/K``.

In every convention the abstention score is ``p_unknown`` (selective metrics keep the samples with the
smallest ``p_unknown`` first) and the abstention rate is the fraction whose argmax over ``K + 1`` is unknown.

``None`` everywhere means "no abstention output": the ``K`` outputs are ordinary class scores.

The spellings calibrators used before (``"all"`` for ``"with_unknown"``, ``"classes"`` for
``"renormalized"``) are accepted by :func:`check_convention` with a ``DeprecationWarning`` for one release.

Example:
    >>> import torch
    >>> p = torch.tensor([[0.6, 0.2, 0.2]], dtype=torch.float64)
    >>> [round(v, 6) for v in apply_abstention(p, "renormalized")[0][0].tolist()]
    [0.75, 0.25]
    >>> z = torch.tensor([[2.0, 0.0, 1.0]])
    >>> calibration_logits(z, "renormalized").tolist(), calibration_logits(z, "with_unknown").shape[1]
    ([[2.0, 0.0]], 3)
"""

from __future__ import annotations

import warnings

import torch

__all__ = [
    "ABSTENTION_CONVENTIONS",
    "CALIBRATABLE",
    "apply_abstention",
    "calibration_logits",
    "check_convention",
    "distribution_convention",
]

#: The named conventions for ``[N, K + 1]`` outputs (module docstring).
ABSTENTION_CONVENTIONS = ("with_unknown", "without_unknown", "renormalized")
#: The conventions a calibrator can be fitted under (their scores are a probability distribution).
CALIBRATABLE = ("with_unknown", "renormalized")
#: Old calibrator spellings, accepted with a DeprecationWarning for one release.
_LEGACY = {"all": "with_unknown", "classes": "renormalized"}


def check_convention(
    value: str | None, argument: str = "abstention", *, choices: tuple[str, ...] = ABSTENTION_CONVENTIONS
) -> str | None:
    """``value`` as a convention name (or ``None``), or a ``ValueError`` naming ``argument`` and the choices.

    Old calibrator spellings (``"all"``, ``"classes"``) are translated with a ``DeprecationWarning``.
    """
    if value is None:
        return None
    if isinstance(value, str) and value in _LEGACY:
        new = _LEGACY[value]
        warnings.warn(
            f"{argument}={value!r} is deprecated and will be removed in the next release; use {argument}={new!r} "
            "(the same behaviour, named like the metrics' conventions)",
            DeprecationWarning,
            stacklevel=3,
        )
        value = new
    if not isinstance(value, str) or value not in choices:
        from caltrain.utils.checks import did_you_mean

        raise ValueError(
            f"{argument}: expected None or one of {', '.join(repr(c) for c in choices)}, got {value!r}"
            + did_you_mean(value, choices)
        )
    return value


def distribution_convention(convention: str) -> str:
    """The convention whose scores are a probability distribution and agree with ``convention``'s prediction.

    ``"without_unknown"`` rows sum to ``1 - p_unknown``, so a plot of them (a reliability diagram, a
    confidence histogram) uses the ``"renormalized"`` rows: the same prediction, the confidence rescaled
    (a reading). The other conventions are their own.

    Example:
        >>> distribution_convention("without_unknown"), distribution_convention("with_unknown")
        ('renormalized', 'with_unknown')
    """
    check_convention(convention)
    return "renormalized" if convention == "without_unknown" else convention


def apply_abstention(probs: torch.Tensor, convention: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scores [N, K'], p_unknown [N])`` of prepared ``probs [N, K + 1]`` under ``convention``.

    ``K' = K + 1`` for ``"with_unknown"``, ``K`` otherwise; labels stay in ``[0, K)``.
    """
    check_convention(convention)
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


def calibration_logits(logits: torch.Tensor, convention: str | None) -> torch.Tensor:
    """The logits ``[N, C]`` a calibrator (or a softmax-based score) sees under ``convention``.

    ``None`` and ``"with_unknown"`` keep every column; ``"renormalized"`` drops the last (unknown) logit, since
    ``softmax(z[:, :K]) = p[:, :K] / (1 - p_unknown)`` exactly; ``"without_unknown"`` is not a distribution
    and raises.
    """
    check_convention(convention, choices=ABSTENTION_CONVENTIONS)
    if convention == "without_unknown":
        raise ValueError(
            "abstention: 'without_unknown' scores are not a probability distribution, so there are no logits to "
            "calibrate under it; calibrate under 'renormalized' (the K class logits) or 'with_unknown'"
        )
    if convention == "renormalized":
        if logits.shape[1] < 3:
            raise ValueError(
                "logits: abstention='renormalized' drops the last logit and needs at least 2 class logits plus the "
                f"abstention logit, got shape {tuple(logits.shape)}"
            )
        return logits[:, :-1]
    return logits
