"""``aslp``: Adaptive Stochastic Label Perturbation, SC-BCE with one learned perturbation probability per image.

Dense binary: z [N, 1, H, W] logits, s = σ(z), y ∈ [0, 1] targets, β the perturbation strength. ASLP keeps
α_i ∈ [0, 1/(2β)) for every training image i (rank-local state ``alpha`` [num_samples], float64, initialised to
0) and trains with :func:`~caltrain.losses.self_calibrating_binary_cross_entropy.sc_bce` at α = α_i. From epoch
``start_epoch`` on, every training-mode call updates the α of its images once, from the batch's detached logits
(the authors update right after the optimiser step of the batch, from the same logits: the loss of the batch used
the α before the update in both):

    BCE_i = mean_pixels −[y log s + (1 − y) log(1 − s)],    H_i = mean_pixels −log(s(1 − s)),
            s clamped to [1e−7, 1 − 1e−7] (the authors' ``compute_bce_individual``/``compute_entropy_individual``),
    g_i   = (H_i − 2·BCE_i) / β          (= mean_pixels (2y − 1)·z / β where no clamp is active, |z| < ~16),
    R_i   = min((1 − A_val) − β·α_i, 0)                     variant "mc" (the authors' ``train_ASLP_MC``),
    R_i   = min(A_val − A_ref, 0)                           variant "mei" (a reading of the paper's MEI, labelled),
    α_i  ← α_i + η·(g_i + λ·R_i);   α_i < 0 → 0;   α_i ≥ 1/(2β) → 1/(2β) − 0.01,

with A_val the pooled pixel accuracy on the validation split after the previous epoch and A_ref the best A_val so
far (including the previous epoch's). A_val reaches the objective through the protocol's streamed validation
statistics (``needs_validation_statistics``; :meth:`AdaptiveStochasticLabelPerturbation.validation_statistics`).

Paper: Liu et al., ICCV 2023, arXiv 2307.13539; authors' code Carlisle-Liu/ASLP (``main_ASLP.py``,
``train_ASLP_MC``; ``utils.py``; ``ECE.py``, ``Compute_ECE_Valid`` for the accuracy).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from caltrain.losses._tensors import check_indices, prepare_dense_binary
from caltrain.losses.base import DenseBinaryObjective
from caltrain.losses.registry import register
from caltrain.losses.self_calibrating_binary_cross_entropy import PAPER, sc_bce
from caltrain.utils.checks import check_choice, check_number, check_positive_int

__all__ = ["ASLP", "AdaptiveStochasticLabelPerturbation", "VARIANTS", "alpha_update", "calibration_gradient"]

#: The α update rules: the authors' (accuracy-constrained, "mc") and a reading of the paper's MEI ("mei").
VARIANTS = ("mc", "mei")
#: The probability clamp of the authors' ``compute_bce_individual`` / ``compute_entropy_individual``.
PROB_CLAMP = 1e-7
#: α's quantiles recorded per epoch (:meth:`AdaptiveStochasticLabelPerturbation.epoch_summary`).
QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


def calibration_gradient(z: torch.Tensor, y: torch.Tensor, beta: float) -> torch.Tensor:
    """g_i = (H_i − 2·BCE_i)/β per image, [N], from detached logits ``z`` and targets ``y`` (both [N, P]),
    with s = σ(z) clamped to [1e−7, 1 − 1e−7] as the authors do. Equals mean_pixels (2y − 1)·z / β while no
    clamp is active."""
    s = torch.sigmoid(z).clamp(PROB_CLAMP, 1.0 - PROB_CLAMP)
    log_s, log_1s = torch.log(s), torch.log1p(-s)
    bce_i = (-(y * log_s) - (1.0 - y) * log_1s).mean(dim=1)
    h_i = (-(log_s + log_1s)).mean(dim=1)
    return (h_i - 2.0 * bce_i) / beta


def alpha_update(
    alpha: torch.Tensor,
    g: torch.Tensor,
    *,
    variant: str,
    beta: float,
    eta: float,
    lam: float,
    val_accuracy: torch.Tensor,
    best_accuracy: torch.Tensor,
) -> torch.Tensor:
    """The new α [N] from the current α [N] and g [N] (see the module docstring), clamps included."""
    zero = torch.zeros_like(alpha)
    if variant == "mc":
        r = torch.minimum((1.0 - val_accuracy) - beta * alpha, zero)
    else:
        r = torch.minimum((val_accuracy - best_accuracy).expand_as(alpha), zero)
    new = alpha + eta * (g + lam * r)
    cap = 1.0 / (2.0 * beta)
    new = torch.where(new >= cap, torch.full_like(new, cap - 0.01), new)
    return torch.where(new < 0, zero, new)


@register("aslp")
class AdaptiveStochasticLabelPerturbation(DenseBinaryObjective):
    """ASLP: SC-BCE with a learned per-image perturbation probability α_i (module docstring for the math).

    Protocol: ``requires = {"indices"}`` (the dataset index of each image), ``sample_state = ("alpha",)``
    (rank-local, in ``state_dict()``, float64), ``needs_validation_statistics`` (the pooled validation pixel
    accuracy: :meth:`validation_statistics` sums ``correct`` and ``pixels`` per batch, ``on_epoch_end`` gets the
    totals), :meth:`epoch_summary` (α's mean, quantiles, fractions at 0 and at the cap, A_val, A_ref).

    α is updated inside ``forward`` in training mode (no post-step hook is needed: the authors' update uses the
    logits of the batch's forward pass, computed before the optimiser step, and the loss of the batch uses the α
    before the update). ``eval()`` mode reads α and writes nothing. The draws Z_i use torch's global generator
    (the trainer seeds it) or ``self.generator``.

    Epochs are 0-based (caltrain's): α is updated in epochs ``e >= start_epoch``. The authors count epochs from 1
    and update when ``epoch > 5``, i.e. from their 6th epoch, which is 0-based epoch 5: the default.
    The update needs A_val of the previous epoch, so ``start_epoch >= 1``.

    Args:
        num_classes: 2 (kept for the record).
        num_samples: the number of training images (dataset indices lie in [0, num_samples)).
        variant: "mc" (default, the authors' ``train_ASLP_MC``) or "mei" (R_i = min(A_val − A_ref, 0): a reading
            of the paper's maximum-entropy-inference variant, not in the authors' code).
        start_epoch: the first 0-based epoch whose steps update α (default 5 = the authors' ``epoch > 5``).
        eta: η > 0, the step size (default 0.002). lam: λ ≥ 0, the constraint weight (default 2000).
        beta: β > 0, the perturbation strength (default 2). noise_std: the optional label noise (default 0).
        reduction: "mean" (default), "sum" or "none" ([N], per image).

    Example:
        >>> obj = AdaptiveStochasticLabelPerturbation(num_samples=4)
        >>> z, y = torch.randn(2, 1, 3, 3), torch.ones(2, 1, 3, 3)
        >>> bool(obj(z, y, indices=torch.tensor([0, 3])) > 0), obj.alpha.tolist()  # epoch 0: no update yet
        (True, [0.0, 0.0, 0.0, 0.0])
    """

    paper: ClassVar[str] = PAPER
    requires: ClassVar[frozenset[str]] = frozenset({"indices"})
    sample_state: ClassVar[tuple[str, ...]] = ("alpha",)
    needs_validation_statistics: ClassVar[bool] = True
    generator: torch.Generator | None = None

    def __init__(
        self,
        *,
        num_classes: int = 2,
        num_samples: int,
        variant: str = "mc",
        start_epoch: int = 5,
        eta: float = 0.002,
        lam: float = 2000.0,
        beta: float = 2.0,
        noise_std: float = 0.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.num_samples = check_positive_int(num_samples, "num_samples")
        self.variant = check_choice(variant, "variant", VARIANTS)
        self.start_epoch = check_positive_int(start_epoch, "start_epoch", minimum=1)
        self.eta = check_number(eta, "eta", low=0.0, low_inclusive=False)
        self.lam = check_number(lam, "lam", low=0.0)
        self.beta = check_number(beta, "beta", low=0.0, low_inclusive=False)
        self.noise_std = check_number(noise_std, "noise_std", low=0.0)
        self.register_local_state("alpha", torch.zeros(self.num_samples, dtype=torch.float64))
        # A_val (previous epoch) and A_ref (best so far); NaN until the first validation statistics arrive.
        self.register_buffer("val_accuracy", torch.full((), float("nan"), dtype=torch.float64))
        self.register_buffer("best_accuracy", torch.full((), float("nan"), dtype=torch.float64))
        self._updating = False

    def on_epoch_start(self, epoch: int) -> None:
        """Stores the epoch and decides on the host whether this epoch's steps update α."""
        super().on_epoch_start(epoch)
        self._updating = int(epoch) >= self.start_epoch
        if self._updating and bool(torch.isnan(self.val_accuracy)):
            raise ValueError(
                f"aslp: epoch {epoch} updates alpha (start_epoch={self.start_epoch}) but no validation pixel "
                "accuracy was received: call on_epoch_end(e, val_stats=...) with the summed "
                "validation_statistics after every epoch"
            )

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, *, indices: torch.Tensor) -> torch.Tensor:
        """SC-BCE at α_i of the batch's images; in training mode from ``start_epoch`` on, α_i is updated after."""
        z, y = prepare_dense_binary(logits, labels, self.reduction)
        idx = check_indices(indices, z.shape[0], self.num_samples, "aslp").to(self.alpha.device)
        a = self.alpha.index_select(0, idx)
        loss = sc_bce(
            logits, labels, alpha=a, beta=self.beta, generator=self.generator, noise_std=self.noise_std,
            reduction=self.reduction,
        )
        if self.training and self._updating:
            with torch.no_grad():
                g = calibration_gradient(z.detach(), y, self.beta).to(torch.float64)
                new = alpha_update(
                    a, g.to(a.device), variant=self.variant, beta=self.beta, eta=self.eta, lam=self.lam,
                    val_accuracy=self.val_accuracy, best_accuracy=self.best_accuracy,
                )
                self.alpha.index_copy_(0, idx, new)
        return loss

    def validation_statistics(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Sums of one validation batch for the pooled pixel accuracy: ``correct`` (pixels where the prediction
        1[z ≥ 0], i.e. s ≥ 1/2, equals the mask binarised at 1/2) and ``pixels``. The authors threshold the saved
        8-bit prediction at 128 (s ≥ ~0.5) against the 8-bit mask (``ECE.py``, ``Compute_ECE_Valid``)."""
        z, y = prepare_dense_binary(logits, labels, "mean")
        correct = ((z >= 0) == (y >= 0.5)).sum(dtype=torch.float64)
        return {"correct": correct, "pixels": torch.tensor(float(z.numel()), dtype=torch.float64, device=z.device)}

    def on_epoch_end(self, epoch: int, *, val_stats: dict[str, torch.Tensor] | None = None, **kwargs) -> None:
        """Reads A_val = correct / pixels from the summed validation statistics; A_ref = max(A_ref, A_val)."""
        super().on_epoch_end(epoch, **kwargs)
        if val_stats is None:
            return
        missing = {"correct", "pixels"} - set(val_stats)
        if missing:
            raise ValueError(f"val_stats: aslp needs the sums 'correct' and 'pixels', missing {sorted(missing)}")
        acc = (val_stats["correct"].to(torch.float64) / val_stats["pixels"].to(torch.float64)).to(
            self.val_accuracy.device
        )
        self.val_accuracy.copy_(acc)
        best = torch.where(torch.isnan(self.best_accuracy), acc, torch.maximum(self.best_accuracy, acc))
        self.best_accuracy.copy_(best)

    def epoch_summary(self) -> dict[str, float]:
        """α's distribution over the training images (mean, quantiles, fractions at 0 and at the cap), and the
        validation accuracies A_val and A_ref the next update uses."""
        a = self.alpha.detach().to(torch.float64)
        q = torch.quantile(a.cpu(), torch.tensor(QUANTILES, dtype=torch.float64))
        cap = 1.0 / (2.0 * self.beta) - 0.01
        summary = {"alpha_mean": float(a.mean())}
        summary.update({f"alpha_q{int(round(p * 100)):02d}": float(v) for p, v in zip(QUANTILES, q)})
        summary["alpha_at_zero"] = float((a == 0).to(torch.float64).mean())
        summary["alpha_at_cap"] = float((a >= cap).to(torch.float64).mean())
        summary["val_pixel_accuracy"] = float(self.val_accuracy)
        summary["best_val_pixel_accuracy"] = float(self.best_accuracy)
        return summary

    def extra_repr(self) -> str:
        return (
            f"num_samples={self.num_samples}, variant={self.variant!r}, start_epoch={self.start_epoch}, "
            f"eta={self.eta}, lam={self.lam}, beta={self.beta}, noise_std={self.noise_std}, "
            f"reduction={self.reduction!r}"
        )


#: Short alias.
ASLP = AdaptiveStochasticLabelPerturbation
