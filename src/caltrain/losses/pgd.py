"""Projected gradient ascent on the cross-entropy within an L-infinity ball: the attack CalMO trains against.

    x_0 = x,   x_{t+1} = Proj( x_t + a * sign( grad_x CE(f(x_t), y) ) ),   t = 0, ..., T - 1,

where Proj clips to the ball ||x' - x||_inf <= eps and then to the valid input range [lo, hi] (Madry et al.
2018, arXiv 1706.06083; CalMO's setting, Morosini et al., arXiv 2604.20614: T = 3, eps = 8/255, a = 2/255,
start at x, pixels in [0, 1]). Both projections keep the point feasible: clipping into [lo, hi] a point of
the ball around a feasible x stays inside the ball. The step and the box are shared with
:func:`caltrain.analysis.robust_margins`, which descends the logit margin with the same projection.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from caltrain.utils.checks import check_number, check_positive_int
from caltrain.utils.modules import eval_mode as module_eval_mode

__all__ = ["check_bounds", "feasible_box", "pgd_attack", "signed_step"]


def check_bounds(bounds) -> tuple[float | torch.Tensor, float | torch.Tensor] | None:  # noqa: ANN001
    """``None`` or a pair ``(lo, hi)``: numbers with lo < hi, or tensors broadcastable to one input."""
    if bounds is None:
        return None
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise ValueError(f"bounds: expected None or a pair (lo, hi), got {bounds!r}")
    if any(isinstance(b, torch.Tensor) for b in bounds):
        return bounds[0], bounds[1]
    lo = check_number(bounds[0], "bounds[0]")
    hi = check_number(bounds[1], "bounds[1]")
    if not lo < hi:
        raise ValueError(f"bounds: expected lo < hi, got {bounds!r}")
    return lo, hi


def feasible_box(
    x: torch.Tensor, radius: float | torch.Tensor, bounds: tuple[float | torch.Tensor, float | torch.Tensor] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The box [lo, hi] of points within L-inf ``radius`` of ``x`` and inside ``bounds`` (checked by the caller)."""
    lo, hi = x - radius, x + radius
    if bounds is not None:
        lo, hi = torch.maximum(lo, torch.as_tensor(bounds[0], dtype=x.dtype, device=x.device)), torch.minimum(
            hi, torch.as_tensor(bounds[1], dtype=x.dtype, device=x.device)
        )
    return lo, hi


def signed_step(
    point: torch.Tensor, value: torch.Tensor, step: float | torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
) -> torch.Tensor:
    """One projected signed-gradient step: clip(point + step * sign(d value / d point), lo, hi), detached.

    ``point`` requires gradients and ``value`` is a scalar computed from it; a negative ``step`` descends.
    """
    (grad,) = torch.autograd.grad(value, point)
    return torch.minimum(torch.maximum(point.detach() + step * grad.sign(), lo), hi)


def pgd_attack(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    epsilon: float = 8 / 255,
    step_size: float = 2 / 255,
    steps: int = 3,
    bounds: tuple[float | torch.Tensor, float | torch.Tensor] | None = None,
    scale: torch.Tensor | None = None,
    eval_mode: bool = True,
) -> torch.Tensor:
    """L-inf PGD maximising the cross-entropy of ``labels``, from x itself (no random start).

    Args:
        model: maps inputs [N, ...] to logits [N, C] (an ``nn.Module`` or any callable). Its parameters'
            ``.grad`` are not touched (gradients are taken with ``torch.autograd.grad`` w.r.t. the perturbation
            only) and every submodule's train/eval mode is restored on exit.
        inputs: x, floating point [N, ...] (used detached; the result does not depend on x's graph).
        labels: y, [N] integer classes in [0, C).
        epsilon: eps >= 0, the radius in raw input units (default 8/255: CalMO's, for pixels in [0, 1]; see
            ``scale`` for standardised inputs).
        step_size: a > 0 (default 2/255).
        steps: T >= 0 (default 3; 0 returns x).
        bounds: the valid input range (lo, hi) in the model's input units, e.g. (0, 1) for raw pixels, or None
            (default) for no range clamp; lo and hi may be tensors broadcastable to one input (per-channel
            ranges of standardised inputs: ``((0 - mean) / std, (1 - mean) / std)``).
        scale: s, a positive tensor broadcastable to one input, or None (default: 1). ``epsilon`` and
            ``step_size`` are in raw units; the model sees x = (x_raw - mean) / s, so the ball and the step in
            model units are eps / s and a / s per channel.
        eval_mode: run the attack with the model in eval mode (default true: batch-norm statistics are not
            updated by the attack and each sample's perturbation depends on it alone).

    Returns:
        x_adv, detached, same shape and dtype as x, with |x_adv - x| <= eps / s elementwise and x_adv in
        ``bounds`` (for x itself in ``bounds``).

    Example:
        >>> net = torch.nn.Linear(4, 3)
        >>> x = torch.rand(5, 4); y = torch.randint(0, 3, (5,))
        >>> x_adv = pgd_attack(net, x, y, bounds=(0.0, 1.0))
        >>> bool(((x_adv - x).abs() <= 8 / 255 + 1e-7).all()), bool(((x_adv >= 0) & (x_adv <= 1)).all())
        (True, True)
    """
    epsilon = check_number(epsilon, "epsilon", low=0.0)
    step_size = check_number(step_size, "step_size", low=0.0, low_inclusive=False)
    steps = check_positive_int(steps, "steps", minimum=0)
    rng = check_bounds(bounds)
    radius: float | torch.Tensor = epsilon if scale is None else epsilon / scale
    step: float | torch.Tensor = step_size if scale is None else step_size / scale
    if not inputs.is_floating_point():
        raise TypeError(f"inputs: expected floating-point inputs to perturb, got dtype {inputs.dtype}")
    x = inputs.detach()
    x_adv = x.clone()
    if steps == 0 or epsilon == 0.0:
        return x_adv
    lo, hi = feasible_box(x, radius, rng)
    mode = module_eval_mode(model) if eval_mode and isinstance(model, nn.Module) else contextlib.nullcontext()
    with mode, torch.enable_grad():
        for _ in range(steps):
            x_adv.requires_grad_(True)
            x_adv = signed_step(x_adv, F.cross_entropy(model(x_adv), labels, reduction="sum"), step, lo, hi)
    return x_adv.detach()
