"""``calmo``: CalMO, cross-entropy plus an adversarial-consistency term and an input-gradient penalty on the margin.

Notation: x the batch's inputs [n, ...], z = f(x) the logits [n, K], y = labels [n], p = softmax(z),
m(x, y) = z_y − max_{j≠y} z_j the logit margin (:func:`logit_margins`), x_adv the PGD point
(:mod:`caltrain.losses.pgd`); the math, defaults and readings are in :class:`CalMO`. Reading: the paper names the
method only by its acronym, so the file and the class carry it. The registry also holds the ablations
``calmo_flat`` and ``calmo_robust`` (factories below).

Morosini et al., "Too Sharp, Too Sure: the calibration-curvature link" (CalMO), arXiv 2604.20614
(docs/methods.md#calmo-and-the-calibration-curvature-link). The objective targets the tail of the (robust) logit margin, which bounds the ECE.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from caltrain.losses._tensors import check_logits_labels, compute_dtype, gather_true, logit_margins
from caltrain.losses.base import Objective, reduce_loss
from caltrain.losses.pgd import pgd_attack
from caltrain.losses.registry import register
from caltrain.utils.checks import check_choice, check_number, check_positive_int

__all__ = ["CalMO", "CalMOLoss", "calmo", "calmo_flat", "calmo_robust", "logit_margins"]


@register("calmo")
class CalMO(Objective):
    """CalMO: L = CE(x, y) + lambda_r KL( p(x) || p(x_adv) ) + lambda_s ||grad_x m(x, y)||^2.

    For a batch of n samples with logits z = f(x) [n, K], p = softmax(z), per sample i

        CE_i   = -log p_{i, y_i},
        KL_i   = sum_k p_k(x_i) [ log p_k(x_i) - log p_k(x_adv_i) ],
        S_i    = || d m(x_i, y_i) / d x_i ||_2^2,        m(x, y) = z_y - max_{j != y} z_j,
        L      = (1/n) sum_i CE_i + lambda_r KL_i + lambda_s S_i,

    x_adv from :func:`~caltrain.losses.pgd.pgd_attack`: ``steps`` PGD steps maximising CE(f(x'), y) in the
    L-inf ball of radius ``epsilon`` (step ``step_size``, start at x, clamped to the valid input range), run
    with the model in eval mode; x_adv carries no gradient, f(x_adv) is evaluated in the model's own mode.
    ``epsilon`` and ``step_size`` are in raw input units (pixels on the [0, 1] scale): the trainer tells the
    objective the loader's standardisation through :meth:`~caltrain.losses.base.Objective.set_input_domain`
    (model-space radius eps / std per channel, valid range [(0 - mean) / std, (1 - mean) / std]); without it the
    inputs are taken as raw and unbounded. The smoothness
    term differentiates the margin w.r.t. the inputs with ``create_graph=True`` (double backpropagation), so
    the inputs must require gradients before the forward pass: the objective declares ``needs_input_grad``
    and the trainer sets it.

    Paper: arXiv 2604.20614. Defaults: lambda_r = 0.5, lambda_s = 0.01, eps = 8/255, step 2/255, 3 steps.
    Ablations: ``calmo_flat`` (lambda_r = 0: no attack, no model needed) and ``calmo_robust`` (lambda_s = 0:
    no input gradients needed).

    Readings (the paper is silent): the KL gradient flows through both p(x) and p(x_adv) (as in TRADES);
    S_i is taken from the gradient of sum_i m_i, which is each sample's own input gradient unless batch
    normalisation in training mode couples the batch (then it includes those small cross-sample terms);
    S_i is measured in raw input units by default (``smoothness_units="raw"``: the gradient w.r.t. the [0, 1]
    pixels, i.e. the model-space gradient divided by the per-channel std, the same units as ``epsilon``);
    ``smoothness_units="model"`` measures it w.r.t. the standardised inputs the model sees (std^2 times weaker on
    CIFAR-like data). Without an input domain from the trainer the two coincide.

    Args:
        num_classes: K.
        lambda_r: weight of the adversarial KL term, >= 0 (default 0.5).
        lambda_s: weight of the margin-gradient penalty, >= 0 (default 0.01).
        epsilon: PGD radius, >= 0 (default 8/255).
        step_size: PGD step, > 0 (default 2/255).
        steps: PGD steps, >= 0 (default 3).
        smoothness_units: "raw" (default) or "model": the input units of the margin gradient (see above).
        reduction: "mean" (default), "sum" or "none".

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
        >>> x = torch.rand(6, 4).requires_grad_(); y = torch.randint(0, 3, (6,))
        >>> loss = CalMO(num_classes=3)
        >>> loss(net(x), y, model=net, inputs=x).ndim
        0
    """

    paper: ClassVar[str] = "Morosini et al.; arXiv 2604.20614"

    def __init__(
        self,
        *,
        num_classes: int,
        lambda_r: float = 0.5,
        lambda_s: float = 0.01,
        epsilon: float = 8 / 255,
        step_size: float = 2 / 255,
        steps: int = 3,
        smoothness_units: str = "raw",
        reduction: str = "mean",
    ) -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.smoothness_units = check_choice(smoothness_units, "smoothness_units", ("raw", "model"))
        self.lambda_r = check_number(lambda_r, "lambda_r", low=0.0)
        self.lambda_s = check_number(lambda_s, "lambda_s", low=0.0)
        self.epsilon = check_number(epsilon, "epsilon", low=0.0)
        self.step_size = check_number(step_size, "step_size", low=0.0, low_inclusive=False)
        self.steps = check_positive_int(steps, "steps", minimum=0)

    @property
    def requires(self) -> frozenset[str]:  # type: ignore[override]
        """``{"model", "inputs"}`` with the adversarial term, ``{"inputs"}`` without it."""
        return frozenset({"model", "inputs"}) if self.lambda_r > 0 else frozenset({"inputs"})

    @property
    def needs_input_grad(self) -> bool:  # type: ignore[override]
        """True when the margin-gradient penalty is on (lambda_s > 0)."""
        return self.lambda_s > 0

    def forward(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        *,
        inputs: torch.Tensor | None = None,
        model: nn.Module | None = None,
    ) -> torch.Tensor:
        """The loss of a batch: ``logits`` = model(inputs) [n, K], ``labels`` [n]; ``inputs`` (and ``model`` when
        lambda_r > 0) are required, None raises ``ValueError`` naming them."""
        labels = check_logits_labels(logits, labels, self.num_classes)
        z = compute_dtype(logits)
        logp = torch.log_softmax(z, dim=1)
        per_sample = -gather_true(logp, labels)
        if self.lambda_r > 0:
            if model is None or inputs is None:
                raise ValueError("model, inputs: calmo's adversarial term needs the model and the batch's inputs")
            x_adv = pgd_attack(
                model, inputs, labels, epsilon=self.epsilon, step_size=self.step_size, steps=self.steps,
                bounds=None if self.input_low is None else (self.input_low, self.input_high), scale=self.input_std,
            )
            logp_adv = torch.log_softmax(compute_dtype(model(x_adv)), dim=1)
            kl = (logp.exp() * (logp - logp_adv)).sum(dim=1)
            per_sample = per_sample + self.lambda_r * kl
        if self.lambda_s > 0:
            if inputs is None or not inputs.requires_grad:
                raise ValueError(
                    "inputs: calmo's margin-gradient penalty needs the inputs the logits were computed from, with "
                    "requires_grad=True set before the forward pass (the objective declares needs_input_grad)"
                )
            margins = logit_margins(z, labels)
            (grad,) = torch.autograd.grad(margins.sum(), inputs, create_graph=True, allow_unused=True)
            if grad is None:
                raise ValueError("inputs: the logits do not depend on these inputs (pass the model's own inputs)")
            if self.smoothness_units == "raw" and self.input_std is not None:
                grad = grad / self.input_std  # d m / d x_raw = (d m / d x_model) / std, per channel
            per_sample = per_sample + self.lambda_s * grad.flatten(1).pow(2).sum(dim=1).to(per_sample.dtype)
        return reduce_loss(per_sample, self.reduction)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, lambda_r={self.lambda_r}, lambda_s={self.lambda_s}, epsilon={self.epsilon:.4g}, "
            f"step_size={self.step_size:.4g}, steps={self.steps}"
        )


@register("calmo_flat")
def calmo_flat(
    *, num_classes: int, lambda_s: float = 0.01, smoothness_units: str = "raw", reduction: str = "mean"
) -> CalMO:
    """CalMO's "flat" ablation: CE + lambda_s ||grad_x m(x, y)||^2 (lambda_r = 0, no attack); see :class:`CalMO`."""
    return CalMO(num_classes=num_classes, lambda_r=0.0, lambda_s=lambda_s, smoothness_units=smoothness_units,
                     reduction=reduction)


@register("calmo_robust")
def calmo_robust(
    *,
    num_classes: int,
    lambda_r: float = 0.5,
    epsilon: float = 8 / 255,
    step_size: float = 2 / 255,
    steps: int = 3,
    reduction: str = "mean",
) -> CalMO:
    """CalMO's "robust" ablation: CE + lambda_r KL(p(x) || p(x_adv)) (lambda_s = 0); see :class:`CalMO`."""
    return CalMO(
        num_classes=num_classes, lambda_r=lambda_r, lambda_s=0.0, epsilon=epsilon, step_size=step_size,
        steps=steps, reduction=reduction,
    )


#: The former class name and factory, kept for existing code.
CalMOLoss = calmo = CalMO
