"""Private tensor helpers shared by several objectives: input checks, the half-precision upcast, stable log terms.

Nothing here synchronises with the host (checks read shapes and dtypes only, never tensor values).

Example:
    >>> import torch
    >>> z, y = torch.tensor([[0.0, 0.0]]), torch.tensor([0])
    >>> log_one_minus_true(z, y).exp()  # 1 - p_y = 1/2
    tensor([0.5000])
"""

from __future__ import annotations

import torch

from caltrain.losses.base import REDUCTIONS, reduce_loss
from caltrain.utils.checks import check_choice, check_ndim, check_nonempty, check_number, check_same_length

__all__: list[str] = []


def compute_dtype(logits: torch.Tensor) -> torch.Tensor:
    """``logits`` promoted to float32 when stored in a half-precision type (float64 is kept for gradcheck)."""
    if logits.dtype in (torch.float16, torch.bfloat16):
        return logits.float()
    return logits


def prepare(logits: torch.Tensor, labels: torch.Tensor, reduction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Checks of the pure functions (host only): ``logits`` [N, K] float with K >= 2 and N >= 1, ``labels`` [N]
    integer, ``reduction`` valid; returns the logits through :func:`compute_dtype` and the labels as int64."""
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
    return compute_dtype(logits), labels.long()


def check_logits_labels(logits: torch.Tensor, labels: torch.Tensor, num_outputs: int) -> None:
    """Shape-only checks of ``logits`` [N, num_outputs] and ``labels`` [N] (the modules with state)."""
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


def check_bool(value: object, name: str) -> bool:
    """``value`` when it is a bool, else ``ValueError`` naming ``name``."""
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected a bool, got {value!r}")
    return value


def nonneg(value: float, name: str) -> float:
    """A number >= 0 (a weight or an exponent whose 0 gives back cross-entropy)."""
    return check_number(value, name, low=0.0)


def gather_true(t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``t[i, labels[i]]`` for every row, shape [N]."""
    return t.gather(1, labels[:, None])[:, 0]


def top_label(logp: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(conf, correct) from log-probabilities ``logp`` [N, K]: conf_i = max_k p_ik (differentiable) and
    correct_i = 1[argmax_k p_ik = y_i] (a constant), both [N] in the dtype of ``logp``."""
    logconf, pred = logp.max(dim=1)
    conf = logconf.exp()
    return conf, (pred == labels).to(conf.dtype)


def log_one_minus_true(logits: torch.Tensor, labels: torch.Tensor, lse: torch.Tensor | None = None) -> torch.Tensor:
    """log(1 - p_y) = logsumexp_{k != y} z_k - logsumexp_k z_k, finite with finite gradients even when p_y -> 1.

    Args:
        logits: z, [N, C] floating point.
        labels: y, [N] integer indices into the C columns.
        lse: logsumexp_k z_k, [N], when the caller already has it (default: computed here).

    Returns:
        [N], in the dtype of ``logits``.
    """
    others = logits.scatter(1, labels[:, None], float("-inf"))
    total = torch.logsumexp(logits, dim=1) if lse is None else lse
    return torch.logsumexp(others, dim=1) - total


def logit_margins(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """m(x, y) = z_y - max_{j != y} z_j, [N], differentiable in ``logits`` (the max's subgradient at ties).

    No input checks: the public, checked form is :func:`caltrain.analysis.margins`.
    """
    others = logits.scatter(1, labels[:, None], float("-inf"))
    return gather_true(logits, labels) - others.amax(dim=1)


def with_batch_term(ce_i: torch.Tensor, term: torch.Tensor, weight: float, reduction: str) -> torch.Tensor:
    """CE_i + weight·term (a batch scalar) per sample, reduced (MMCE, DCA, MDCA, DECE)."""
    return reduce_loss(ce_i + weight * term, reduction)
