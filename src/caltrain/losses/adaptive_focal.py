"""``adafocal``: adaptive focal loss (AdaFocal), gamma adapted per confidence bin from the validation calibration gap.

Notation: z = logits [n, K] (n samples, K classes), y = labels [n] in [0, K), p = softmax(z), p_{i,y} the
true-class probability, M the number of bins, g_b the gamma of bin b; the math of the loss is in
:func:`adafocal_loss`, that of the per-epoch update in :func:`adafocal_update`, defaults and readings in
:class:`AdaptiveFocal`.

Ghosh, Schaaf, Gormley, "AdaFocal: Calibration-aware Adaptive Focal Loss", NeurIPS 2022, arXiv 2211.11838.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from caltrain.losses._tensors import check_logits_labels, compute_dtype, gather_true, log_one_minus_true
from caltrain.losses.base import Objective, reduce_loss
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number, check_positive_int

__all__ = ["AdaFocalLoss", "AdaptiveFocal", "adafocal_loss", "adafocal_update"]


def adafocal_loss(
    logits: torch.Tensor, labels: torch.Tensor, gammas: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    """Focal / inverse-focal loss with one gamma per sample.

        L_i = -(1 - p_{i,y})^{g_i} log p_{i,y}     where g_i >= 0 (focal; the factor in log space),
        L_i = -(1 + p_{i,y})^{|g_i|} log p_{i,y}   where g_i < 0  (inverse focal),

    p = softmax(z). Gradients flow through the factor (as in the authors' code); ``gammas`` carry none.

    Args:
        logits: z, [N, K]; labels: y, [N]; gammas: g, [N] (detached);
        reduction: "mean" (default), "sum" or "none" ([N]).

    Example:
        >>> z, y = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
        >>> bool(torch.isclose(adafocal_loss(z, y, torch.zeros(1)), torch.nn.functional.cross_entropy(z, y)))
        True
    """
    z = compute_dtype(logits)
    logp_y = gather_true(torch.log_softmax(z, dim=1), labels)
    g = gammas.to(z.dtype)
    mag = g.abs()
    log_factor = torch.where(g >= 0, log_one_minus_true(z, labels), torch.log1p(logp_y.exp()))
    per_sample = -torch.exp(mag * log_factor) * logp_y
    return reduce_loss(per_sample, reduction)


@torch.no_grad()
def adafocal_update(
    gammas: torch.Tensor,
    val_logits: torch.Tensor,
    val_labels: torch.Tensor,
    *,
    lam: float = 1.0,
    switch_pt: float = 0.2,
    gamma_min: float = -2.0,
    gamma_max: float = 20.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One AdaFocal update from validation logits: new per-bin gammas and new bin edges.

    The validation samples are sorted by top-label confidence c = max_k softmax(z)_k and split into M
    equal-mass bins (M = len(gammas); sizes differ by at most one). In bin b, with mean confidence C_b and
    accuracy A_b (argmax == label), the gap is E_b = C_b - A_b and

        g_b' = g_b * exp( lam * E_b)     if g_b > 0,      g_b' = g_b * exp(-lam * E_b)     otherwise,
        if |g_b'| < switch_pt: g_b' = -switch_pt if g_b' > 0 else +switch_pt   (focal <-> inverse focal),
        g_b  <- clip(g_b', gamma_min, gamma_max).

    An empty bin (fewer validation samples than bins) keeps its gamma. The new bin edges are
    e_0 = 0 < e_1 <= ... <= e_{M-1} < e_M = 1 with e_b the smallest confidence in bin b (b >= 1): a training
    sample falls in bin b when e_b <= p_y < e_{b+1} (the first and last bins catch everything below / above).

    Args:
        gammas: g, [M] the current per-bin gammas.
        val_logits: [N, K] validation logits; val_labels: [N].
        lam: the update rate lambda > 0 (default 1).
        switch_pt: S_th >= 0, the magnitude below which gamma switches sign (default 0.2; 0 never switches).
        gamma_min, gamma_max: the clipping range (defaults -2 and 20).

    Returns:
        (new gammas [M], new edges [M + 1]), float64 on the device of ``gammas``.
    """
    g = gammas.to(torch.float64)
    m = g.shape[0]
    probs = torch.softmax(val_logits.to(g.device, torch.float64), dim=1)
    conf, pred = probs.max(dim=1)
    correct = (pred == val_labels.to(g.device)).to(torch.float64)
    order = torch.argsort(conf)
    conf, correct = conf[order], correct[order]
    n = conf.shape[0]
    # equal-mass bins: bin b holds sorted positions [floor(b n / M), floor((b+1) n / M))
    cuts = (torch.arange(m + 1, device=g.device) * n) // m
    bin_of = torch.bucketize(torch.arange(n, device=g.device), cuts[1:], right=True)
    count = torch.zeros(m, dtype=torch.float64, device=g.device).index_add_(0, bin_of, torch.ones_like(conf))
    sum_conf = torch.zeros_like(count).index_add_(0, bin_of, conf)
    sum_acc = torch.zeros_like(count).index_add_(0, bin_of, correct)
    nonempty = count > 0
    gap = torch.where(nonempty, (sum_conf - sum_acc) / count.clamp(min=1), 0.0)
    new = torch.where(g > 0, g * torch.exp(lam * gap), g * torch.exp(-lam * gap))
    small = new.abs() < switch_pt
    new = torch.where(small, torch.where(new > 0, -switch_pt, switch_pt), new).to(torch.float64)
    new = torch.where(nonempty, new.clamp(gamma_min, gamma_max), g)
    first_conf = torch.where(nonempty, conf[cuts[:-1].clamp(max=n - 1)], torch.nan)  # smallest conf of each bin
    # an empty bin takes the edge of the next non-empty one (cummin from the right over NaN -> 1)
    first_conf = torch.where(torch.isnan(first_conf), 1.0, first_conf)
    first_conf = torch.flip(torch.cummin(torch.flip(first_conf, [0]), 0).values, [0])
    edges = torch.cat([g.new_zeros(1), first_conf[1:], g.new_ones(1)])
    return new, edges


@register("adafocal")
class AdaptiveFocal(Objective):
    """AdaFocal: focal loss with a gamma per confidence bin, updated once per epoch from validation.

    Training loss: :func:`adafocal_loss` with g_i = gamma of the bin of p_{i,y} (the detached true-class
    probability, as in the authors' code), bins from the ``edges`` buffer. After every epoch
    :func:`adafocal_update` recomputes the per-bin gammas from the validation calibration gaps of M equal-mass
    bins of top-label confidence (gamma grows where the model is over-confident, falls and switches to the
    inverse focal loss where it is under-confident) and takes the new bin edges from the validation
    confidences. Before the first update the bins are M equal-width bins on [0, 1] and every gamma is
    ``gamma_initial``.

    Paper: arXiv 2211.11838 (NeurIPS 2022). Defaults as in the authors' code and paper: M = 15 bins, lambda = 1,
    gamma_initial = 1, S_th = 0.2, gamma_max = 20; gamma_min = -2 (reading: the paper bounds the inverse-focal
    side more tightly than the focal one; set it with the run). docs/methods.md 2 states the focal-only update
    min(gamma_max, gamma exp(C_b - A_b)): ``switch_pt=0, gamma_min=0`` gives it. Reading: bins with no
    validation sample keep their gamma; the update uses every validation sample at once (float64).

    Args:
        num_classes: K.
        num_bins: M >= 1 (default 15).
        lam: update rate lambda > 0 (default 1).
        gamma_initial: the starting gamma (default 1).
        switch_pt: S_th >= 0 (default 0.2).
        gamma_min, gamma_max: clipping range, gamma_min <= gamma_initial <= gamma_max (defaults -2, 20).
        reduction: "mean" (default), "sum" or "none".

    Example:
        >>> loss = AdaptiveFocal(num_classes=3, num_bins=2)
        >>> loss.on_epoch_end(0, val_logits=torch.randn(8, 3), val_labels=torch.randint(0, 3, (8,)))
        >>> loss.gammas.shape, loss.edges.shape
        (torch.Size([2]), torch.Size([3]))
    """

    needs_validation: ClassVar[bool] = True
    paper: ClassVar[str] = "Ghosh, Schaaf, Gormley; NeurIPS 2022, arXiv 2211.11838"

    def __init__(
        self,
        *,
        num_classes: int,
        num_bins: int = 15,
        lam: float = 1.0,
        gamma_initial: float = 1.0,
        switch_pt: float = 0.2,
        gamma_min: float = -2.0,
        gamma_max: float = 20.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.num_bins = check_positive_int(num_bins, "num_bins")
        self.lam = check_number(lam, "lam", low=0.0, low_inclusive=False)
        self.switch_pt = check_number(switch_pt, "switch_pt", low=0.0)
        self.gamma_max = check_number(gamma_max, "gamma_max")
        self.gamma_min = check_number(gamma_min, "gamma_min", high=self.gamma_max)
        self.gamma_initial = check_number(gamma_initial, "gamma_initial", low=self.gamma_min, high=self.gamma_max)
        self.register_buffer("gammas", torch.full((self.num_bins,), self.gamma_initial, dtype=torch.float64))
        self.register_buffer("edges", torch.linspace(0.0, 1.0, self.num_bins + 1, dtype=torch.float64))

    def sample_gammas(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """g_i: the gamma of the bin holding the detached p_{i,y}, [N] (no host synchronisation)."""
        p_y = gather_true(torch.softmax(compute_dtype(logits).detach(), dim=1), labels)
        inner = self.edges[1:-1].to(p_y.dtype)
        bins = torch.bucketize(p_y.contiguous(), inner.contiguous(), right=True)
        return self.gammas[bins]

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss of a batch: ``logits`` [n, K], ``labels`` [n]."""
        labels = check_logits_labels(logits, labels, self.num_classes)
        return adafocal_loss(logits, labels, self.sample_gammas(logits, labels), reduction=self.reduction)

    def on_epoch_end(
        self, epoch: int, *, val_logits: torch.Tensor | None = None, val_labels: torch.Tensor | None = None
    ) -> None:
        """Update the per-bin gammas and bin edges from the validation logits [N, K] and labels [N]."""
        super().on_epoch_end(epoch)
        if val_logits is None or val_labels is None:
            raise ValueError("val_logits, val_labels: adafocal updates its gammas from validation predictions")
        val_labels = check_logits_labels(val_logits, val_labels, self.num_classes, now=True)
        gammas, edges = adafocal_update(
            self.gammas, val_logits, val_labels, lam=self.lam, switch_pt=self.switch_pt,
            gamma_min=self.gamma_min, gamma_max=self.gamma_max,
        )
        self.gammas.copy_(gammas)
        self.edges.copy_(edges)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, num_bins={self.num_bins}, lam={self.lam}, gamma_initial={self.gamma_initial}, "
            f"switch_pt={self.switch_pt}, gamma_min={self.gamma_min}, gamma_max={self.gamma_max}"
        )


#: The former class name, kept for existing code.
AdaFocalLoss = AdaptiveFocal
