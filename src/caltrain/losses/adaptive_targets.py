"""Shared pieces of the K+1 ("unknown" output) objectives: per-sample EMA target tables and stable log terms.

The EMA target table of Self-Adaptive Training (Huang, Zhang, Zhang; NeurIPS 2020, arXiv 2002.10319) and of
Socrates (Gómez-Gálvez et al.; TMLR 2026, arXiv 2604.12245) keeps one row per training sample i:

    prev_i = onehot(y_i)                     on the first visit of sample i,
    prev_i = T[i]                            afterwards,
    q_i    = softmax(z_i[:K])                on detached logits, the unknown output excluded,
    T[i]  <- m * prev_i + (1 - m) * q_i      before the loss, every time sample i is seen in training mode,

with m in [0, 1] the momentum, T in R^{N x K} (N training samples, K real classes). The adaptive target of
sample i is tau_i = T[i, y_i]. In ``eval()`` mode the table is read, not written: tau_i = prev_i[y_i].

Both tables live in buffers (``targets`` [N, K] float32 and ``seen`` [N] bool) so that ``state_dict()`` carries
them and a resumed run continues exactly.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from caltrain.losses.base import Objective, reduce_loss
from caltrain.utils.checks import check_ndim, check_nonempty, check_number, check_positive_int, check_same_length

__all__: list[str] = []


def compute_dtype(logits: torch.Tensor) -> torch.Tensor:
    """``logits`` promoted to float32 when stored in a half-precision type (float64 is kept for gradcheck)."""
    if logits.dtype in (torch.float16, torch.bfloat16):
        return logits.float()
    return logits


def check_logits_labels(logits: torch.Tensor, labels: torch.Tensor, num_outputs: int) -> None:
    """Shape-only checks of ``logits`` [N, num_outputs] and ``labels`` [N] (no host synchronisation)."""
    check_ndim(logits, "logits", 2, f"[N, {num_outputs}]")
    if logits.shape[1] != num_outputs:
        raise ValueError(f"logits: expected shape [N, {num_outputs}], got shape {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"logits: expected a floating-point tensor, got dtype {logits.dtype}")
    check_nonempty(logits, "logits")
    check_ndim(labels, "labels", 1, "[N]")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels: expected integer class indices, got dtype {labels.dtype}")
    check_same_length(logits, labels, "logits", "labels")


def log_one_minus_true(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log(1 - p_y) = logsumexp_{k != y} z_k - logsumexp_k z_k, finite with finite gradients even when p_y -> 1.

    Args:
        logits: z, [N, C] floating point.
        labels: y, [N] integer indices into the C columns.

    Returns:
        [N], in the dtype of ``logits``.
    """
    others = logits.scatter(1, labels.unsqueeze(1), float("-inf"))
    return torch.logsumexp(others, dim=1) - torch.logsumexp(logits, dim=1)


def check_momentum(momentum: float) -> float:
    """Momentum m in [0, 1] (m = 1 keeps the one-hot labels, m = 0 uses the latest prediction)."""
    return check_number(momentum, "momentum", low=0.0, high=1.0)


def register_ema_table(module: nn.Module, num_samples: int, num_classes: int) -> int:
    """Register the buffers ``targets`` [N, K] (float32) and ``seen`` [N] (bool) on ``module``; returns N.

    They are plain buffers of the objective itself (not of a submodule) so that the names listed in its
    ``sample_state`` are attributes the trainer can read.
    """
    n = check_positive_int(num_samples, "num_samples")
    module.register_buffer("targets", torch.zeros(n, num_classes))
    module.register_buffer("seen", torch.zeros(n, dtype=torch.bool))
    return n


@torch.no_grad()
def ema_step(
    targets: torch.Tensor,
    seen: torch.Tensor,
    class_logits: torch.Tensor,
    labels: torch.Tensor,
    indices: torch.Tensor,
    *,
    momentum: float,
    update: bool,
) -> torch.Tensor:
    """Return tau = T[i, y_i] for the batch, advancing the rows of ``indices`` in place when ``update``.

    Args:
        targets: T, [N, K] float buffer (written in place when ``update``).
        seen: [N] bool buffer, true once a sample's row holds an EMA value.
        class_logits: z[:, :K], [n, K] (used detached).
        labels: y, [n] integers in [0, K).
        indices: the batch's dataset indices, [n] integers in [0, N) (no duplicates within a batch when
            ``update``: the last write would win).
        momentum: m in [0, 1].
        update: write the new rows (training mode) or only read them (evaluation mode).

    Returns:
        tau, [n] float32 on the device of ``targets``, detached.
    """
    idx = indices.to(targets.device, torch.long)
    y = labels.to(targets.device, torch.long)
    onehot = F.one_hot(y, targets.shape[1]).to(targets.dtype)
    prev = torch.where(seen[idx].unsqueeze(1), targets[idx], onehot)
    if update:
        q = torch.softmax(class_logits.detach().to(targets.device, targets.dtype), dim=1)
        prev = momentum * prev + (1.0 - momentum) * q
        targets.index_copy_(0, idx, prev)
        seen.index_fill_(0, idx, True)
    return prev.gather(1, y.unsqueeze(1)).squeeze(1)


def check_indices(indices: torch.Tensor | None, n: int, name: str) -> torch.Tensor:
    """Shape check of the dataset ``indices`` of a batch of ``n`` samples (objective ``name`` needs them)."""
    if indices is None:
        raise ValueError(
            f"indices: loss {name!r} keeps per-sample targets and needs the dataset indices of the batch "
            "(call objective(logits, labels, indices=idx))"
        )
    if not isinstance(indices, torch.Tensor):
        indices = torch.as_tensor(indices)
    check_ndim(indices, "indices", 1, "[N]")
    if indices.is_floating_point() or indices.dtype == torch.bool:
        raise TypeError(f"indices: expected integer dataset indices, got dtype {indices.dtype}")
    if indices.shape[0] != n:
        raise ValueError(f"indices and logits must have the same number of samples, got {indices.shape[0]} and {n}")
    return indices


class WarmupObjective(Objective):
    """An :class:`Objective` with a K+1-th "unknown" output and ``warmup_epochs`` of plain CE on z[:K].

    ``on_epoch_start(e)`` stores e in the ``epoch`` buffer and sets the host flag ``warming_up = e <
    warmup_epochs`` that ``forward`` branches on (no host synchronisation in the step); loading a state dict
    re-derives the flag from the restored buffer, so a new objective loaded from ``state_dict()`` continues
    exactly without another ``on_epoch_start`` call.
    """

    #: The evaluation convention of the authors' code (sandruskyi/SocratesLoss): argmax and confidence over all
    #: K+1 outputs, predicting "unknown" counts as wrong (docs/methods.md, Socrates, convention (i)).
    abstention: ClassVar[str | None] = "with_unknown"

    def __init__(self, *, num_classes: int, warmup_epochs: int = 0, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.warmup_epochs = check_positive_int(warmup_epochs, "warmup_epochs", minimum=0)
        self.warming_up = self.warmup_epochs > 0
        self.register_load_state_dict_post_hook(_refresh_warmup_flag)

    def on_epoch_start(self, epoch: int) -> None:
        """Store ``epoch`` and derive the warm-up flag (``epoch < warmup_epochs``)."""
        super().on_epoch_start(epoch)
        self.warming_up = int(epoch) < self.warmup_epochs

    def warmup_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Plain cross-entropy on the K class logits z[:, :K] (the unknown output gets no gradient), reduced."""
        z = compute_dtype(logits)[:, : self.num_classes]
        return reduce_loss(F.cross_entropy(z, labels, reduction="none"), self.reduction)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, warmup_epochs={self.warmup_epochs}"


def _refresh_warmup_flag(module: nn.Module, incompatible_keys) -> None:  # noqa: ANN001 (torch hook signature)
    module.warming_up = int(module.epoch) < module.warmup_epochs
