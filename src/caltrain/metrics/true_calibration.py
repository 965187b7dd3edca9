"""Calibration on data whose posterior is known: the true calibration error, the pointwise error, the grouping loss.

Symbols. A model gives each input x a predicted class yhat(x) = argmax_k p_k(x) and a confidence
conf(x) = max_k p_k(x); the data (the synthetic sets) has the known posterior q(k | x) = P(observed label = k | x).
Write Q = q(yhat(x) | x), the probability that the prediction is right given x (Q = 0 when the model predicts an
"unknown" output that has no true probability), C = conf(x), and R(c) = E[Q | C = c] = P(correct | C = c), the
model's true reliability curve. With r = ``norm`` (1 by default, or 2):

    true calibration error        TCE_r = ( E |R(C) - C|^r )^(1/r)       key ``true_ece``
    pointwise calibration error   PCE_r = ( E |Q - C|^r )^(1/r)          key ``pointwise_ce``
    grouping loss                 GL_1  = PCE_1 - TCE_1                  key ``grouping_loss`` (r = 1)
                                  GL_2  = PCE_2^2 - TCE_2^2 = E (Q - R(C))^2                       (r = 2)

(:func:`true_calibration_error`, :func:`pointwise_calibration_error`, :func:`true_calibration_decomposition`.)
TCE is what every binned ECE estimates (calibration is ``E[correct | conf] = conf``): a known posterior lets it be
estimated with ``Q`` in place of the 0/1 correctness, which removes the Bernoulli noise of the labels (the spread
of Q at one confidence remains). PCE compares each prediction with its own true probability; it adds to TCE the
error of grouping different inputs under one confidence, and it stays large for a perfectly calibrated but coarse
model (TCE = 0 < PCE). GL_2 is the grouping loss of the Brier score of Perez-Lebel, Le Morvan & Varoquaux 2023
(arXiv 2210.16315), for the event "correct" scored by C:
``E (C - Q)^2 = E (C - R(C))^2 + E (R(C) - Q)^2`` (calibration loss + grouping loss, the cross term vanishes
because ``E[Q - R(C) | C] = 0``). GL_1 is its L1 analogue (our reading: the paper decomposes proper scores, and
the L1 error is not one). Both are non-negative, in the population (Jensen's inequality given C) and for the
estimates below (the triangle inequality within each bin); GL_1 is 0 when Q - C keeps one sign within each
confidence level (e.g. a model over-confident on every input), even if Q varies there, while GL_2 is 0 only when Q
is a function of C.

Estimator of R (a reading: no paper fixes one). Sort the N samples by C and cut them into
``B`` equal-mass bins (rank ``i`` in bin ``floor(i B / N)``, :mod:`caltrain.metrics.binning`; tied confidences
share their Q in proportion, so the order of ties does not matter). With ``g_i = Q_i - C_i`` and
``G_b = sum_{i in b} g_i``,

    TCE_1 ~ (1/N) sum_b |G_b|,      TCE_2^2 ~ (1/N) sum_b G_b^2 / n_b,
    PCE_1 = (1/N) sum_i |g_i|,      PCE_2^2 = (1/N) sum_i g_i^2     (exact sample means, no bins),

so ``PCE_1 - TCE_1 >= 0`` (triangle inequality) and ``PCE_2^2 - TCE_2^2`` is the within-bin variance of ``g``
(exact decomposition), for every sample. The bin count rule is ``B = ceil(N^(1/3))``
(:func:`true_calibration_bins`; 22 bins at N = 10^4, 100 at 10^6): the estimate of R in a bin has standard error
``sigma sqrt(B / N)``, with sigma the spread of Q at one confidence, and a bin averages R - C over its width (which
loses something only where R - C changes sign inside the bin), so B must grow with N but more slowly; N^(1/3)
balances the two for a Lipschitz R (the histogram-regression rate). The estimate is consistent; its error is largest for a
calibrated model, which it reads as slightly miscalibrated (about ``0.8 sigma N^(-1/3)``: 0.005 at N = 10^4 with
sigma = 0.125); ``tests/metrics/test_true_calibration.py`` shows the convergence in N against a closed form.
``n_bins=`` overrides the rule.

Dense binary maps (:func:`dense_true_calibration_error`, streaming :class:`DenseTrueCalibration`): every valid
pixel is one binary prediction with the convention of :mod:`caltrain.metrics.dense` (yhat = 1[s >= 0.5],
C = max(s, 1 - s)) and Q = t if yhat = 1 else 1 - t, with t = P(y = 1 | x) the known per-pixel posterior; the
same three numbers, pooled over every valid pixel of the dataset.

Shapes: ``probs`` and ``true_posterior`` ``[N, K]`` (the model's probabilities over the same K classes; for a
model with an abstention output pass the K class probabilities you evaluate, or use
:func:`caltrain.metrics.summarize` with ``abstention=``). Accumulated in float64. This module is the one owner of
the concept (``caltrain.data`` no longer re-exports it).

Example:
    >>> import torch
    >>> q = torch.tensor([[0.7, 0.3], [0.2, 0.8]])
    >>> float(true_calibration_error(q, q))  # the true posterior is perfectly calibrated
    0.0
    >>> sharp = torch.tensor([[1.0, 0.0], [0.0, 1.0]])      # right 75% of the time, always sure
    >>> round(float(true_calibration_error(sharp, q)), 3), round(float(pointwise_calibration_error(sharp, q)), 3)
    (0.25, 0.25)
    >>> coarse = torch.tensor([[0.75, 0.25], [0.25, 0.75]])  # calibrated on average, not per input
    >>> {k: round(float(v), 3) for k, v in true_calibration_decomposition(coarse, q, n_bins=1).items()}
    {'true_ece': 0.0, 'pointwise_ce': 0.05, 'grouping_loss': 0.05}
"""

from __future__ import annotations

import math
from typing import Any

import torch

from caltrain.metrics.binning import sorted_quantile_statistics, uniform_bin_index
from caltrain.metrics.streaming import StreamingMetric
from caltrain.utils.checks import (
    MAX_BINS,
    as_tensor,
    check_choice,
    check_finite,
    check_n_bins,
    check_ndim,
    check_nonempty,
    check_probabilities,
)

__all__ = [
    "DENSE_TRUE_BINS",
    "DENSE_TRUE_KEYS",
    "DenseTrueCalibration",
    "TRUE_CALIBRATION_KEYS",
    "dense_true_calibration_error",
    "pointwise_calibration_error",
    "predicted_true_probability",
    "prepare_dense_posterior",
    "true_calibration_bins",
    "true_calibration_decomposition",
    "true_calibration_error",
    "true_calibration_from_scores",
]

#: The keys of :func:`true_calibration_decomposition`, :func:`dense_true_calibration_error` and of
#: :func:`caltrain.metrics.summarize` with ``true_posterior``.
TRUE_CALIBRATION_KEYS = ("true_ece", "pointwise_ce", "grouping_loss")

#: The keys of :func:`dense_true_calibration_error` and :meth:`DenseTrueCalibration.compute`.
DENSE_TRUE_KEYS = (*TRUE_CALIBRATION_KEYS, "n")

#: Equal-width bins of the dense streaming form (:class:`DenseTrueCalibration`) over C in [0.5, 1]: width 0.005.
DENSE_TRUE_BINS = 100

_NORMS = (1, 2)
_BINNINGS = ("quantile", "uniform")


def true_calibration_bins(n: int) -> int:
    """The equal-mass bin count of the estimator of R = E[Q | C]: ``ceil(n^(1/3))``, in [1, MAX_BINS].

    Example:
        >>> [true_calibration_bins(n) for n in (1, 1000, 2000, 10_000, 10**6)]
        [1, 10, 13, 22, 100]
    """
    if n <= 1:
        return 1
    b = math.ceil(n ** (1 / 3) - 1e-9)  # 1000 ** (1/3) is 9.999999999999998 in floating point
    return max(1, min(b, MAX_BINS))


def predicted_true_probability(
    confidence: torch.Tensor, predicted: torch.Tensor, true_posterior: torch.Tensor
) -> torch.Tensor:
    """``Q_i = q(yhat_i | x_i)`` ``[N]`` float64 from ``true_posterior [N, K]``; a prediction outside ``[0, K)``
    (an unknown output) has ``Q = 0``. ``confidence`` gives the device and is otherwise unused."""
    k = true_posterior.shape[1]
    inside = predicted < k
    q = true_posterior.to(device=confidence.device, dtype=torch.float64)
    q = q.gather(1, predicted.clamp(max=k - 1)[:, None]).squeeze(1)
    return torch.where(inside, q, torch.zeros_like(q))


def true_calibration_from_scores(
    confidence: torch.Tensor,
    q: torch.Tensor,
    *,
    n_bins: int | None = None,
    norm: int = 1,
    order: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The three numbers of the module docstring from per-sample ``C [N]`` and ``Q [N]`` (0-d float64 tensors).

    Args:
        confidence: ``C``, ``[N]`` (any float dtype; upcast to float64).
        q: ``Q``, ``[N]``, the true probability of the predicted outcome.
        n_bins: equal-mass bins of the estimator of R; default :func:`true_calibration_bins` ``(N)``.
        norm: 1 (default) or 2.
        order: optional ascending stable ``argsort`` of ``confidence`` (saves a sort when the caller has one;
            a descending one reversed is fine too: tied confidences are averaged, so their order is irrelevant).
    """
    check_choice(norm, "norm", _NORMS)
    c = confidence.to(torch.float64).reshape(-1)
    qq = q.to(device=c.device, dtype=torch.float64).reshape(-1)
    n = c.shape[0]
    n_bins = true_calibration_bins(n) if n_bins is None else check_n_bins(n_bins)
    if order is None:
        order = torch.argsort(c, stable=True)
    stats = sorted_quantile_statistics(c[order], qq[order], n_bins)
    gap_sum = stats.acc_sum - stats.conf_sum  # G_b
    g = qq - c
    if norm == 1:
        true = gap_sum.abs().sum() / n
        point = g.abs().mean()
        grouping = point - true
    else:
        true2 = (gap_sum.square() / stats.count.clamp(min=1)).sum() / n
        point2 = g.square().mean()
        true, point, grouping = true2.sqrt(), point2.sqrt(), point2 - true2
    # the triangle inequality holds exactly; rounding can leave -1e-17
    return {"true_ece": true, "pointwise_ce": point, "grouping_loss": grouping.clamp(min=0)}


def _confidence_and_q(probs: Any, true_posterior: Any) -> tuple[torch.Tensor, torch.Tensor]:
    probs = as_tensor(probs, "probs")
    true_posterior = as_tensor(true_posterior, "true_posterior", device=probs.device)
    check_ndim(probs, "probs", 2, "[N, K]")
    if probs.shape != true_posterior.shape:
        raise ValueError(
            f"true_posterior: expected shape {list(probs.shape)}, the shape [N, K] of probs (for a model with an "
            f"abstention output pass its K class probabilities), got {list(true_posterior.shape)}"
        )
    check_nonempty(probs, "probs")
    check_probabilities(probs, "probs")
    check_probabilities(true_posterior, "true_posterior")
    conf, predicted = probs.to(torch.float64).max(dim=1)
    return conf, predicted_true_probability(conf, predicted, true_posterior)


def true_calibration_decomposition(
    probs: Any, true_posterior: Any, *, norm: int = 1, n_bins: int | None = None
) -> dict[str, torch.Tensor]:
    """``{"true_ece", "pointwise_ce", "grouping_loss"}`` (0-d float64 tensors) of ``probs [N, K]``.

    See the module docstring for the math. ``norm=1``: ``grouping_loss = pointwise_ce - true_ece``; ``norm=2``:
    ``grouping_loss = pointwise_ce^2 - true_ece^2`` (Perez-Lebel et al.'s grouping loss of the Brier score).
    ``n_bins``: equal-mass bins of the estimator of ``E[Q | C]`` (default ``ceil(N^(1/3))``).
    """
    check_choice(norm, "norm", _NORMS)
    conf, q = _confidence_and_q(probs, true_posterior)
    return true_calibration_from_scores(conf, q, n_bins=n_bins, norm=norm)


def true_calibration_error(
    probs: Any, true_posterior: Any, *, norm: int = 1, n_bins: int | None = None
) -> torch.Tensor:
    """``TCE = (E |E[Q | C] - C|^norm)^(1/norm)``, the calibration error of the confidence (module docstring).

    Args:
        probs: ``[N, K]`` model probabilities.
        true_posterior: ``[N, K]`` known ``q(k | x)``.
        norm: 1 (default, the quantity the ECE estimates) or 2 (the debiased L2 ECE's).
        n_bins: equal-mass bins of the estimator of ``E[Q | C]``; default ``ceil(N^(1/3))``.
    """
    return true_calibration_decomposition(probs, true_posterior, norm=norm, n_bins=n_bins)["true_ece"]


def pointwise_calibration_error(probs: Any, true_posterior: Any, *, norm: int = 1) -> torch.Tensor:
    """``PCE = (mean_i |q(yhat_i | x_i) - conf_i|^norm)^(1/norm)``: each prediction against its true probability.

    Not a calibration error: it adds the grouping loss to :func:`true_calibration_error` (module docstring).
    """
    check_choice(norm, "norm", _NORMS)
    conf, q = _confidence_and_q(probs, true_posterior)
    g = q - conf
    return g.abs().mean() if norm == 1 else g.square().mean().sqrt()


# -- dense binary maps ------------------------------------------------------------------------------------------


def _flat_dense(x: Any, name: str, device: Any = None) -> torch.Tensor:
    t = as_tensor(x, name, device=device)
    if not t.is_floating_point():
        raise TypeError(f"{name}: expected floating-point probabilities, got dtype {t.dtype}")
    if t.ndim < 2:
        raise ValueError(f"{name}: expected shape [N, 1, *spatial] or [N, *spatial], got shape {tuple(t.shape)}")
    return t


def prepare_dense_posterior(
    probs: Any,
    true_posterior: Any,
    *,
    valid_mask: Any = None,
    from_logits: bool = False,
    validate_args: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(C [M], Q [M])`` float64 of the valid pixels of foreground maps ``s`` and true posteriors ``t``.

    ``probs`` and ``true_posterior``: ``[N, 1, *spatial]`` or ``[N, *spatial]`` (a channel dim of 1 on either side
    is dropped before the shapes are compared); ``valid_mask`` bool, the shape of either. Convention of
    :mod:`caltrain.metrics.dense`: yhat = 1[s >= 0.5], C = max(s, 1 - s), Q = t if yhat = 1 else 1 - t.
    """
    s = _flat_dense(probs, "probs")
    t = _flat_dense(true_posterior, "true_posterior", device=s.device)
    shape_s = s.shape[:1] + s.shape[2:] if s.ndim >= 3 and s.shape[1] == 1 else s.shape
    shape_t = t.shape[:1] + t.shape[2:] if t.ndim >= 3 and t.shape[1] == 1 else t.shape
    if shape_s != shape_t:
        raise ValueError(
            f"true_posterior: expected the shape of probs {list(s.shape)} (a channel dim of 1 optional), "
            f"got {list(t.shape)}"
        )
    s, t = s.reshape(-1), t.reshape(-1)
    if s.numel() == 0:
        raise ValueError(f"probs: expected at least one pixel, got an empty input of shape {list(shape_s)}")
    if valid_mask is not None:
        m = as_tensor(valid_mask, "valid_mask", device=s.device)
        if m.dtype != torch.bool:
            raise TypeError(f"valid_mask: expected a bool tensor (True = evaluate), got dtype {m.dtype}")
        shape_m = m.shape[:1] + m.shape[2:] if m.ndim >= 3 and m.shape[1] == 1 else m.shape
        if shape_m != shape_s:
            raise ValueError(f"valid_mask: expected the shape {list(shape_s)} of the maps, got {list(m.shape)}")
        m = m.reshape(-1)
        s, t = s[m], t[m]
        if s.numel() == 0:
            raise ValueError("valid_mask: no valid pixel; nothing to evaluate")
    if validate_args:
        for value, name in ((s, "probs"), (t, "true_posterior")):
            check_finite(value, name)
            lo, hi = (float(v) for v in torch.aminmax(value))
            if (lo < 0 or hi > 1) and not (from_logits and name == "probs"):
                hint = " (if these are logits, pass from_logits=True)" if name == "probs" else ""
                raise ValueError(f"{name}: expected probabilities in [0, 1], got values in [{lo:.4g}, {hi:.4g}]{hint}")
    s = torch.sigmoid(s.to(torch.float64)) if from_logits else s.to(torch.float64)
    t = t.to(torch.float64)
    fg = s >= 0.5
    return torch.where(fg, s, 1 - s), torch.where(fg, t, 1 - t)


def _dense_uniform_state(conf: torch.Tensor, q: torch.Tensor, n_bins: int) -> dict[str, torch.Tensor]:
    """Float64 sums over ``n_bins`` equal-width bins ``(lo, hi]`` of ``C`` on [0.5, 1] (bin of ``2C - 1``)."""
    index = uniform_bin_index(2 * conf - 1, n_bins)  # 2C - 1 is exact in float64 for C in [0.5, 1]
    g = q - conf
    return {
        "count": torch.bincount(index, minlength=n_bins).to(torch.float64),
        "gap_sum": torch.bincount(index, weights=g, minlength=n_bins),
        "abs_sum": g.abs().sum(),
        "sq_sum": g.square().sum(),
    }


def _dense_from_state(state: dict[str, torch.Tensor], norm: int) -> dict[str, float]:
    count, gap = state["count"], state["gap_sum"]
    n = count.sum()
    if norm == 1:
        true, point = gap.abs().sum() / n, state["abs_sum"] / n
        grouping = point - true
    else:
        true2, point2 = (gap.square() / count.clamp(min=1)).sum() / n, state["sq_sum"] / n
        true, point, grouping = true2.sqrt(), point2.sqrt(), point2 - true2
    return _as_floats(true, point, grouping, n)


def _as_floats(true: torch.Tensor, point: torch.Tensor, grouping: torch.Tensor, n: torch.Tensor) -> dict[str, float]:
    """The dict of :data:`DENSE_TRUE_KEYS` as Python floats (one device-to-host copy)."""
    values = torch.stack([true, point, grouping.clamp(min=0), n.to(torch.float64)]).cpu().tolist()
    return dict(zip(DENSE_TRUE_KEYS, values))


def dense_true_calibration_error(
    probs: Any,
    true_posterior: Any,
    *,
    valid_mask: Any = None,
    norm: int = 1,
    n_bins: int | None = None,
    binning: str = "quantile",
    from_logits: bool = False,
    validate_args: bool = True,
) -> dict[str, float]:
    """True calibration error, pointwise error and grouping loss of dense binary maps, pooled over every valid pixel.

    Per pixel (the convention of :mod:`caltrain.metrics.dense`): yhat = 1[s >= 0.5], C = max(s, 1 - s),
    Q = t if yhat = 1 else 1 - t, with s the predicted and t the true foreground probability. Returns
    :data:`DENSE_TRUE_KEYS` as Python floats: the module docstring's ``true_ece`` (``E |E[Q | C] - C|``),
    ``pointwise_ce`` (``E |Q - C|``), ``grouping_loss`` (``pointwise_ce - true_ece`` >= 0; with ``norm=2`` the
    difference of squares, Perez-Lebel et al.'s Brier grouping loss) and ``n`` (valid pixels).

    Args:
        probs: ``[N, 1, *spatial]`` or ``[N, *spatial]`` foreground probabilities s (logits with ``from_logits``).
        true_posterior: the same shape (a channel dim of 1 optional), t = P(y = 1 | x) per pixel.
        valid_mask: optional bool map, the shape of the maps; only ``True`` pixels count.
        norm: 1 (default) or 2.
        n_bins: bins of the estimator of E[Q | C]; default ``ceil(M^(1/3))`` for ``"quantile"`` (M valid pixels),
            :data:`DENSE_TRUE_BINS` (100) for ``"uniform"``.
        binning: ``"quantile"`` (default: equal-mass bins, the estimator of :func:`true_calibration_error`; keeps
            and sorts every valid pixel, about 50 bytes a pixel) or ``"uniform"`` (equal-width bins of C over
            [0.5, 1], O(n_bins) memory; what :class:`DenseTrueCalibration` streams, same result).
        from_logits: ``probs`` are logits (float64 sigmoid).
        validate_args: check values (finite, in [0, 1]); shapes are always checked.

    Example:
        >>> import torch
        >>> t = torch.tensor([[[[0.9, 0.2], [0.7, 0.4]]]])       # [N=1, 1, H=2, W=2] true P(y = 1 | x)
        >>> dense_true_calibration_error(t, t)                   # the true posterior is calibrated
        {'true_ece': 0.0, 'pointwise_ce': 0.0, 'grouping_loss': 0.0, 'n': 4.0}
        >>> s = torch.full_like(t, 0.99)                         # sure of foreground everywhere
        >>> {k: round(v, 4) for k, v in dense_true_calibration_error(s, t, n_bins=1).items()}
        {'true_ece': 0.44, 'pointwise_ce': 0.44, 'grouping_loss': 0.0, 'n': 4.0}
    """
    check_choice(norm, "norm", _NORMS)
    check_choice(binning, "binning", _BINNINGS)
    if n_bins is not None:
        n_bins = check_n_bins(n_bins)
    conf, q = prepare_dense_posterior(
        probs, true_posterior, valid_mask=valid_mask, from_logits=from_logits, validate_args=validate_args
    )
    if binning == "uniform":
        state = _dense_uniform_state(conf, q, DENSE_TRUE_BINS if n_bins is None else n_bins)
        return _dense_from_state(state, norm)
    out = true_calibration_from_scores(conf, q, n_bins=n_bins, norm=norm)
    n = torch.tensor(float(conf.numel()), dtype=torch.float64, device=conf.device)
    return _as_floats(out["true_ece"], out["pointwise_ce"], out["grouping_loss"], n)


class DenseTrueCalibration(StreamingMetric):
    """Streaming :func:`dense_true_calibration_error` with ``binning="uniform"``: ``update(probs, true_posterior,
    valid_mask=None)`` per batch, ``compute()`` the dict of every pixel seen (all processes).

    Holds ``2 * n_bins + 2`` float64 sums (per bin of C over [0.5, 1]: count and sum of Q - C; in total: sums of
    |Q - C| and (Q - C)^2), so memory does not grow with the dataset; ``compute()`` equals the function on the
    concatenation of every batch with the same ``n_bins`` and ``binning="uniform"``. Fixed bins are the price of
    streaming: equal-mass bins need every pixel. ``merge`` and the ``all_reduce`` in ``compute()`` follow
    :class:`caltrain.metrics.streaming.StreamingMetric` (``ignore_index`` does not apply: pass ``valid_mask``).

    Example:
        >>> import torch
        >>> metric = DenseTrueCalibration()
        >>> s = torch.tensor([[[0.9, 0.8]]]); t = torch.tensor([[[0.7, 0.8]]])
        >>> metric.update(s, t); round(metric.compute()["true_ece"], 6)
        0.1
    """

    def __init__(self, n_bins: int = DENSE_TRUE_BINS, *, norm: int = 1, **kwargs: Any) -> None:
        self.n_bins = check_n_bins(n_bins)
        self.norm = check_choice(norm, "norm", _NORMS)
        if kwargs.get("ignore_index") is not None:
            raise ValueError("ignore_index: DenseTrueCalibration has no labels; pass valid_mask= to update()")
        super().__init__(**kwargs)

    def update(self, probs: Any, true_posterior: Any, valid_mask: Any = None) -> None:  # type: ignore[override]
        """Add one batch of maps ``[B, 1, *spatial]`` / ``[B, *spatial]`` and their true posteriors."""
        conf, q = prepare_dense_posterior(
            probs, true_posterior, valid_mask=valid_mask, from_logits=self.from_logits,
            validate_args=self.validate_args,
        )
        for name, value in _dense_uniform_state(conf, q, self.n_bins).items():
            old = self._state.get(name)
            self._state[name] = value if old is None else old + value

    def _finalize(self, state: dict[str, torch.Tensor]) -> dict[str, float]:
        return _dense_from_state(state, self.norm)
