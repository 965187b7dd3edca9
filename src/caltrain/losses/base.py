"""The objective protocol: what every training objective tells the trainer, and what the trainer gives it.

The trainer has no per-method branches. It asks an objective:

- ``num_outputs``: how many logits the model must produce (``num_classes`` K, or K+1 when the objective adds
  an "unknown" (abstention) output, in which case ``has_abstention`` is true and the last logit is "unknown");
- ``requires``: which extra inputs ``forward`` needs, a subset of

  * ``"indices"``: the dataset indices of the batch's samples (per-sample state such as EMA target tables);
  * ``"model"``: the model itself (objectives that run extra forward passes, e.g. adversarial examples);
  * ``"inputs"``: the batch's inputs, as fed to the model;

- ``needs_input_grad``: whether the trainer must call ``inputs.requires_grad_(True)`` before the forward pass
  (objectives that penalise input gradients of the logits);
- ``needs_validation``: whether ``on_epoch_end`` wants the validation logits and labels (statistics gathered
  once per epoch, e.g. AdaFocal's per-bin gamma, CALS' multipliers).

and it calls, in this order, for every epoch ``e`` (0-based):

    objective.on_epoch_start(e)
    for each batch:  loss = objective(logits, labels, **{name: ... for name in objective.requires})
    objective.on_epoch_end(e, val_logits=..., val_labels=...)

``forward(logits, labels, *, <the names in requires>)`` takes exactly the keyword arguments its ``requires``
lists, no others: the trainer hands nothing else, so an objective never declares an input it does not use.

``forward`` returns the loss reduced with the objective's ``reduction`` ("mean" by default; "none" gives one
value per sample, shape [N], where the objective is a per-sample sum). It must not synchronise with the host
(no ``.item()``, no Python branch on a tensor value), so hot loops stay asynchronous on GPUs.

Inputs are checked in every call (the private ``caltrain.losses._tensors`` says what and when): shapes and dtypes
on the host at once; the values of ``labels`` (in [0, K)) and ``indices`` (in [0, num_samples)) with one
reduction, raised at once for CPU tensors and, on a GPU, recorded on the device during the epoch and raised by
``on_epoch_end`` (so an override of ``on_epoch_end`` calls ``super().on_epoch_end(epoch)``).

Warm-up schedules read the epoch on the host: ``on_epoch_start`` derives plain Python flags (e.g.
``self._warming_up = epoch < self.warmup_epochs``) that ``forward`` branches on, since a resumed run calls
``on_epoch_start`` again for the epoch it resumes in.

State that must survive a resume (EMA tables, per-bin gammas, the current epoch for warm-up schedules) lives in
registered buffers, so ``state_dict()``/``load_state_dict()`` restore it exactly. Per-sample state advances only
in training mode (``objective.train()``); in ``eval()`` mode the loss is computed from the current state.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import torch
from torch import nn

from caltrain.losses._tensors import ACTIVE_CHECKS, REDUCTIONS, DeferredChecks, check_num_outputs, reduce_loss
from caltrain.utils.checks import check_choice, check_positive_int

__all__ = ["LogitObjective", "Objective", "REQUIREMENTS", "REDUCTIONS", "reduce_loss"]

#: The extra inputs an objective may ask for.
REQUIREMENTS = frozenset({"indices", "model", "inputs"})

class Objective(nn.Module):
    """Base class of every training objective (see the module docstring for the protocol).

    Subclasses set the class attributes below when they differ from the defaults, and implement
    ``forward(logits, labels, *, <each name in requires>)``.

    Args:
        num_classes: K, the number of real classes.
        reduction: "mean" (default), "sum" or "none".
    """

    #: The extra ``forward`` inputs this objective needs (a subset of :data:`REQUIREMENTS`).
    requires: ClassVar[frozenset[str]] = frozenset()
    #: The abstention convention (:mod:`caltrain.abstention`) under which the model's K+1 outputs are evaluated
    #: when the objective adds a K+1-th ("unknown") output; ``None`` for K outputs. Every K+1 objective declares it.
    abstention: ClassVar[str | None] = None
    #: True when the trainer must make the inputs require gradients before the forward pass.
    needs_input_grad: ClassVar[bool] = False
    #: True when ``on_epoch_end`` needs the validation logits and labels.
    needs_validation: ClassVar[bool] = False
    #: Names of buffers indexed by dataset index (first dimension = number of training samples). Under
    #: DistributedDataParallel each rank updates the rows of its own samples and the trainer merges them.
    sample_state: ClassVar[tuple[str, ...]] = ()
    #: Input scale and valid range in model space (see :meth:`set_input_domain`); None until the trainer sets them.
    input_std: torch.Tensor | None = None
    input_low: torch.Tensor | None = None
    input_high: torch.Tensor | None = None
    #: The paper the objective comes from, with its arXiv id where it has one (``caltrain losses`` prints it).
    #: Every registered objective sets it.
    paper: ClassVar[str] = ""

    def __init__(self, *, num_classes: int, reduction: str = "mean") -> None:
        super().__init__()
        self.num_classes = check_positive_int(num_classes, "num_classes", minimum=2)
        self.reduction = check_choice(reduction, "reduction", REDUCTIONS)
        # The current epoch (0-based); a buffer so warm-up schedules resume exactly.
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))
        # Value checks of the steps on a GPU, read by on_epoch_end (not state: never saved).
        self._deferred_checks = DeferredChecks()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``forward`` with this objective's record active, so its value checks on a GPU defer to the epoch end."""
        token = ACTIVE_CHECKS.set(self._deferred_checks)
        try:
            return super().__call__(*args, **kwargs)
        finally:
            ACTIVE_CHECKS.reset(token)

    @property
    def has_abstention(self) -> bool:
        """True when the model needs a K+1-th ("unknown") output (``abstention`` is not None)."""
        return self.abstention is not None

    @property
    def num_outputs(self) -> int:
        """The number of logits the model must produce: K, or K+1 with an abstention output."""
        return self.num_classes + int(self.has_abstention)

    def set_input_domain(
        self,
        *,
        std: torch.Tensor | None = None,
        low: torch.Tensor | None = None,
        high: torch.Tensor | None = None,
    ) -> None:
        """Told once by the trainer how the model's inputs relate to the raw data.

        The loader feeds ``x = (x_raw - mean) / std``. Objectives that perturb inputs (CalMO's PGD) state their
        radius in raw units (pixels on the [0, 1] scale): a raw L-inf radius ``eps`` is ``eps / std`` per channel
        in model space, and the valid raw range [0, 1] is ``[low, high] = [(0 - mean) / std, (1 - mean) / std]``.
        Shapes broadcast against one input (``[C, 1, 1]`` for images, ``[D]`` for features); ``None`` means
        unit scale / unbounded. Stored as plain attributes (not state: the trainer sets them again on resume).
        """
        self.input_std, self.input_low, self.input_high = std, low, high

    def on_epoch_start(self, epoch: int) -> None:
        """Called before the first batch of epoch ``epoch`` (0-based). Stores the epoch."""
        self.epoch.fill_(int(epoch))

    def on_epoch_end(
        self,
        epoch: int,
        *,
        val_logits: torch.Tensor | None = None,
        val_labels: torch.Tensor | None = None,
    ) -> None:
        """Called after the last batch of epoch ``epoch``; gets validation logits when ``needs_validation``.

        Raises the ``ValueError`` of the epoch's value checks deferred on a GPU (bad ``labels`` or ``indices``);
        the one host read of the epoch's checks. Overrides call it first.
        """
        self._deferred_checks.raise_if_bad()

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, reduction={self.reduction!r}"


class LogitObjective(Objective):
    """An objective that is a pure function of (logits, labels): a thin module over ``function``.

    ``function(logits, labels, *, reduction, **hyperparameters)`` is the pure function (usually the one in
    :mod:`caltrain.losses.functional`); the hyperparameters are the attributes named in
    :attr:`hyperparameter_names`, which the subclass' ``__init__`` validates and stores. It requires nothing:
    ``forward(logits, labels)``.

    Example:
        >>> import torch.nn.functional as F
        >>> class PlainCE(LogitObjective):
        ...     function = staticmethod(lambda z, y, *, reduction: F.cross_entropy(z, y, reduction=reduction))
        >>> obj = PlainCE(num_classes=3)
        >>> z, y = torch.zeros(2, 3), torch.tensor([0, 2])
        >>> bool(torch.isclose(obj(z, y), torch.log(torch.tensor(3.0))))
        True
    """

    #: The pure function ``(logits, labels, *, reduction, **hyperparameters) -> loss``.
    function: ClassVar[Callable[..., torch.Tensor]]
    #: Names of the attributes passed to :attr:`function` as keyword hyperparameters.
    hyperparameter_names: ClassVar[tuple[str, ...]] = ()

    def hyperparameters(self) -> dict[str, Any]:
        """The keyword hyperparameters handed to :attr:`function`."""
        return {name: getattr(self, name) for name in self.hyperparameter_names}

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss of ``logits`` [N, K] for ``labels`` [N], reduced by ``self.reduction``."""
        check_num_outputs(logits, self.num_outputs, self.num_classes)
        return type(self).function(logits, labels, reduction=self.reduction, **self.hyperparameters())

    def extra_repr(self) -> str:
        hp = "".join(f", {k}={v!r}" for k, v in self.hyperparameters().items())
        return super().extra_repr() + hp
