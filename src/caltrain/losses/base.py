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
  once per epoch, e.g. AdaFocal's per-bin gamma, CALS' multipliers);
- ``needs_validation_statistics``: whether ``on_epoch_end`` wants *streamed* validation statistics instead of the
  logits (dense tasks, where holding every validation logit map would not fit: a DUTS-TE sized split is
  5019 images of 384x384 pixels). The trainer calls ``objective.validation_statistics(logits, labels)`` on every
  validation batch (in ``eval()`` mode, under ``torch.no_grad()``), which returns a ``dict[str, Tensor]`` of
  *sums* (counts, sums of correct pixels, ...); it adds them up key by key in float64 over the split and passes
  the totals as ``on_epoch_end(e, val_stats={key: total})``. Only objectives that ask are called, so other runs
  are unchanged (ASLP asks for the pooled validation pixel accuracy: sums ``correct`` and ``pixels``);
- ``tasks``: the tasks the objective trains, a subset of :data:`TASKS`: ``"classification"`` (logits [N, K],
  integer labels [N]; the default) and ``"dense_binary"`` (one logit per pixel, logits [N, 1, H, W] or
  [N, H, W], targets of the same shape in [0, 1]; ``num_outputs`` is then 1). ``focal`` trains both; ``bce``,
  ``sc_bce``, its presets and ``aslp`` only ``"dense_binary"``. Tests and the trainer ask ``tasks`` (a
  classification run refuses a dense-only objective, and the generic classification tests skip them by it).

and it calls, in this order, for every epoch ``e`` (0-based):

    objective.on_epoch_start(e)
    for each batch:  loss = objective(logits, labels, **{name: ... for name in objective.requires})
    objective.on_epoch_end(e, val_logits=..., val_labels=...)     # or val_stats=... (see above)
    record["objective"] = objective.epoch_summary()              # when it returns a non-empty dict

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

State that must survive a resume (EMA tables, per-bin gammas, the current epoch for warm-up schedules) is in
``state_dict()``, so ``load_state_dict()`` restores it exactly. Per-sample state advances only in training mode
(``objective.train()``); in ``eval()`` mode the loss is computed from the current state.

Where the state lives, and why per-sample state is not a buffer:

- state every rank shares (the epoch, per-bin gammas, CALS' multipliers, GenCE's class-marginal EMA) is a
  registered buffer;
- per-sample state (the tensors named in ``sample_state``, e.g. the [N, K] target table of SAT and Socrates) is
  *rank-local*: under DistributedDataParallel each rank sees its own samples and advances only their rows. It is
  registered with :meth:`Objective.register_local_state` (``register_buffer`` of a name listed in
  ``sample_state`` does the same): a plain tensor attribute, saved and loaded under its name exactly as a buffer
  would be (same ``state_dict()`` keys, dtypes and values; ``load_state_dict`` copies in place), moved by
  ``.to()`` / ``.cuda()`` / ``.double()`` (``_apply``), but absent from ``buffers()``. So a DDP wrapper around a
  module that holds the objective (Lightning's and Hugging Face's usual layout, ``broadcast_buffers=True`` by
  default) never overwrites a rank's table with rank 0's. The rows each rank advanced are merged once per epoch
  by the trainer (``caltrain.train.distributed.merge_sample_state``, which reads the tensors by name); another
  training loop calls that function itself (docs/losses.md, "In your own training loop").
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import torch
from torch import nn

from caltrain.losses._tensors import ACTIVE_CHECKS, REDUCTIONS, DeferredChecks, check_num_outputs, reduce_loss
from caltrain.utils.checks import check_choice, check_positive_int

__all__ = ["DenseBinaryObjective", "LogitObjective", "Objective", "REQUIREMENTS", "REDUCTIONS", "TASKS", "reduce_loss"]

#: The extra inputs an objective may ask for.
REQUIREMENTS = frozenset({"indices", "model", "inputs"})
#: The tasks an objective may train (``Objective.tasks``).
TASKS = frozenset({"classification", "dense_binary"})

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
    #: True when ``on_epoch_end`` needs streamed validation statistics (:meth:`validation_statistics`).
    needs_validation_statistics: ClassVar[bool] = False
    #: The tasks this objective trains (a subset of :data:`TASKS`).
    tasks: ClassVar[frozenset[str]] = frozenset({"classification"})
    #: Names of the tensors indexed by dataset index (first dimension = number of training samples). Under
    #: DistributedDataParallel each rank updates the rows of its own samples and the trainer merges them. They are
    #: rank-local state (:meth:`register_local_state`), never module buffers, so DDP does not broadcast them.
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
        # names of the rank-local state tensors, in registration order (see register_local_state)
        self._local_state: list[str] = []
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

    def register_local_state(self, name: str, tensor: torch.Tensor) -> None:
        """Keep ``tensor`` as state of this rank: in ``state_dict()`` like a buffer, but not a buffer.

        The tensor becomes the plain attribute ``self.<name>``. ``state_dict()`` saves it under ``name`` (after the
        buffers, as a buffer registered at this point would be), ``load_state_dict`` copies into it in place (or
        assigns with ``assign=True``; strict loading reports it missing or unexpected like a buffer), and
        ``.to()`` / ``.cuda()`` / ``.double()`` move or cast it as they do buffers. It is not in ``buffers()``, so
        DistributedDataParallel neither broadcasts it from rank 0 (``broadcast_buffers``) nor syncs it when the
        wrapper is built: each rank keeps its own values. Per-sample tables (``sample_state``) use it.

        Example:
            >>> class Counts(Objective):
            ...     sample_state = ("visits",)
            ...     def __init__(self):
            ...         super().__init__(num_classes=2)
            ...         self.register_local_state("visits", torch.zeros(3))
            >>> obj = Counts()
            >>> list(obj.state_dict()), [name for name, _ in obj.named_buffers()]
            (['epoch', 'visits'], ['epoch'])
        """
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"local state name must be a non-empty string without '.', got {name!r}")
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"local state {name!r} must be a torch.Tensor, got {type(tensor).__name__}")
        local = self.__dict__.get("_local_state")
        if local is None:
            raise AttributeError("cannot register local state before Objective.__init__() call")
        if name not in local and (hasattr(self, name) or name in self._buffers or name in self._parameters):
            raise KeyError(f"attribute {name!r} already exists")
        self._buffers.pop(name, None)
        self.__dict__[name] = tensor
        if name not in local:
            local.append(name)

    def register_buffer(self, name: str, tensor: torch.Tensor | None, persistent: bool = True) -> None:
        """``nn.Module.register_buffer``, except that a name listed in ``sample_state`` becomes rank-local state
        (:meth:`register_local_state`), so a subclass that registers its per-sample table as a buffer still keeps it
        out of DDP's buffer broadcast."""
        if name in type(self).sample_state and tensor is not None and persistent:
            self.register_local_state(name, tensor)
            return
        super().register_buffer(name, tensor, persistent)

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        for name in self.__dict__.get("_local_state", ()):
            tensor = self.__dict__[name]
            destination[prefix + name] = tensor if keep_vars else tensor.detach()

    def _load_from_state_dict(
        self,
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list,
        unexpected_keys: list,
        error_msgs: list,
    ) -> None:
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        assign = local_metadata.get("assign_to_params_buffers", False)
        for name in self.__dict__.get("_local_state", ()):
            key = prefix + name
            while key in unexpected_keys:  # nn.Module counts it unexpected: it is not a buffer
                unexpected_keys.remove(key)
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            value, current = state_dict[key], self.__dict__[name]
            if not isinstance(value, torch.Tensor):
                error_msgs.append(
                    f'While copying the local state named "{key}", expected torch.Tensor from checkpoint but '
                    f"received {type(value)}"
                )
                continue
            if value.shape != current.shape:
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape {value.shape} from checkpoint, "
                    f"the shape in current model is {current.shape}."
                )
                continue
            with torch.no_grad():
                if assign:
                    self.__dict__[name] = value
                else:
                    current.copy_(value)

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> "Objective":
        super()._apply(fn, recurse)
        for name in self.__dict__.get("_local_state", ()):
            with torch.no_grad():
                self.__dict__[name] = fn(self.__dict__[name])
        return self

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
        val_stats: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """Called after the last batch of epoch ``epoch``; gets validation logits when ``needs_validation``, the
        summed :meth:`validation_statistics` as ``val_stats`` when ``needs_validation_statistics``.

        Raises the ``ValueError`` of the epoch's value checks deferred on a GPU (bad ``labels`` or ``indices``);
        the one host read of the epoch's checks. Overrides call it first.
        """
        self._deferred_checks.raise_if_bad()

    def validation_statistics(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Sums over one validation batch that ``on_epoch_end`` needs (``needs_validation_statistics``).

        The trainer adds the returned tensors up key by key (float64) over the validation split and passes the
        totals as ``on_epoch_end(epoch, val_stats=...)``; values must therefore be sums (never means), so the
        totals do not depend on the batch size. No host read: the tensors stay on the device.
        """
        raise NotImplementedError(f"{type(self).__name__} does not ask for validation statistics")

    def epoch_summary(self) -> dict[str, float]:
        """Plain numbers describing the objective's state after ``on_epoch_end`` (e.g. the distribution of
        ASLP's per-image alpha), for the epoch's record; empty by default. May read the device (once per epoch)."""
        return {}

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


class DenseBinaryObjective(Objective):
    """Base of the dense binary objectives (``tasks = {"dense_binary"}``): one logit per pixel.

    ``forward(logits, labels)`` takes logits [N, 1, H, W] or [N, H, W] and targets of the same shape (with or
    without the channel axis) in [0, 1]; ``num_outputs`` is 1. ``num_classes`` is 2 (background, foreground):
    the registry passes the dataset's class count, and a dense binary objective keeps it only for the record
    (any value >= 2 is accepted so that code creating every objective with one K still works).
    ``reduction="none"`` gives one value per image (the mean over its pixels), whose mean is the default.
    """

    tasks: ClassVar[frozenset[str]] = frozenset({"dense_binary"})

    def __init__(self, *, num_classes: int = 2, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)

    @property
    def num_outputs(self) -> int:
        """1: one logit per pixel (the foreground's)."""
        return 1
