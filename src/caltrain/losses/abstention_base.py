"""Base classes of the K+1 ("unknown" output) objectives: Deep Gamblers, Self-Adaptive Training, Socrates.

:class:`AbstentionObjective` adds the K+1-th output, its evaluation convention and a cross-entropy warm-up;
:class:`AdaptiveTargetObjective` adds the per-sample EMA target table of Self-Adaptive Training (Huang, Zhang,
Zhang; NeurIPS 2020, arXiv 2002.10319), which Socrates (Gómez-Gálvez et al.; TMLR 2026, arXiv 2604.12245)
reuses. The table keeps one row per training sample i:

    prev_i = onehot(y_i)                     on the first visit of sample i,
    prev_i = T[i]                            afterwards,
    q_i    = softmax(z_i[:K])                on detached logits, the unknown output excluded,
    T[i]  <- m * prev_i + (1 - m) * q_i      before the loss, every time sample i is seen in training mode,

with m in [0, 1] the momentum, T in R^{N x K} (N training samples, K real classes). The adaptive target of
sample i is tau_i = T[i, y_i]. In ``eval()`` mode the table is read, not written: tau_i = prev_i[y_i].
Both tables (``targets`` [N, K] float32 and ``seen`` [N] bool) are rank-local state
(:meth:`caltrain.losses.base.Objective.register_local_state`): ``state_dict()`` carries them under these names so a
resumed run continues exactly, but they are not module buffers, so a DistributedDataParallel wrapper never
overwrites a rank's rows with rank 0's (the trainer merges the ranks' rows once per epoch).

Example:
    >>> import torch
    >>> targets, seen = torch.zeros(4, 2), torch.zeros(4, dtype=torch.bool)
    >>> ema_step(targets, seen, torch.zeros(1, 2), torch.tensor([0]), torch.tensor([3]), momentum=0.5, update=True)
    tensor([0.7500])
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from caltrain.losses._tensors import check_indices, check_logits_labels, compute_dtype
from caltrain.losses.base import Objective, reduce_loss
from caltrain.utils.checks import check_number, check_positive_int

__all__ = ["AbstentionObjective", "AdaptiveTargetObjective", "ema_step"]


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
        targets: T, [N, K] float table (written in place when ``update``).
        seen: [N] bool table, true once a sample's row holds an EMA value.
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


class AbstentionObjective(Objective):
    """An :class:`Objective` with a K+1-th "unknown" output and ``warmup_epochs`` of plain CE on z[:K].

    Subclasses implement :meth:`abstention_loss`; ``forward`` checks the inputs and returns the warm-up loss
    while warming up, that loss afterwards. ``on_epoch_start(e)`` stores e in the ``epoch`` buffer and sets the
    host flag ``warming_up = e < warmup_epochs`` that ``forward`` branches on (no host synchronisation in the
    step); loading a state dict re-derives the flag from the restored buffer, so a new objective loaded from
    ``state_dict()`` continues exactly without another ``on_epoch_start`` call.
    """

    #: The evaluation convention of the authors' code (LayneH/SAT-selective-cls, sandruskyi/SocratesLoss): argmax
    #: and confidence over all K+1 outputs, predicting "unknown" counts as wrong (docs/methods.md#socrates-loss,
    #: convention (i)).
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

    def abstention_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The objective's own loss after the warm-up (``logits`` [n, K+1], ``labels`` [n]), reduced."""
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss of a batch: ``logits`` [n, K+1], ``labels`` [n]."""
        labels = check_logits_labels(logits, labels, self.num_classes, self.num_outputs)
        if self.warming_up:
            return self.warmup_loss(logits, labels)
        return self.abstention_loss(logits, labels)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, warmup_epochs={self.warmup_epochs}"


def _refresh_warmup_flag(module: nn.Module, incompatible_keys) -> None:  # noqa: ANN001 (torch hook signature)
    module.warming_up = int(module.epoch) < module.warmup_epochs


class AdaptiveTargetObjective(AbstentionObjective):
    """An :class:`AbstentionObjective` with the per-sample EMA target table of the module docstring.

    It requires the batch's dataset ``indices``; :meth:`adaptive_loss` gets tau_i = T[i, y_i] (detached, on the
    logits' device) after the table advanced (training mode) or was read (``eval()`` mode). While warming up the
    table is not touched, so the first visit after warm-up starts from the one-hot label (as in the authors' code).

    Args:
        num_classes: K; num_samples: N, the training-set size (dataset indices lie in [0, N)).
        momentum: m in [0, 1] (m = 1 keeps the one-hot labels, m = 0 uses the latest prediction).
        warmup_epochs: epochs of plain CE on z[:K], >= 0.
        reduction: "mean", "sum" or "none".
    """

    requires: ClassVar[frozenset[str]] = frozenset({"indices"})
    sample_state: ClassVar[tuple[str, ...]] = ("targets", "seen")

    def __init__(
        self, *, num_classes: int, num_samples: int, momentum: float, warmup_epochs: int = 0, reduction: str = "mean"
    ) -> None:
        super().__init__(num_classes=num_classes, warmup_epochs=warmup_epochs, reduction=reduction)
        self.momentum = check_number(momentum, "momentum", low=0.0, high=1.0)
        self.num_samples = check_positive_int(num_samples, "num_samples")
        # rank-local state of the objective itself (not buffers: DDP must not broadcast them), so the names in
        # ``sample_state`` are attributes the trainer reads and merges across ranks
        self.register_local_state("targets", torch.zeros(self.num_samples, self.num_classes))
        self.register_local_state("seen", torch.zeros(self.num_samples, dtype=torch.bool))

    def adaptive_loss(self, logits: torch.Tensor, labels: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """The loss for adaptive targets ``tau`` [n] (``logits`` [n, K+1], ``labels`` [n]), reduced."""
        raise NotImplementedError

    def forward(
        self, logits: torch.Tensor, labels: torch.Tensor, *, indices: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The loss of a batch: ``logits`` [n, K+1], ``labels`` [n], ``indices`` [n] dataset indices (required:
        None raises ``ValueError`` naming them)."""
        labels = check_logits_labels(logits, labels, self.num_classes, self.num_outputs)
        indices = check_indices(indices, logits.shape[0], self.num_samples, self._name)
        if self.warming_up:
            return self.warmup_loss(logits, labels)
        tau = ema_step(
            self.targets, self.seen, logits[:, : self.num_classes], labels, indices,
            momentum=self.momentum, update=self.training,
        ).to(logits.device)
        return self.adaptive_loss(logits, labels, tau)

    @property
    def _name(self) -> str:
        return getattr(type(self), "registry_name", type(self).__name__)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_samples={self.num_samples}, momentum={self.momentum}"
