"""Pure functions of (logits, labels): every objective that needs nothing else, by its registry name.

Each function lives in its objective's own module (``caltrain.losses.<full name>``, next to its ``nn.Module``);
this module gathers them under their registry names, so ``LF.<name>`` is the pure form of ``losses.create(name)``.

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
Python branch on a tensor value). Inputs are checked by the shared helpers of ``caltrain.losses._tensors``:
shapes and dtypes at once (a float ``labels`` is a ``TypeError``), label values in [0, K) with one
``torch.aminmax``: a ``ValueError`` such as ``labels: expected integers in [0, 10), got values in [0, 12]``, at
once on CPU; on a GPU inside an objective at ``on_epoch_end``, and outside one a ``torch._assert_async`` (no host
read). ``batch_log_prior`` and ``soft_bin_membership`` are building blocks that take already-checked tensors.

Dense binary functions (``bce``, ``sc_bce``, and ``focal`` on such inputs) take instead one logit per pixel,
``logits`` [N, 1, H, W] or [N, H, W], and real ``targets`` of the same shape in [0, 1] (checked with one
``torch.aminmax``, the same rule of when it raises); ``reduction="none"`` gives one value per image (the mean over
its pixels). ``sc_bce`` also takes ``alpha``, ``beta`` and ``generator`` (its random draws).

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

from caltrain.losses.binary_cross_entropy import bce
from caltrain.losses.brier_score import brier
from caltrain.losses.confidence_penalty import ecp
from caltrain.losses.cross_entropy import ce
from caltrain.losses.difference_confidence_accuracy import dca
from caltrain.losses.differentiable_expected_calibration_error import dece, soft_bin_membership
from caltrain.losses.dual_focal import dual_focal
from caltrain.losses.focal import focal
from caltrain.losses.generative_cross_entropy import batch_log_prior, gence, gence_ema
from caltrain.losses.label_smoothing import ls
from caltrain.losses.logit_normalization import logitnorm
from caltrain.losses.margin_based_label_smoothing import mbls
from caltrain.losses.maximum_mean_calibration_error import mmce
from caltrain.losses.multiclass_difference_confidence_accuracy import mdca
from caltrain.losses.poly1 import poly1
from caltrain.losses.sample_dependent_focal import flsd53
from caltrain.losses.self_calibrating_binary_cross_entropy import sc_bce

__all__ = [
    "batch_log_prior",
    "bce",
    "brier",
    "ce",
    "dca",
    "dece",
    "dual_focal",
    "ecp",
    "flsd53",
    "focal",
    "gence",
    "gence_ema",
    "logitnorm",
    "ls",
    "mbls",
    "mdca",
    "mmce",
    "poly1",
    "sc_bce",
    "soft_bin_membership",
]
