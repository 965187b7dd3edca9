"""Robust margins: the worst logit margin within an L-infinity ball around each input, by PGD.

    m_eps(x, y) = min_{||delta||_inf <= eps, x + delta in [lo, hi]} m(x + delta, y),
    m(x, y) = z_y(x) - max_{j != y} z_j(x),

and its tail Q_eps = mean exp(-m_eps), the "robust-margin tail" that CalMO's objective targets
(Morosini et al., arXiv 2604.20614;
docs/methods.md#calmo-and-the-calibration-curvature-link).

The minimum is approximated by projected gradient descent on the margin itself (Madry et al. 2018,
arXiv 1706.06083, with the margin as the attacked quantity, as in the C&W margin loss):
x' <- clip(x' - alpha * sign(grad_x' m), [x - eps, x + eps] intersected with ``bounds``), the projected step of
:mod:`caltrain.losses.pgd` (shared with CalMO's attack, which ascends the cross-entropy instead).
All samples move at once (the summed margin's input gradient is each sample's own gradient in eval
mode). The result is the smallest margin met along the path, start included, so m_eps <= m always.

Reading: the paper's PGD (3 steps of 2/255 from x, maximising the cross-entropy, eps = 8/255) serves its
training objective; for measurement we minimise the margin directly, start at x as they do, and default to
10 steps so the attack can reach the boundary of the ball (steps * step_size = 20/255 >= eps). ``bounds``
defaults to None (no clamping) because caltrain's datasets may be standardised; pass ``bounds=(0, 1)``
for inputs in [0, 1] pixel space.
"""

from __future__ import annotations

import torch
from torch import nn

from caltrain.analysis.evaluation_set import check_class_labels, evaluation_set
from caltrain.analysis.functional_model import FunctionalModel
from caltrain.analysis.margins import MarginTail, margin_tail_from_margins
from caltrain.losses._tensors import logit_margins
from caltrain.losses.pgd import check_bounds, feasible_box, signed_step
from caltrain.utils.checks import check_number, check_positive_int
from caltrain.utils.modules import eval_mode

__all__ = ["robust_margin_tail", "robust_margins"]


def robust_margins(
    model: nn.Module,
    inputs,
    labels,
    *,
    eps: float = 8 / 255,
    step_size: float = 2 / 255,
    steps: int = 10,
    bounds: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Per-sample worst margins within the L-inf ball of radius ``eps``, by ``steps`` PGD steps.

    Args:
        model: a classifier mapping inputs [N, ...] to logits [N, K]; run in eval mode, left in its mode,
            parameters and ``.grad`` untouched.
        inputs: x, floating point [N, ...] (moved to the model's device).
        labels: y, [N] integer class indices in [0, K).
        eps: the L-inf radius, >= 0 (default 8/255, CalMO's; eps = 0 gives the clean margins).
        step_size: alpha, the signed-gradient step, > 0 (default 2/255).
        steps: the number of PGD steps, >= 0 (default 10; 0 gives the clean margins).
        bounds: (lo, hi) to clamp x + delta into, or None (default) for no clamping.

    Returns:
        m_eps, shape [N], detached, in the model's output dtype; m_eps <= m(x, y) elementwise.

    Cost: ``steps`` forward and backward passes plus one forward over the N inputs.

    Example:
        >>> net = torch.nn.Linear(2, 2)
        >>> x, y = torch.randn(8, 2), torch.randint(0, 2, (8,))
        >>> bool((robust_margins(net, x, y, eps=0.1) <= robust_margins(net, x, y, eps=0.0)).all())
        True
    """
    if labels is None:
        raise ValueError("labels: robust margins need the class labels [N], got None")
    eps = check_number(eps, "eps", low=0.0)
    step_size = check_number(step_size, "step_size", low=0.0, low_inclusive=False)
    steps = check_positive_int(steps, "steps", minimum=0)
    x, y = evaluation_set(inputs, labels, device=FunctionalModel(model).device)
    if not x.is_floating_point():
        raise TypeError(f"inputs: expected floating-point inputs to perturb, got dtype {x.dtype}")
    x = x.detach()
    lo, hi = feasible_box(x, eps, check_bounds(bounds))
    x_adv = x.clone()
    with eval_mode(model), torch.enable_grad():
        for step in range(steps + 1):
            x_adv.requires_grad_(step < steps)
            logits = model(x_adv)
            if step == 0:
                check_class_labels(y, logits)
            m = logit_margins(logits, y)
            worst = m.detach() if step == 0 else torch.minimum(worst, m.detach())
            if step < steps:
                x_adv = signed_step(x_adv, m.sum(), -step_size, lo, hi)
    return worst


def robust_margin_tail(model: nn.Module, inputs, labels, **pgd) -> MarginTail:
    """Q_eps = mean exp(-m_eps) of the robust margins (float64, log space); ``pgd``: see :func:`robust_margins`.

    Since m_eps <= m, Q_eps >= Q (the clean tail).

    Example:
        >>> net = torch.nn.Linear(2, 2)
        >>> x, y = torch.randn(8, 2), torch.randint(0, 2, (8,))
        >>> bool(robust_margin_tail(net, x, y, eps=0.1).log_q >= robust_margin_tail(net, x, y, eps=0.0).log_q)
        True
    """
    return margin_tail_from_margins(robust_margins(model, inputs, labels, **pgd))
