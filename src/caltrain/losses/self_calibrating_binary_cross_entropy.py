"""``sc_bce``: the Self-Calibrating Binary Cross-Entropy (stochastic label perturbation), and its presets.

Dense binary: one logit z per pixel, s = σ(z), ground truth y ∈ [0, 1]. With the label perturbation
p(y; β) = (1 − 2β)·y + β, every image i of the batch draws *one* Z_i ~ Bernoulli(α_i) and is trained against

    t_i = Z_i · p(y_i; β) + (1 − Z_i) · y_i,        SC-BCE = mean over all pixels of the batch of BCE(z, t),

targets not clipped (β > 1/2 sends them outside [0, 1]; BCE with logits is still defined), no gradient through
t or α. In expectation over Z, SC-BCE is BCE against (1 − 2αβ)·y + αβ. Presets (same class):

- ``bce_ls``: α = 1, β = ε/2: label smoothing of the binary targets, y → (1 − ε)·y + ε/2 (deterministic);
- ``disturb_label``: β = 1: binary DisturbLabel, each image's mask inverted (y → 1 − y) with probability α.

Paper: Liu et al., "Model Calibration in Dense Classification with Adaptive Label Perturbation", ICCV 2023,
arXiv 2307.13539; authors' code Carlisle-Liu/ASLP (``perturbance.py``, ``stochastic_label_perturbation``).
Per-image adaptive α: :mod:`caltrain.losses.adaptive_stochastic_label_perturbation`.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from caltrain.losses._tensors import prepare_dense_binary
from caltrain.losses.base import DenseBinaryObjective, reduce_loss
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = [
    "PAPER", "SelfCalibratingBCE", "SelfCalibratingBinaryCrossEntropy", "bce_ls", "disturb_label",
    "perturbation_draws", "sc_bce", "truncated_normal_noise",
]

PAPER = (
    "Liu et al., Model Calibration in Dense Classification with Adaptive Label Perturbation; ICCV 2023, "
    "arXiv 2307.13539"
)
#: The authors' truncation interval of the optional label noise (``perturbance.py``).
NOISE_BOUND = 0.25


def truncated_normal_noise(
    shape: tuple[int, ...], std: float, *, generator: torch.Generator | None, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Noise N(0, std²) truncated to [−0.25, 0.25], by inverse CDF of one uniform draw per value (so a
    ``generator`` makes it reproducible). The authors' ``perturb_noise=True`` is ``std = 1``
    (``torch.nn.init.trunc_normal_(e, mean=0, std=1, a=-0.25, b=0.25)``)."""
    gen_device = generator.device if generator is not None else device
    u = torch.rand(shape, generator=generator, device=gen_device, dtype=torch.float64).to(device)
    half = torch.special.ndtr(torch.tensor(NOISE_BOUND / std, dtype=torch.float64, device=device))
    lo, hi = 1.0 - half, half  # Φ(−b/σ), Φ(b/σ)
    e = std * torch.special.ndtri(lo + (hi - lo) * u)
    return e.clamp(-NOISE_BOUND, NOISE_BOUND).to(dtype)


def perturbation_draws(
    alpha: float | torch.Tensor, n: int, *, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """Z [N] bool: image i is perturbed when u_i < α_i, u_i ~ U[0, 1) (one draw per image, as the authors'
    ``prob < alpha``); α = 1 perturbs every image, α = 0 none."""
    gen_device = generator.device if generator is not None else device
    u = torch.rand(n, generator=generator, device=gen_device, dtype=torch.float64).to(device)
    if isinstance(alpha, torch.Tensor):
        return u < alpha.detach().to(device=device, dtype=torch.float64)
    return u < alpha


def _check_alpha(alpha: float | torch.Tensor, n: int) -> float | torch.Tensor:
    if isinstance(alpha, torch.Tensor):
        if alpha.dim() == 0:
            return alpha.detach()
        if alpha.shape != (n,) or not (alpha.is_floating_point() or alpha.dtype == torch.bool):
            raise ValueError(
                f"alpha: expected a number in [0, 1] or a real tensor [{n}] (one probability per image), got "
                f"shape {tuple(alpha.shape)} and dtype {alpha.dtype}"
            )
        return alpha.detach()
    return check_number(alpha, "alpha", low=0.0, high=1.0)


def sc_bce(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    alpha: float | torch.Tensor,
    beta: float,
    generator: torch.Generator | None = None,
    noise_std: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Self-Calibrating BCE: BCE with logits against per-image stochastically perturbed targets.

    t_i = Z_i·((1 − 2β)·y_i + β + e_i) + (1 − Z_i)·y_i with Z_i ~ Bernoulli(α_i) drawn once per image and e_i the
    optional per-pixel noise (N(0, noise_std²) truncated to [−0.25, 0.25], on perturbed images only; 0 = off,
    the authors' ``perturb_noise=True`` is noise_std = 1); the loss is the mean of BCE_with_logits(z, t) over
    all pixels of the batch. t and α carry no gradient; targets are not clipped.

    Args:
        logits: z, floating point [N, 1, H, W] or [N, H, W].
        targets: y, the same shape (with or without the channel axis), values in [0, 1].
        alpha: the perturbation probability: a number in [0, 1], or a tensor [N] (one per image; values are
            used as given: ≤ 0 never, ≥ 1 always perturbs).
        beta: the perturbation strength β ≥ 0 (β = ε/2 with α = 1 is label smoothing ε; β = 1 inverts the mask).
        generator: the random generator of the draws (default: torch's global one).
        noise_std: std of the truncated-normal label noise, ≥ 0 (default 0: no noise).
        reduction: "mean" (all pixels of the batch), "none" (per image [N], the mean over its pixels) or "sum".

    Example:
        >>> z, y = torch.randn(3, 1, 4, 4), (torch.rand(3, 1, 4, 4) > 0.5).float()
        >>> from caltrain.losses.binary_cross_entropy import bce
        >>> bool(torch.isclose(sc_bce(z, y, alpha=0.0, beta=2.0), bce(z, y)))
        True
    """
    z, y = prepare_dense_binary(logits, targets, reduction)
    n = z.shape[0]
    a = _check_alpha(alpha, n)
    b = check_number(beta, "beta", low=0.0)
    std = check_number(noise_std, "noise_std", low=0.0)
    perturbed = (1.0 - 2.0 * b) * y + b
    if std > 0.0:
        perturbed = perturbed + truncated_normal_noise(
            tuple(y.shape), std, generator=generator, device=y.device, dtype=y.dtype
        )
    draws = perturbation_draws(a, n, generator=generator, device=y.device)
    t = torch.where(draws[:, None], perturbed, y)
    per_image = F.binary_cross_entropy_with_logits(z, t, reduction="none").mean(dim=1)
    return reduce_loss(per_image, reduction)


@register("sc_bce")
class SelfCalibratingBinaryCrossEntropy(DenseBinaryObjective):
    """Self-Calibrating BCE with a fixed perturbation probability α and strength β (:func:`sc_bce`).

    The draws use torch's global generator (the trainer seeds it), or ``self.generator`` when set.

    Args:
        num_classes: 2 (kept for the record; see :class:`~caltrain.losses.base.DenseBinaryObjective`).
        alpha: α ∈ [0, 1], the probability that an image's label is perturbed (default 0.5).
        beta: β ≥ 0, the perturbation strength (default 2, the authors').
        noise_std: std of the optional truncated-normal label noise (default 0: off).
        reduction: "mean" (default), "sum" or "none" ([N], per image).

    Example:
        >>> objective = SelfCalibratingBinaryCrossEntropy(alpha=1.0, beta=0.05)  # = label smoothing 0.1
        >>> z, y = torch.zeros(2, 1, 3, 3), torch.ones(2, 1, 3, 3)
        >>> bool(torch.isclose(objective(z, y), torch.log(torch.tensor(2.0))))
        True
    """

    paper: ClassVar[str] = PAPER
    generator: torch.Generator | None = None

    def __init__(
        self,
        *,
        num_classes: int = 2,
        alpha: float = 0.5,
        beta: float = 2.0,
        noise_std: float = 0.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.alpha = check_number(alpha, "alpha", low=0.0, high=1.0)
        self.beta = check_number(beta, "beta", low=0.0)
        self.noise_std = check_number(noise_std, "noise_std", low=0.0)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """SC-BCE of ``logits`` [N, 1, H, W] against the targets ``labels`` of the same shape."""
        return sc_bce(
            logits, labels, alpha=self.alpha, beta=self.beta, generator=self.generator,
            noise_std=self.noise_std, reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, beta={self.beta}, noise_std={self.noise_std}, reduction={self.reduction!r}"
        )


@register("bce_ls")
def bce_ls(
    *, num_classes: int = 2, smoothing: float = 0.1, reduction: str = "mean"
) -> SelfCalibratingBinaryCrossEntropy:
    """Binary label smoothing as the SC-BCE preset α = 1, β = ε/2: BCE against (1 − ε)·y + ε/2.

    Args:
        smoothing: ε ∈ [0, 1] (default 0.1).
    """
    eps = check_number(smoothing, "smoothing", low=0.0, high=1.0)
    return SelfCalibratingBinaryCrossEntropy(num_classes=num_classes, alpha=1.0, beta=eps / 2.0, reduction=reduction)


@register("disturb_label")
def disturb_label(
    *, num_classes: int = 2, alpha: float = 0.1, reduction: str = "mean"
) -> SelfCalibratingBinaryCrossEntropy:
    """Binary DisturbLabel (Xie et al., CVPR 2016, arXiv 1605.00055) as the SC-BCE preset β = 1: each image's
    mask is inverted (y → 1 − y) with probability α.

    Args:
        alpha: α ∈ [0, 1], the probability of inverting an image's mask (default 0.1).
    """
    return SelfCalibratingBinaryCrossEntropy(num_classes=num_classes, alpha=alpha, beta=1.0, reduction=reduction)


bce_ls.tasks = disturb_label.tasks = SelfCalibratingBinaryCrossEntropy.tasks  # losses.tasks() reads it unbuilt

#: Short class name (the brief's spelling), kept as an alias.
SelfCalibratingBCE = SelfCalibratingBinaryCrossEntropy
