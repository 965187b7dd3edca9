"""Pure functions of (logits, labels): every objective that needs nothing else, by its registry name.

Each ``caltrain.losses.functional.<name>(logits, labels, *, <hyperparameters>, reduction="mean")`` takes

- ``logits``: float tensor ``[N, K]`` (any float dtype; float16/bfloat16 are computed in float32 and the loss is
  returned in float32, gradients flow back in the input dtype);
- ``labels``: integer tensor ``[N]`` of class indices in ``[0, K)``;

and returns the mean loss over the batch (a scalar). ``reduction="none"`` gives one value per sample, shape
``[N]``, whose mean is the default; ``"sum"`` their sum. Objectives with a *batch-level* regulariser R (MMCE, DCA,
MDCA, DECE) return ``CE_i + λ·R`` per sample for ``"none"`` (the batch term added to every sample), so the mean
is still the loss.

Hyperparameters are keyword-only and checked on the host (no tensor is read), so a bad value raises
``ValueError`` naming it; nothing here synchronises with the device (no ``.item()``, no boolean indexing, no
Python branch on a tensor value). Label values are not range-checked (that would read the device); an
out-of-range label fails inside ``gather``.

Notation: z = logits, p = softmax(z), y the label, p_y the true-class probability, conf = max_k p_k,
ŷ = argmax_k p_k, n the batch size, CE_i = −log p_{i,y_i}.

Example:
    >>> import torch
    >>> from caltrain.losses import functional as LF
    >>> z = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    >>> y = torch.tensor([0, 1])
    >>> bool(torch.isclose(LF.focal(z, y, gamma=0.0), LF.ce(z, y)))
    True
    >>> LF.mbls(z, y, reduction="none").shape
    torch.Size([2])
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from caltrain.losses.base import REDUCTIONS, reduce_loss
from caltrain.utils.checks import check_choice, check_ndim, check_number, check_positive_int, check_same_length

__all__ = [
    "brier",
    "ce",
    "dca",
    "dece",
    "dual_focal",
    "ecp",
    "flsd53",
    "focal",
    "gence",
    "logitnorm",
    "ls",
    "mbls",
    "mdca",
    "mmce",
    "poly1",
]


# ------------------------------------------------------------------------------------------------ helpers
def _prepare(logits: torch.Tensor, labels: torch.Tensor, reduction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Shape checks (host only), float32 upcast of half-precision logits, labels as int64 column-ready."""
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise ValueError(f"logits: expected a floating-point tensor [N, K], got {type(logits).__name__}"
                         + (f" of dtype {logits.dtype}" if isinstance(logits, torch.Tensor) else ""))
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError("labels: expected an integer tensor [N] of class indices")
    check_ndim(logits, "logits", 2, "[N, K]")
    check_ndim(labels, "labels", 1, "[N]")
    check_same_length(logits, labels, "logits", "labels")
    if logits.shape[0] == 0:
        raise ValueError("logits: expected at least one sample, got an empty batch")
    if logits.shape[1] < 2:
        raise ValueError(f"logits: expected K >= 2 classes, got shape {tuple(logits.shape)}")
    check_choice(reduction, "reduction", REDUCTIONS)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return logits, labels.long()


def _gather(t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``t[i, labels[i]]`` for every row, shape [N]."""
    return t.gather(1, labels[:, None])[:, 0]


def _log_one_minus_py(z: torch.Tensor, labels: torch.Tensor, logp_all_lse: torch.Tensor | None = None) -> torch.Tensor:
    """log(1 − p_y) = logsumexp_{k≠y} z_k − logsumexp_k z_k, finite for finite logits (no cancellation)."""
    masked = z.scatter(1, labels[:, None], float("-inf"))
    lse = torch.logsumexp(z, dim=1) if logp_all_lse is None else logp_all_lse
    return torch.logsumexp(masked, dim=1) - lse


def _with_batch_term(ce_i: torch.Tensor, term: torch.Tensor, weight: float, reduction: str) -> torch.Tensor:
    """CE_i + weight·term (a batch scalar) per sample, reduced."""
    return reduce_loss(ce_i + weight * term, reduction)


def _nonneg(value: float, name: str) -> float:
    return check_number(value, name, low=0.0)


# ------------------------------------------------------------------------------------------------ CE family
def ce(logits: torch.Tensor, labels: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy: L_i = −log p_{i,y_i} = logsumexp_k z_ik − z_{i,y_i}."""
    z, y = _prepare(logits, labels, reduction)
    return F.cross_entropy(z, y, reduction=reduction)


def ls(logits: torch.Tensor, labels: torch.Tensor, *, smoothing: float = 0.05, reduction: str = "mean") -> torch.Tensor:
    """Label smoothing (Szegedy et al. 2016, arXiv 1512.00567): CE against a smoothed target.

    Target t = (1 − α)·onehot(y) + α/K, L_i = −Σ_k t_k log p_ik = (1 − α)·CE_i + α·(1/K) Σ_k (−log p_ik).

    Args:
        smoothing: α ∈ [0, 1]. Default 0.05, the value of Mukhoti et al. 2020 and of the MbLS comparisons
            (METHODS.md 2; 0.1 is the other common choice). α = 0 is CE.
    """
    z, y = _prepare(logits, labels, reduction)
    a = check_number(smoothing, "smoothing", low=0.0, high=1.0)
    logp = F.log_softmax(z, dim=1)
    per = -(1.0 - a) * _gather(logp, y) - a * logp.mean(dim=1)
    return reduce_loss(per, reduction)


def focal(logits: torch.Tensor, labels: torch.Tensor, *, gamma: float = 3.0, reduction: str = "mean") -> torch.Tensor:
    """Focal loss (Lin et al. 2017, arXiv 1708.02002; for calibration Mukhoti et al. 2020, arXiv 2002.09437).

    L_i = −(1 − p_y)^γ log p_y, with (1 − p_y)^γ = exp(γ·log(1 − p_y)) computed in log space
    (log(1 − p_y) = logsumexp_{k≠y} z_k − logsumexp_k z_k), so it stays finite and exact when p_y → 1.
    The focal factor is not detached (as in both papers' code).

    Args:
        gamma: γ ≥ 0; default 3 (Mukhoti's FL-3, MbLS' focal baseline). γ = 0 is CE.
    """
    z, y = _prepare(logits, labels, reduction)
    g = _nonneg(gamma, "gamma")
    lse = torch.logsumexp(z, dim=1)
    logp_y = _gather(z, y) - lse
    factor = torch.exp(g * _log_one_minus_py(z, y, lse))
    return reduce_loss(-factor * logp_y, reduction)


def flsd53(logits: torch.Tensor, labels: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """FLSD-53: sample-dependent focal loss (Mukhoti et al. 2020, arXiv 2002.09437).

    L_i = −(1 − p_y)^{γ_i} log p_y with γ_i = 5 if p_y < 0.2 else 3, γ_i chosen on the detached p_y
    (a ``torch.where``, no host synchronisation).
    """
    z, y = _prepare(logits, labels, reduction)
    lse = torch.logsumexp(z, dim=1)
    logp_y = _gather(z, y) - lse
    gamma = torch.where(logp_y.detach() < math.log(0.2), 5.0, 3.0)
    factor = torch.exp(gamma * _log_one_minus_py(z, y, lse))
    return reduce_loss(-factor * logp_y, reduction)


def dual_focal(
    logits: torch.Tensor, labels: torch.Tensor, *, gamma: float = 5.0, reduction: str = "mean"
) -> torch.Tensor:
    """Dual focal loss (Tao, Dong, Xu; ICML 2023, arXiv 2305.13665).

    L_i = −(1 − p_y + p_j)^γ log p_y, where p_j is the largest probability strictly below p_y (0 when p_y is the
    smallest one), as in the authors' code; nothing is detached.

    Args:
        gamma: γ ≥ 0; default 5 (the paper's Table 13 setting used in its code). γ = 0 is CE.
    """
    z, y = _prepare(logits, labels, reduction)
    g = _nonneg(gamma, "gamma")
    logp = F.log_softmax(z, dim=1)
    p = logp.exp()
    logp_y = _gather(logp, y)
    p_y = logp_y.exp()
    p_j = torch.where(p < p_y[:, None], p, torch.zeros_like(p)).amax(dim=1)
    base = (1.0 - p_y + p_j).clamp_min(0.0)
    return reduce_loss(-base.pow(g) * logp_y, reduction)


def ecp(logits: torch.Tensor, labels: torch.Tensor, *, beta: float = 0.1, reduction: str = "mean") -> torch.Tensor:
    """Confidence penalty (Pereyra et al. 2017, arXiv 1701.06548): L_i = CE_i − β·H(p_i), H = −Σ_k p_k log p_k.

    Args:
        beta: β ≥ 0; default 0.1 (reading: the paper tunes β per task; 0.1 is the MbLS baseline's value).
            β = 0 is CE. Reading: the entropy is summed over classes as in the paper (the MbLS code averages it
            over classes, i.e. uses β/K).
    """
    z, y = _prepare(logits, labels, reduction)
    b = _nonneg(beta, "beta")
    logp = F.log_softmax(z, dim=1)
    entropy = -(logp.exp() * logp).sum(dim=1)
    return reduce_loss(-_gather(logp, y) - b * entropy, reduction)


def brier(logits: torch.Tensor, labels: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Brier loss (Brier 1950; as a training loss in Mukhoti et al. 2020): L_i = Σ_k (p_ik − 1[k = y_i])² ∈ [0, 2]."""
    z, y = _prepare(logits, labels, reduction)
    p = F.softmax(z, dim=1)
    target = F.one_hot(y, z.shape[1]).to(p.dtype)
    return reduce_loss((p - target).pow(2).sum(dim=1), reduction)


def logitnorm(
    logits: torch.Tensor, labels: torch.Tensor, *, temperature: float = 0.04, reduction: str = "mean"
) -> torch.Tensor:
    """LogitNorm (Wei et al. ICML 2022, arXiv 2205.09310): CE of the normalised logits z / (τ·(‖z‖₂ + 1e−7)).

    Args:
        temperature: τ > 0; default 0.04 (the paper's CIFAR-10 value). The 1e−7 is the authors' guard.
    """
    z, y = _prepare(logits, labels, reduction)
    t = check_number(temperature, "temperature", low=0.0, low_inclusive=False)
    norms = torch.linalg.vector_norm(z, dim=1, keepdim=True) + 1e-7
    return F.cross_entropy(z / (norms * t), y, reduction=reduction)


def poly1(logits: torch.Tensor, labels: torch.Tensor, *, epsilon: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """Poly-1 (Leng et al. ICLR 2022, arXiv 2204.12511): L_i = CE_i + ε·(1 − p_y).

    Args:
        epsilon: ε ≥ −1 (the paper's range; ε = −1 drops the first polynomial term). Default 1. ε = 0 is CE.
    """
    z, y = _prepare(logits, labels, reduction)
    e = check_number(epsilon, "epsilon", low=-1.0)
    logp_y = _gather(F.log_softmax(z, dim=1), y)
    return reduce_loss(-logp_y + e * (1.0 - logp_y.exp()), reduction)


def _flatten_dense(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense logits ``[N, K, *spatial]`` and labels ``[N, *spatial]`` -> ``[N·P, K]`` and ``[N·P]`` (P pixels)."""
    if labels.dim() != logits.dim() - 1 or labels.shape[0] != logits.shape[0] or labels.shape[1:] != logits.shape[2:]:
        raise ValueError(
            f"labels: expected shape [N, *spatial] = {(logits.shape[0], *logits.shape[2:])} for dense logits "
            f"[N, K, *spatial] of shape {tuple(logits.shape)}, got {tuple(labels.shape)}"
        )
    return logits.movedim(1, -1).reshape(-1, logits.shape[1]), labels.reshape(-1)


def mbls(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    margin: float = 10.0,
    alpha: float = 0.1,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Margin-based label smoothing, MbLS (Liu, Ben Ayed, Galdran, Dolz; CVPR 2022, arXiv 2111.15430).

    Logit distances d_ik = max_j z_ij − z_ik ≥ 0; L_i = CE_i + α·(1/K) Σ_k ReLU(d_ik − m), so the batch mean is
    CE + α·(mean over the n×K entries of ReLU(d − m)), exactly the authors' code (by-liu/MbLS,
    ``LogitMarginL1``: the argmax column, where d = 0, is included in the mean). When every d_ik ≤ m the loss
    is exactly CE.

    Args:
        margin: m ≥ 0; default 10 (the paper's).
        alpha: λ ≥ 0, the penalty weight; default 0.1 (the paper's). α = 0 is CE.

    Dense inputs (segmentation, as in the paper's VOC/Cityscapes runs): ``logits`` [N, K, *spatial] with
    ``labels`` [N, *spatial]; every pixel is a sample. Pixels whose label is ``ignore_index`` contribute neither
    CE nor penalty (the authors' code leaves them in the penalty: a bug not repeated); "mean" averages over the
    counted pixels, "none" returns the labels' shape with 0 at ignored pixels. No host synchronisation.

    We differ from the authors' code in: no α schedule (their results use none); ignored pixels masked out of the
    penalty too.
    """
    shape = labels.shape
    if isinstance(logits, torch.Tensor) and isinstance(labels, torch.Tensor) and logits.dim() > 2:
        logits, labels = _flatten_dense(logits, labels)
    z, y = _prepare(logits, labels, reduction)
    m = _nonneg(margin, "margin")
    a = _nonneg(alpha, "alpha")
    d = z.amax(dim=1, keepdim=True) - z
    penalty = F.relu(d - m).mean(dim=1)
    if ignore_index is None:
        per_sample = F.cross_entropy(z, y, reduction="none") + a * penalty
        return reduce_loss(per_sample, reduction) if reduction != "none" else per_sample.reshape(shape)
    valid = y != ignore_index
    per_sample = (F.cross_entropy(z, torch.where(valid, y, 0), reduction="none") + a * penalty) * valid
    if reduction == "mean":
        return per_sample.sum() / valid.sum().clamp_min(1)
    return per_sample.sum() if reduction == "sum" else per_sample.reshape(shape)


# ------------------------------------------------------------------------------------------------ batch-level
def mmce(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    weight: float = 2.0,
    bandwidth: float = 0.4,
    weighted: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    """CE + λ·MMCE (Kumar, Sarawagi, Jain; ICML 2018, "Trainable calibration measures from kernel mean embeddings").

    r_i = conf_i (top-label confidence), c_i = 1[ŷ_i = y_i] (constant), k(r, r') = exp(−|r − r'|/h) (Laplacian).

    - unweighted (``weighted=False``): MMCE² = (1/n²) Σ_{i,j} (c_i − r_i)(c_j − r_j) k(r_i, r_j);
    - weighted (``weighted=True``, MMCE_w): with m correct and n' incorrect samples,
      MMCE_w² = ‖ Σ_{i correct} (1 − r_i) φ(r_i)/m − Σ_{j incorrect} r_j φ(r_j)/n' ‖²_H = aᵀ K a with
      a_i = (1 − r_i)/m for correct i and −r_i/n' for incorrect i (m, n' ≥ 1 guard empty groups).

    L = CE + λ·sqrt(MMCE² + 1e−10) (the paper's MMCE is the RKHS norm, the square root; the MbLS/Mukhoti code
    adds the square instead). For ``reduction="none"`` each sample gets CE_i + λ·MMCE (see the module docstring).

    Args:
        weight: λ ≥ 0; default 2 (METHODS.md: λ ≈ 2). λ = 0 is CE.
        bandwidth: h > 0, the kernel width; default 0.4 (the paper's).
        weighted: use MMCE_w; default False.

    Cost: O(n²) per batch (the kernel matrix), negligible for n ≤ 1024.
    """
    z, y = _prepare(logits, labels, reduction)
    lam = _nonneg(weight, "weight")
    h = check_number(bandwidth, "bandwidth", low=0.0, low_inclusive=False)
    if not isinstance(weighted, bool):
        raise ValueError(f"weighted: expected a bool, got {weighted!r}")
    logp = F.log_softmax(z, dim=1)
    logconf, pred = logp.max(dim=1)
    r = logconf.exp()
    correct = (pred == y).to(r.dtype)
    if weighted:
        n_correct = correct.sum().clamp_min(1.0)
        n_wrong = (1.0 - correct).sum().clamp_min(1.0)
        a = correct * (1.0 - r) / n_correct - (1.0 - correct) * r / n_wrong
    else:
        a = (correct - r) / r.shape[0]
    kernel = torch.exp(-(r[:, None] - r[None, :]).abs() / h)
    mmce_sq = (a[:, None] * kernel * a[None, :]).sum()
    term = torch.sqrt(mmce_sq.clamp_min(0.0) + 1e-10)
    return _with_batch_term(-_gather(logp, y), term, lam, reduction)


def dca(logits: torch.Tensor, labels: torch.Tensor, *, weight: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """CE + β·DCA, difference between confidence and accuracy (Liang et al. 2020, arXiv 2009.04057).

    DCA = |(1/n) Σ_i conf_i − (1/n) Σ_i 1[ŷ_i = y_i]| on the batch (accuracy is a constant).

    Args:
        weight: β ≥ 0; default 1 (reading: the paper tunes β; 1 is a neutral starting point). β = 0 is CE.
    """
    z, y = _prepare(logits, labels, reduction)
    b = _nonneg(weight, "weight")
    logp = F.log_softmax(z, dim=1)
    logconf, pred = logp.max(dim=1)
    gap = (logconf.exp().mean() - (pred == y).to(logp.dtype).mean()).abs()
    return _with_batch_term(-_gather(logp, y), gap, b, reduction)


def mdca(logits: torch.Tensor, labels: torch.Tensor, *, weight: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """CE + β·MDCA, multi-class DCA (Hebbalaguppe et al. CVPR 2022, arXiv 2203.13834).

    MDCA = (1/K) Σ_k |(1/n) Σ_i p_ik − (1/n) Σ_i 1[y_i = k]| on the batch.

    Args:
        weight: β ≥ 0; default 1 (the authors' code default; the paper searches {1, 5, 10}). β = 0 is CE.
    """
    z, y = _prepare(logits, labels, reduction)
    b = _nonneg(weight, "weight")
    logp = F.log_softmax(z, dim=1)
    freq = F.one_hot(y, z.shape[1]).to(logp.dtype).mean(dim=0)
    term = (logp.exp().mean(dim=0) - freq).abs().mean()
    return _with_batch_term(-_gather(logp, y), term, b, reduction)


def soft_bin_membership(conf: torch.Tensor, n_bins: int, temperature: float) -> torch.Tensor:
    """Soft membership [N, M] of confidences in M equal-width bins (Yang et al. 2018 soft binning).

    With cut points c_j = j/M (j = 1..M−1), w = (1, …, M) and b = (0, −c_1, −c_1 − c_2, …),
    o_i = softmax((w·conf_i + b)/τ): as τ → 0 it tends to the one-hot of the bin holding conf_i.
    """
    w = torch.arange(1, n_bins + 1, dtype=conf.dtype, device=conf.device)
    cuts = torch.arange(1, n_bins, dtype=conf.dtype, device=conf.device) / n_bins
    b = torch.cat([torch.zeros(1, dtype=conf.dtype, device=conf.device), -torch.cumsum(cuts, 0)])
    return F.softmax((conf[:, None] * w + b) / temperature, dim=1)


def dece(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    weight: float = 0.5,
    n_bins: int = 15,
    temperature: float = 0.01,
    reduction: str = "mean",
) -> torch.Tensor:
    """CE + λ·DECE, soft-binned differentiable ECE (Bohdal, Yang, Hospedales 2021, arXiv 2106.09613).

    With soft memberships o_ib (:func:`soft_bin_membership`, M bins, temperature τ) of conf_i and a_i = 1[ŷ_i = y_i],
    DECE = Σ_b (n_b/n)·|acc_b − conf_b| = (1/n) Σ_b |Σ_i o_ib (a_i − conf_i)|  (n_b = Σ_i o_ib).

    Reading: the paper also makes the accuracy differentiable through a soft ranking of the true class; we use the
    hard indicator a_i (a constant), so the gradient flows through the confidences and the memberships.

    Args:
        weight: λ ≥ 0; default 0.5 (reading: the paper's meta-learned setting has no single λ). λ = 0 is CE.
        n_bins: M ≥ 1; default 15 (the paper's).
        temperature: τ > 0 of the soft binning; default 0.01 (the paper's).
    """
    z, y = _prepare(logits, labels, reduction)
    lam = _nonneg(weight, "weight")
    m = check_positive_int(n_bins, "n_bins")
    t = check_number(temperature, "temperature", low=0.0, low_inclusive=False)
    logp = F.log_softmax(z, dim=1)
    logconf, pred = logp.max(dim=1)
    conf = logconf.exp()
    gap = (pred == y).to(conf.dtype) - conf
    member = soft_bin_membership(conf, m, t)
    term = (member * gap[:, None]).sum(dim=0).abs().sum() / conf.shape[0]
    return _with_batch_term(-_gather(logp, y), term, lam, reduction)


def gence(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    weight: float = 1.0,
    exclude_self: bool = False,
    class_prior: Sequence[float] | torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Generative cross-entropy, GenCE (Zhan, Zhou, Shen; arXiv 2604.06689), the reading of METHODS.md 1.5.

    Maximise p(x|y) = p(y|x)·p(x)/p(y), with p(y) estimated on the batch as p̄_B(y) = (1/n) Σ_{j∈B} p_{j,y}:

        L_i = −log p_{i,y_i} + λ·log p̄_B(y_i)      (λ = 1: −log(p_{i,y_i} / p̄_B(y_i)))

    log p̄_B(c) = logsumexp_j log p_{j,c} − log n (log space, no underflow); the gradient flows through p̄_B.
    The loss is invariant to permuting the batch and is 0 for a batch of one (λ = 1).

    Args:
        weight: λ ≥ 0 on the class-level term; default 1 (the paper's form). λ = 0 is CE.
        exclude_self: estimate p̄ for sample i without it, (1/(n−1)) Σ_{j≠i} p_{j,y_i} (a leave-one-out reading;
            O(n²)); a batch of one falls back to including itself. Default False (the sample is in its own
            estimate, METHODS.md's default).
        class_prior: a known class prior π [K] (long-tailed data) used instead of the batch estimate:
            L_i = CE_i + λ·log π(y_i) (constant in the logits). Default None (batch estimate).
            :class:`~caltrain.losses.gence.GenCE` adds the EMA-across-batches option.

    The paper's text and code are not public: this is a reconstruction from its abstract (see METHODS.md 1.5).
    """
    z, y = _prepare(logits, labels, reduction)
    lam = _nonneg(weight, "weight")
    if not isinstance(exclude_self, bool):
        raise ValueError(f"exclude_self: expected a bool, got {exclude_self!r}")
    logp = F.log_softmax(z, dim=1)
    logp_y = _gather(logp, y)
    if class_prior is not None:
        log_prior = _log_class_prior(class_prior, z.shape[1], z).gather(0, y)
    else:
        log_prior = batch_log_prior(logp, y, exclude_self=exclude_self)
    return reduce_loss(-logp_y + lam * log_prior, reduction)


def batch_log_prior(logp: torch.Tensor, labels: torch.Tensor, *, exclude_self: bool = False) -> torch.Tensor:
    """log p̄_B(y_i) [N] from log-probabilities ``logp`` [N, K] (leave-one-out if ``exclude_self`` and N > 1)."""
    n = logp.shape[0]
    if exclude_self and n > 1:
        cols = logp[:, labels]  # cols[j, i] = log p_{j, y_i}
        eye = torch.eye(n, dtype=torch.bool, device=logp.device)
        return torch.logsumexp(cols.masked_fill(eye, float("-inf")), dim=0) - math.log(n - 1)
    return (torch.logsumexp(logp, dim=0) - math.log(n)).gather(0, labels)


def _log_class_prior(prior: Sequence[float] | torch.Tensor, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    """log π [K] from a prior given as a sequence or tensor, normalised to sum to 1 either way.

    A sequence is validated on the host (positive values); a tensor is not (no host synchronisation): its
    entries must be positive.
    """
    if isinstance(prior, torch.Tensor):
        pi = prior.to(device=like.device, dtype=like.dtype)
        pi = pi / pi.sum()
    else:
        values = [check_number(v, "class_prior", low=0.0, low_inclusive=False) for v in prior]
        total = sum(values)
        pi = torch.tensor([v / total for v in values], dtype=like.dtype, device=like.device)
    if pi.shape != (num_classes,):
        raise ValueError(
            f"class_prior: expected {num_classes} positive values (one per class), got shape {tuple(pi.shape)}"
        )
    return torch.log(pi)
