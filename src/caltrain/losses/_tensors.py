"""Private tensor helpers shared by several objectives: input checks, the half-precision upcast, stable log terms.

What is checked, and when
-------------------------

Every objective and every pure function checks its inputs through the helpers here (one place, no copies):

- **shapes and dtypes** (host only, free, always, raised at once): ``logits`` a floating-point [N, C] with the
  objective's column count (``num_outputs``: K, or K+1 with an "unknown" output), ``labels`` an integer [N],
  ``indices`` an integer [N] (:func:`check_logits`, :func:`check_labels_tensor`, :func:`check_indices`);
- **values** (:func:`check_range`): ``labels`` in [0, K) (``ignore_index`` excepted where a loss has one),
  ``indices`` in [0, num_samples). Each costs one fused reduction (``torch.aminmax``); reading its result on the
  host is what costs, so *when* it raises depends on the device:

  * CPU tensors (and any check outside a training step, e.g. the validation data handed to ``on_epoch_end``):
    read at once, ``ValueError`` from the call that got the bad values;
  * other devices (CUDA), inside an objective's call (``objective(logits, labels, ...)``): no host read in the
    step. The (min, max) is folded into a device-side record of the objective (:class:`DeferredChecks`, two
    numbers per checked argument) and the step runs on the values clamped into range (the same values when
    they are valid, so valid inputs give the same losses and gradients; clamping keeps torch's own device-side
    index asserts, which would lose the CUDA context, from firing first). ``Objective.on_epoch_end`` (the
    trainer calls it after every epoch) reads the record once and raises the ``ValueError``: a bad label stops
    the run at the end of the epoch that saw it, naming the argument, the expected range and the values seen.
    We chose this over ``torch._assert_async`` there because a failed device assert is not a catchable error:
    it destroys the CUDA context and reports neither the argument nor the range.
  * other devices, in a pure function called outside an objective (no epoch to report at): the same reduction
    feeds ``torch._assert_async`` (no host read; a bad value stops the process at its next synchronisation,
    as torch's own out-of-range gather would, but before any wrong value is used).

Example:
    >>> import torch
    >>> z, y = torch.tensor([[0.0, 0.0]]), torch.tensor([0])
    >>> log_one_minus_true(z, y).exp()  # 1 - p_y = 1/2
    tensor([0.5000])
    >>> check_range(torch.tensor([0, 12]), "labels", 10)
    Traceback (most recent call last):
    ...
    ValueError: labels: expected integers in [0, 10), got values in [0, 12]
"""

from __future__ import annotations

from contextvars import ContextVar

import torch

from caltrain.utils.checks import check_choice, check_ndim, check_nonempty, check_number, check_same_length
from caltrain.metrics.ece import top_label as _prediction

__all__: list[str] = []

#: Valid values of ``reduction`` (re-exported by :mod:`caltrain.losses.base`).
REDUCTIONS = ("mean", "sum", "none")


def reduce_loss(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce a per-sample loss ``[N]`` by ``reduction`` in {"mean", "sum", "none"}."""
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


class DeferredChecks:
    """The device-side record of the value checks made during an objective's steps, read once per epoch.

    For each checked argument (name, bound ``high``, device) it keeps the tensor [-min, max] of every value seen
    since the last :meth:`raise_if_bad` (updated with one ``torch.maximum``, no host read).
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int, int | None, str], torch.Tensor] = {}

    def add(self, name: str, high: int, lo: torch.Tensor, hi: torch.Tensor, ignore_index: int | None) -> None:
        """Fold the (min, max) of one batch's ``name`` into the record."""
        key = (name, high, ignore_index, str(lo.device))
        seen = torch.stack((-lo, hi))
        old = self._seen.get(key)
        self._seen[key] = seen if old is None else torch.maximum(old, seen)

    def add_interval(self, name: str, lo: torch.Tensor, hi: torch.Tensor) -> None:
        """Fold the (min, max) of one batch's real-valued ``name`` (dense targets, expected in [0, 1]) into the
        record; a NaN is kept (``torch.maximum`` propagates it), so it is reported too."""
        key = (name, -1, None, str(lo.device))
        seen = torch.stack((-lo, hi)).double()
        old = self._seen.get(key)
        self._seen[key] = seen if old is None else torch.maximum(old, seen)

    def raise_if_bad(self) -> None:
        """Read the record (one host read per checked argument), clear it, and raise the ``ValueError`` of the
        first argument that held values out of range."""
        seen, self._seen = self._seen, {}
        for (name, high, ignore_index, _), values in seen.items():
            neg_lo, hi = values.tolist()
            if high == -1:
                _raise_if_outside_unit_interval(name, -neg_lo, hi, " (seen during the epoch)")
            else:
                _raise_if_out_of_range(name, high, -neg_lo, hi, ignore_index, " (seen during the epoch)")


#: Device types whose value checks are read on the host at once (reading a CPU tensor does not wait for a device).
IMMEDIATE_DEVICES = frozenset({"cpu"})

#: The record of the objective whose step is running (set by ``Objective.__call__``), else None.
ACTIVE_CHECKS: ContextVar[DeferredChecks | None] = ContextVar("caltrain_losses_active_checks", default=None)


def _raise_if_out_of_range(
    name: str, high: int, lo: int, hi: int, ignore_index: int | None, when: str = ""
) -> None:
    if lo < 0 or hi >= high:
        extra = f" (or ignore_index={ignore_index})" if ignore_index is not None else ""
        raise ValueError(f"{name}: expected integers in [0, {high}){extra}, got values in [{lo}, {hi}]{when}")


def check_range(
    values: torch.Tensor, name: str, high: int, *, ignore_index: int | None = None, now: bool = False
) -> torch.Tensor:
    """Check that the integer tensor ``values`` (non-empty) lies in [0, ``high``), entries equal to
    ``ignore_index`` excepted, at the cost of one ``torch.aminmax``; return the values the caller must use.

    When the ``ValueError`` is raised (see the module docstring): at once for CPU tensors or with ``now``;
    otherwise deferred to ``on_epoch_end`` inside an objective's step (the returned values are then clamped
    into range, the same tensor's values when valid), or a ``torch._assert_async`` outside one.
    """
    checked = values if ignore_index is None else values.masked_fill(values == ignore_index, 0)
    lo, hi = torch.aminmax(checked)
    if now or values.device.type in IMMEDIATE_DEVICES:
        _raise_if_out_of_range(name, high, int(lo), int(hi), ignore_index)
        return values
    record = ACTIVE_CHECKS.get()
    if record is None:
        torch._assert_async((lo >= 0) & (hi < high), f"{name}: expected integers in [0, {high})")
        return values
    record.add(name, high, lo, hi, ignore_index)
    clamped = values.clamp(0, high - 1)
    return clamped if ignore_index is None else torch.where(values == ignore_index, values, clamped)


def check_logits(logits: torch.Tensor, num_outputs: int | None = None, num_classes: int | None = None) -> None:
    """Host checks of ``logits``: a floating-point tensor [N, C] with N >= 1 and C >= 2, and C == ``num_outputs``
    when given (``num_classes`` K, when given, explains a K+1 count in the message)."""
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits: expected a floating-point tensor [N, K], got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"logits: expected a floating-point tensor [N, K], got dtype {logits.dtype}")
    expected = "[N, K]" if num_outputs is None else f"[N, {num_outputs}]"
    check_ndim(logits, "logits", 2, expected)
    check_nonempty(logits, "logits")
    if num_outputs is not None:
        check_num_outputs(logits, num_outputs, num_classes)
    if logits.shape[1] < 2:
        raise ValueError(f"logits: expected K >= 2 classes, got shape {tuple(logits.shape)}")


def check_num_outputs(logits: torch.Tensor, num_outputs: int, num_classes: int | None = None) -> None:
    """Host check that ``logits`` [N, C, ...] has C == ``num_outputs`` columns (the objective's K, or K+1 with
    an "unknown" output: ``num_classes`` K, when given, explains the count in the message)."""
    if isinstance(logits, torch.Tensor) and logits.dim() >= 2 and logits.shape[1] != num_outputs:
        why = (
            f"num_classes = {num_outputs}" if num_classes in (None, num_outputs)
            else f"num_classes = {num_classes} + 1 'unknown' output"
        )
        raise ValueError(
            f"logits: expected shape [N, {num_outputs}] ({why}: the objective's num_outputs), "
            f"got shape {tuple(logits.shape)}"
        )


def check_labels_tensor(labels: torch.Tensor, name: str = "labels") -> None:
    """Host check of the dtype of ``labels`` (or ``indices``): an integer tensor, ``TypeError`` otherwise."""
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"{name}: expected an integer tensor [N], got {type(labels).__name__}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"{name}: expected an integer tensor [N] (class indices), got dtype {labels.dtype}")


def compute_dtype(logits: torch.Tensor) -> torch.Tensor:
    """``logits`` promoted to float32 when stored in a half-precision type (float64 is kept for gradcheck)."""
    if logits.dtype in (torch.float16, torch.bfloat16):
        return logits.float()
    return logits


def prepare(
    logits: torch.Tensor, labels: torch.Tensor, reduction: str, *, ignore_index: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Checks of the pure functions: ``logits`` [N, K] float with K >= 2 and N >= 1, ``labels`` [N] integers in
    [0, K) (or ``ignore_index``), ``reduction`` valid; returns the logits through :func:`compute_dtype` and the
    labels as int64 (see the module docstring for when a bad label value raises)."""
    check_logits(logits)
    check_labels_tensor(labels)
    check_ndim(labels, "labels", 1, "[N]")
    check_same_length(logits, labels, "logits", "labels")
    check_choice(reduction, "reduction", REDUCTIONS)
    labels = check_range(labels, "labels", logits.shape[1], ignore_index=ignore_index)
    return compute_dtype(logits), labels.long()


def check_logits_labels(
    logits: torch.Tensor, labels: torch.Tensor, num_classes: int, num_outputs: int | None = None, *, now: bool = False
) -> torch.Tensor:
    """Checks of ``logits`` [N, num_outputs] (default ``num_classes``) and ``labels`` [N] integers in
    [0, num_classes) (the modules with their own ``forward``); returns the labels to use (:func:`check_range`)."""
    check_logits(logits, num_classes if num_outputs is None else num_outputs, num_classes)
    check_labels_tensor(labels)
    check_ndim(labels, "labels", 1, "[N]")
    check_same_length(logits, labels, "logits", "labels")
    return check_range(labels, "labels", num_classes, now=now)


def check_indices(indices: torch.Tensor | None, n: int, num_samples: int, name: str) -> torch.Tensor:
    """Checks of the dataset ``indices`` of a batch of ``n`` samples (objective ``name`` needs them): integers,
    shape [n], values in [0, num_samples); returns the indices to use (:func:`check_range`)."""
    if indices is None:
        raise ValueError(
            f"indices: loss {name!r} keeps per-sample targets and needs the dataset indices of the batch "
            "(call objective(logits, labels, indices=idx))"
        )
    if not isinstance(indices, torch.Tensor):
        indices = torch.as_tensor(indices)
    check_labels_tensor(indices, "indices")
    if indices.dim() != 1 or indices.shape[0] != n:
        raise ValueError(
            f"indices: expected shape [{n}] (one dataset index per sample of the batch), got shape "
            f"{tuple(indices.shape)}"
        )
    return check_range(indices, "indices", num_samples)


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
    logconf, correct = _prediction(logp, labels)  # the metrics' top-label rule (max is monotone under log)
    conf = logconf.exp()
    return conf, correct.to(conf.dtype)


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


# ---- dense binary inputs: one logit per pixel ([N, 1, H, W] or [N, H, W]) and targets in [0, 1] ----------------


def _raise_if_outside_unit_interval(name: str, lo: float, hi: float, when: str = "") -> None:
    if not (lo >= 0.0 and hi <= 1.0):  # NaN fails too
        raise ValueError(f"{name}: expected values in [0, 1] (dense binary targets), got values in [{lo}, {hi}]{when}")


def check_unit_interval(values: torch.Tensor, name: str, *, now: bool = False) -> torch.Tensor:
    """Check that the real tensor ``values`` lies in [0, 1] with one ``torch.aminmax`` (NaN is out of range);
    return the values the caller must use. When it raises is :func:`check_range`'s rule: at once on CPU or with
    ``now``; inside an objective's step on another device the (min, max) is recorded and ``on_epoch_end`` raises
    (the step then runs on the values clamped into [0, 1]); outside one a ``torch._assert_async``."""
    lo, hi = torch.aminmax(values)
    if now or values.device.type in IMMEDIATE_DEVICES:
        _raise_if_outside_unit_interval(name, float(lo), float(hi))
        return values
    record = ACTIVE_CHECKS.get()
    if record is None:
        torch._assert_async((lo >= 0) & (hi <= 1), f"{name}: expected values in [0, 1]")
        return values
    record.add_interval(name, lo, hi)
    return values.nan_to_num(0.0).clamp(0.0, 1.0)


DENSE_SHAPES = "[N, 1, H, W] or [N, H, W]"


def prepare_dense_binary(
    logits: torch.Tensor, targets: torch.Tensor, reduction: str, name: str = "labels"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Checks of the dense binary losses: ``logits`` a floating-point [N, 1, H, W] or [N, H, W] (one logit per
    pixel, N >= 1), ``targets`` (``name``) the same shape, or the same without (or with) the channel axis of size
    1, real (or integer/bool masks) with values in [0, 1] (one reduction, :func:`check_unit_interval`),
    ``reduction`` valid. Returns (z, y), both [N, P] (P = pixels per image) in the compute dtype of ``logits``
    (:func:`compute_dtype`)."""
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        got = type(logits).__name__ if not isinstance(logits, torch.Tensor) else f"dtype {logits.dtype}"
        raise TypeError(f"logits: expected a floating-point tensor {DENSE_SHAPES} (one logit per pixel), got {got}")
    if logits.dim() == 4 and logits.shape[1] != 1:
        raise ValueError(
            f"logits: expected {DENSE_SHAPES} (one logit per pixel: dense binary), got shape {tuple(logits.shape)}"
        )
    if logits.dim() not in (3, 4):
        raise ValueError(f"logits: expected {DENSE_SHAPES} (dense binary), got shape {tuple(logits.shape)}")
    check_nonempty(logits, "logits")
    if not isinstance(targets, torch.Tensor) or targets.is_complex():
        raise TypeError(f"{name}: expected a real tensor {DENSE_SHAPES} with values in [0, 1], got "
                        f"{type(targets).__name__ if not isinstance(targets, torch.Tensor) else targets.dtype}")
    pixels = tuple(logits.shape[-2:])
    if targets.shape[0] != logits.shape[0] or tuple(targets.shape[-2:]) != pixels or targets.dim() not in (3, 4) or (
        targets.dim() == 4 and targets.shape[1] != 1
    ):
        raise ValueError(
            f"{name}: expected the shape of logits {tuple(logits.shape)} (with or without the channel axis of "
            f"size 1), got shape {tuple(targets.shape)}"
        )
    check_choice(reduction, "reduction", REDUCTIONS)
    z = compute_dtype(logits)
    y = targets.to(z.dtype) if not targets.is_floating_point() else targets
    y = check_unit_interval(y, name)
    n = logits.shape[0]
    return z.reshape(n, -1), y.reshape(n, -1).to(z.dtype)
